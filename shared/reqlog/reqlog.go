// Package reqlog carries the per-request facts that the access log line
// reports. The gateway puts an *Entry in the request context; the steps that
// learn something (authentication, the proxy) fill it in; the gateway logs it
// once when the response is done.
package reqlog

import (
	"context"
	"time"
)

// Entry is what one access log line reports beyond what the gateway sees
// itself (method, status, bytes, duration). It never holds a secret: keys
// appear only in their abbreviated sk-...abcd form.
type Entry struct {
	// Start is when the request arrived (set by the gateway); zero when the
	// entry was not made by the gateway.
	Start time.Time
	// RequestID is Keyway's own id of the request, never the caller's.
	RequestID string
	// ClientRequestID is the caller's X-Request-Id, when short and plain.
	ClientRequestID string
	// Route is the route class (route.Class.String(): "pass_through",
	// "admin", "health", "metrics", "console", "unknown").
	Route string
	// Endpoint is the matched pass-through endpoint's configured path.
	Endpoint string
	// Principal names who called: "master key", "key sk-...abcd", "anonymous".
	Principal string
	// UserID and TeamID of the key, when known.
	UserID, TeamID string
	// UpstreamStatus is the status the upstream answered, 0 if none.
	UpstreamStatus int
	// BytesIn is how many request body bytes were read from the client.
	BytesIn int64
	// Error is a short reason for a gateway-made failure (never a secret).
	Error string
	// Denied names why the gateway refused the request, from a bounded set
	// (see the Deny* constants); "" when it did not refuse.
	Denied string
	// StoreOp names the store operation that failed (a bounded set:
	// "key_lookup", "admit", "settle", or an admin route such as
	// "/key/generate"); "" when none did.
	StoreOp string

	// Metering of a pass-through response (zero when not metered).
	Model string
	// PricedModel is the endpoint's model_costs name Model matched ("" if
	// none): a name from the config, so a bounded set.
	PricedModel  string
	InputTokens  int64
	OutputTokens int64
	// CostNanos is the charged cost in nano-dollars.
	CostNanos int64
	// UsageSource says where usage came from (ledger.Record.UsageSource).
	UsageSource string
	// UpstreamTTFB is the time from Start (the request's arrival) until the
	// upstream's response headers arrived: Keyway's own work before
	// forwarding (authentication, limits) included; 0 if they never did.
	UpstreamTTFB time.Duration
}

// Deny reasons: the bounded label set for refusals (metrics, logs).
const (
	DenyNoKey      = "no_key"
	DenyBadKey     = "bad_key"
	DenyExpired    = "expired"
	DenyBlocked    = "blocked"
	DenyRoute      = "route"
	DenyRole       = "role"
	DenyRate       = "rate_limit"
	DenyTokens     = "token_limit"
	DenyParallel   = "parallel_limit"
	DenyBudget     = "budget"
	DenyStore      = "store_unavailable"
	DenyBadRequest = "bad_request"
)

type ctxKey struct{}

// NewContext returns ctx carrying e.
func NewContext(ctx context.Context, e *Entry) context.Context {
	return context.WithValue(ctx, ctxKey{}, e)
}

// FromContext returns the request's Entry, or a throwaway one so callers never
// need a nil check.
func FromContext(ctx context.Context) *Entry {
	if e, ok := ctx.Value(ctxKey{}).(*Entry); ok {
		return e
	}
	return &Entry{}
}
