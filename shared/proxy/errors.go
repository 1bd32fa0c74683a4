package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/config"
)

// errHeaderTimeout is the cancellation cause when the upstream did not send
// response headers within the endpoint's timeout.
var errHeaderTimeout = errors.New("upstream response headers timed out")

// errUpgradeRefused is an upstream 101 Switching Protocols: Keyway relays
// HTTP requests, never a raw tunnel, which would escape the body limit, the
// timeout, the allowed methods and sub-path confinement.
var errUpgradeRefused = errors.New("upstream switched protocols")

// failure is one gateway-made outcome: the error to send (Status 499 is
// never sent) and a short reason for the access log.
type failure struct {
	err    *apierr.Error
	reason string
}

// classify is the one mapping from a failed forward to a status. Order
// matters: our own causes (bad path, body limit, header timeout) are checked
// before the client's disconnect, which is checked before generic transport
// failures, because a timeout or a cut body also surfaces as a canceled or
// broken upstream request.
//
//	unsafe sub-path or query     400 bad_request_error
//	body over the limit          413 request_too_large
//	no response headers in time  504 timeout
//	client went away             499 (logged, not written)
//	client body unreadable       400 bad_request_error
//	anything else (refused, DNS, TLS, reset)  502 upstream_error
//
// Messages may name the endpoint path and the upstream host, never the full
// upstream URL (its query may hold a secret) or a header value.
func (p *Proxy) classify(st *state, err error) failure {
	ep := st.ep
	var pathErr *PathError
	var queryErr *QueryError
	switch {
	case errors.As(err, &pathErr):
		return failure{
			err: apierr.BadRequest("path", fmt.Sprintf(
				"request path for endpoint %s rejected: %s; sub-paths may not climb above the endpoint or hide separators", ep.Path, pathErr.Reason)),
			reason: "unsafe sub-path",
		}
	case errors.As(err, &queryErr):
		return failure{
			err:    apierr.BadRequest("query", fmt.Sprintf("query string for endpoint %s rejected: %s", ep.Path, queryErr.Reason)),
			reason: "unsafe query string",
		}
	case errors.Is(err, errBodyTooLarge) || errors.Is(st.body.readErr(), errBodyTooLarge):
		return failure{
			err: apierr.New(http.StatusRequestEntityTooLarge, apierr.TypeTooLarge, fmt.Sprintf(
				"request body is larger than the %d-byte limit", st.maxBody)),
			reason: "request body too large",
		}
	case errors.Is(err, errHeaderTimeout) || (st.ctx != nil && context.Cause(st.ctx) == errHeaderTimeout):
		return failure{
			err: apierr.New(http.StatusGatewayTimeout, apierr.TypeTimeout, fmt.Sprintf(
				"upstream %s for endpoint %s sent no response headers within %s", targetHost(ep), ep.Path, st.timeout)),
			reason: "upstream header timeout",
		}
	case errors.Is(err, errUpgradeRefused):
		return failure{
			err: apierr.New(http.StatusBadGateway, apierr.TypeUpstream, fmt.Sprintf(
				"upstream %s for endpoint %s switched protocols; Keyway relays HTTP requests only (no WebSocket or h2c upgrades)", targetHost(ep), ep.Path)),
			reason: "upstream protocol upgrade refused",
		}
	case st.parent.Err() != nil:
		return failure{
			err:    apierr.New(apierr.StatusClientClosed, apierr.TypeBadRequest, "client closed request"),
			reason: "client closed request",
		}
	}
	if bodyErr := st.body.readErr(); bodyErr != nil {
		// The client's body broke mid-stream. A truncated body or a dead
		// connection means the client is gone; anything else (malformed
		// chunking) is the client's bad request.
		var netErr net.Error
		if errors.Is(bodyErr, io.ErrUnexpectedEOF) || errors.As(bodyErr, &netErr) || errors.Is(bodyErr, net.ErrClosed) {
			return failure{
				err:    apierr.New(apierr.StatusClientClosed, apierr.TypeBadRequest, "client closed request"),
				reason: "client closed request",
			}
		}
		return failure{
			err:    apierr.BadRequest("body", "the request body could not be read"),
			reason: "request body unreadable",
		}
	}
	reason := "upstream request failed"
	if opErr := (*net.OpError)(nil); errors.As(err, &opErr) && opErr.Op == "dial" {
		reason = "upstream unreachable"
	}
	return failure{
		err: apierr.New(http.StatusBadGateway, apierr.TypeUpstream, fmt.Sprintf(
			"upstream %s for endpoint %s could not be reached or failed before answering", targetHost(ep), ep.Path)),
		reason: reason,
	}
}

// fail answers a gateway-made failure: it records the reason in the access
// log entry, logs it, and writes the LiteLLM envelope unless the client is
// gone.
func (p *Proxy) fail(w http.ResponseWriter, st *state, err error) {
	f := p.classify(st, err)
	st.entry.Error = f.reason
	level := slog.LevelWarn
	if f.err.Status < http.StatusInternalServerError {
		level = slog.LevelInfo
	}
	attrs := []slog.Attr{
		slog.String("request_id", st.entry.RequestID),
		slog.String("endpoint", st.ep.Path),
		slog.String("upstream_host", targetHost(st.ep)),
		slog.Int("status", f.err.Status),
		slog.String("reason", f.reason),
	}
	if detail := errorDetail(err); detail != "" {
		attrs = append(attrs, slog.String("error", detail))
	}
	p.log.LogAttrs(st.parent, level, "pass-through failed", attrs...)
	if f.err.Status == apierr.StatusClientClosed {
		// Nobody reads this; the bare status is for whatever wraps w to
		// record the response status for the access log.
		w.WriteHeader(apierr.StatusClientClosed)
		return
	}
	apierr.Write(w, f.err)
}

// targetHost is the endpoint's upstream host, safe to show and log.
func targetHost(ep *config.Endpoint) string {
	if ep.Target == nil {
		return ""
	}
	return ep.Target.Host
}

// errorDetail is err's text for the log, without the request URL that
// *url.Error carries (its query may hold a secret). Our own sentinel errors
// add nothing to the reason and are omitted.
func errorDetail(err error) string {
	var pathErr *PathError
	var queryErr *QueryError
	switch {
	case err == nil, errors.Is(err, errBodyTooLarge), errors.Is(err, errHeaderTimeout):
		return ""
	case errors.As(err, &pathErr):
		return pathErr.Reason
	case errors.As(err, &queryErr):
		return queryErr.Reason
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return err.Error()
}
