// Package proxy is Keyway's streaming pass-through core: it forwards an
// already classified, authenticated and authorized request to its endpoint's
// upstream and relays the answer.
//
// Bodies stream both ways byte-exact and unparsed; SSE and unknown-length
// responses are flushed chunk by chunk. The upstream host is always the
// configured one and sub-paths cannot climb above the target's path (see
// JoinURL). The caller's credential never reaches the upstream (see
// outboundHeader). Failures the gateway itself makes are LiteLLM-style
// envelopes with a status from one mapping (see Proxy.classify).
//
// It is built on httputil.ReverseProxy with Rewrite, never Director:
// headers a Director sets can afterwards be removed as hop-by-hop, and a
// Director cannot tell the client's X-Forwarded-* from its own.
package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// Options configure a Proxy. Every field has a usable zero value.
type Options struct {
	// Transport sends upstream requests. Default NewTransport(). Build it
	// once per process so that connections are pooled across requests.
	Transport http.RoundTripper
	// MaxRequestBodyBytes caps a request body: a larger announced
	// Content-Length gets 413 before anything is forwarded, and an
	// unannounced (chunked) body is cut at the limit, failing the upstream
	// request with 413. Default config.DefaultMaxRequestBody.
	MaxRequestBodyBytes int64
	// Logger receives one line per gateway-made failure. It never gets
	// header values, query strings or bodies. Default slog.Default().
	Logger *slog.Logger
}

// Proxy forwards pass-through requests. It is built once per process (or
// config) and safe for concurrent use; per-request state travels in the
// request context.
type Proxy struct {
	rp      *httputil.ReverseProxy
	maxBody atomic.Int64
	log     *slog.Logger
}

// New builds a Proxy and its one httputil.ReverseProxy.
func New(o Options) *Proxy {
	p := &Proxy{log: o.Logger}
	p.SetMaxRequestBodyBytes(o.MaxRequestBodyBytes)
	if p.log == nil {
		p.log = slog.Default()
	}
	transport := o.Transport
	if transport == nil {
		transport = NewTransport()
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: transport,
		// Flush every write: SSE and unknown-length bodies (which
		// ReverseProxy flushes immediately anyway) and known-length ones,
		// so that a Lambda response stream never holds bytes back.
		FlushInterval:  -1,
		BufferPool:     &bufferPool{},
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.handleError,
		// ReverseProxy's own messages are body-copy errors; they carry no
		// URL, header or body.
		ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
	}
	return p
}

// SetMaxRequestBodyBytes changes the body limit for requests that start
// from now on (a reloaded keyway.max_request_body_bytes); n <= 0 means
// config.DefaultMaxRequestBody.
func (p *Proxy) SetMaxRequestBodyBytes(n int64) {
	if n <= 0 {
		n = config.DefaultMaxRequestBody
	}
	p.maxBody.Store(n)
}

// state is one request's forwarding state, carried from Forward to the
// ReverseProxy hooks in the request context.
type state struct {
	ep      *config.Endpoint
	url     *url.URL
	entry   *reqlog.Entry
	body    *limitedBody    // nil when the request has no body
	parent  context.Context // the client's request context
	ctx     context.Context // parent, canceled with errHeaderTimeout
	timer   *time.Timer     // fires errHeaderTimeout; stopped on headers
	timeout time.Duration
	maxBody int64     // the body limit this request was held to
	start   time.Time // the request's arrival (entry.Start), for UpstreamTTFB
}

type stateKey struct{}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

