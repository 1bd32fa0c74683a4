package proxy

import (
	"context"
	"net/http"
)

// Observer watches one forwarded request from outside the proxy: metering
// reads the response body as it passes and sets rate-limit headers. It is
// attached to the request context with WithObserver; the proxy calls it
// from its ReverseProxy hooks, so the proxy itself knows nothing of usage,
// prices or limits.
type Observer interface {
	// Outbound may change the upstream request's header just before it is
	// sent (after the proxy's own header policy has run).
	Outbound(h http.Header)
	// Response runs when the upstream's response headers have arrived,
	// before anything is written to the client: it may replace res.Body
	// with a reader that wraps it and change res.Header.
	Response(res *http.Response)
}

type observerKey struct{}

// WithObserver returns ctx carrying o for Forward.
func WithObserver(ctx context.Context, o Observer) context.Context {
	return context.WithValue(ctx, observerKey{}, o)
}

func observerFrom(ctx context.Context) Observer {
	o, _ := ctx.Value(observerKey{}).(Observer)
	return o
}