// Forward streams r to ep's upstream at ep.Target joined with subpath, the
// still-escaped rest of the request path (route.Route.Subpath: "" or
// starting with "/"), and relays the response to w.
//
// ep.Timeout bounds the time from sending the request until the upstream's
// response headers arrive (so it includes the upload); the response body is
// not bounded, so long streams live. If the client goes away, the upstream
// request is canceled.
//
// Forward records Endpoint, UpstreamStatus, BytesIn and Error in the
// request's reqlog entry. A client that left before the response started
// gets a bare WriteHeader(499) (for status-recording wrappers) and nothing
// else. If the upstream's body breaks after the status was sent, Forward
// panics with http.ErrAbortHandler (as ReverseProxy does under net/http) so
// that the server aborts the response instead of ending it cleanly; an
// enclosing recover must re-panic it.
//
// Forward flushes and enables full duplex through http.ResponseController,
// so a wrapper around w must implement Unwrap() http.ResponseWriter (or
// Flush and EnableFullDuplex itself); otherwise streams are buffered.
func (p *Proxy) Forward(w http.ResponseWriter, r *http.Request, ep *config.Endpoint, subpath string) {
	parent := r.Context()
	entry := reqlog.FromContext(parent)
	entry.Endpoint = ep.Path
	st := &state{ep: ep, entry: entry, parent: parent, timeout: ep.Timeout, start: entry.Start}
	if st.start.IsZero() {
		st.start = time.Now()
	}
	if st.timeout <= 0 {
		st.timeout = config.DefaultTimeout
	}

	u, err := JoinURL(ep.Target, subpath, r.URL.RawQuery)
	if err != nil {
		p.fail(w, st, err)
		return
	}
	st.url = u
	st.maxBody = p.maxBody.Load()
	if r.ContentLength > st.maxBody {
		p.fail(w, st, errBodyTooLarge)
		return
	}

	ctx, cancel := context.WithCancelCause(parent)
	st.ctx = ctx
	st.timer = time.AfterFunc(st.timeout, func() { cancel(errHeaderTimeout) })

	out := r.WithContext(context.WithValue(ctx, stateKey{}, st))
	fullDuplex := false
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
		st.body = newLimitedBody(r.Body, r.ContentLength, st.maxBody)
		out.Body = st.body
		// An HTTP/1 server otherwise drains and closes the request body as
		// soon as the response headers go out, and the transport, still
		// reading it (if only to see EOF after a Content-Length), then
		// fails and drops the upstream connection mid-response. A proxy
		// also must let an upstream answer before it has read the whole
		// upload (streaming both ways, early errors). Writers that cannot
		// do this (Lambda bridges) return an error; their bodies are whole.
		fullDuplex = http.NewResponseController(w).EnableFullDuplex() == nil
	}
	defer func() {
		st.timer.Stop()
		cancel(nil) // tear down the upstream request first
		entry.BytesIn = st.body.count()
		if fullDuplex {
			// In full-duplex mode net/http would drain the rest of the
			// body only after the handler, where reaching EOF starts a
			// background read that races the next request on the
			// connection (golang/go#68560). Draining it here is safe.
			//
			// Unless the upload is still open: an upstream that answered
			// without reading it (401, 413, 429) leaves the transport's
			// writer blocked in a Read of the client's body, holding
			// net/http's body lock, and Close would wait for the client
			// to send more. A read deadline in the past ends that Read at
			// once; the connection is not reused.
			if st.body.reading() {
				closeOpenBody(w, r.Body)
			} else {
				r.Body.Close()
			}
		}
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler && entry.Error == "" {
				entry.Error = "response body interrupted"
				if parent.Err() != nil {
					entry.Error = "client closed request"
				}
			}
			panic(v)
		}
	}()

	// An upstream answer without Content-Type must reach the client without
	// one: a present-but-nil entry stops net/http from sniffing one.
	if h := w.Header(); h["Content-Type"] == nil {
		h["Content-Type"] = nil
	}
	p.rp.ServeHTTP(newHeaderKeeper(w), out)
}

// closeOpenBody closes a request body that the transport is still blocked
// reading: an upstream that answered without reading the upload (401, 413,
// 429) while the client keeps it open leaves the transport's writer in a
// Read of the body, holding net/http's body lock, so a plain Close would
// wait for the client to send more and the response would never end. A
// read deadline in the past ends that Read (and Close's own drain) at once;
// the connection, its upload half-read, is then dropped by the server at
// its next read rather than reused.
func closeOpenBody(w http.ResponseWriter, body io.Closer) {
	if http.NewResponseController(w).SetReadDeadline(time.Now()) != nil {
		go body.Close() // cannot interrupt the Read: at least do not wait for it
		return
	}
	body.Close()
}

// rewrite sets the upstream URL and headers. It runs after ReverseProxy has
// removed the hop-by-hop headers (RFC 9110 §7.6.1) and the client's
// Forwarded/X-Forwarded-* headers; it adds no X-Forwarded-* of its own, so
// the caller's address is not disclosed to upstream vendors.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	st := stateFrom(pr.In.Context())
	// The URL is built from the client's raw query, not pr.Out's:
	// ReverseProxy re-encodes queries it considers unparsable (";", bad
	// escapes), and the query must be forwarded byte-for-byte.
	pr.Out.URL = st.url
	pr.Out.Host = st.url.Host
	pr.Out.Header = outboundHeader(pr.Out.Header, st.ep)
	if o := observerFrom(st.parent); o != nil {
		o.Outbound(pr.Out.Header)
	}
}

// modifyResponse runs once the upstream's response headers are in: it stops
// the header timeout and records the upstream status. An error here makes
// ReverseProxy discard the response and call handleError.
func (p *Proxy) modifyResponse(res *http.Response) error {
	st := stateFrom(res.Request.Context())
	st.entry.UpstreamStatus = res.StatusCode
	st.entry.UpstreamTTFB = time.Since(st.start)
	if res.StatusCode == http.StatusSwitchingProtocols {
		st.timer.Stop()
		return errUpgradeRefused
	}
	if !st.timer.Stop() {
		return errHeaderTimeout // fired as the headers arrived; the body is canceled
	}
	if err := st.body.readErr(); err == errBodyTooLarge {
		return err // the upstream answered a body that was cut off
	}
	confineResponse(res.Header)
	if o := observerFrom(st.parent); o != nil {
		o.Response(res)
	}
	return nil
}

// handleError is ReverseProxy's ErrorHandler: the round trip failed or
// modifyResponse refused the response; nothing has been written yet.
func (p *Proxy) handleError(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r.Context())
	if st == nil { // not called through Forward; cannot happen
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	p.fail(w, st, err)
}
