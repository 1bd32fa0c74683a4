package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/metrics"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// RequestIDHeader carries Keyway's request id back to the caller. Keyway
// always makes its own: the id keys the request's usage record and its
// settlement (charged once per id), so a caller must never choose it. A
// caller's own X-Request-Id, when short and plain, is logged beside it as
// client_request_id so it can still be traced through.
const RequestIDHeader = "X-Request-Id"

// withAccessLog wraps next with: a request id, a response writer that counts
// status and bytes, panic recovery, and one JSON access line per request.
// It never logs headers, query strings or bodies, which may hold secrets.
func (g *Gateway) withAccessLog(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		entry := &reqlog.Entry{Start: start, RequestID: newRequestID(), ClientRequestID: clientRequestID(r.Header.Get(RequestIDHeader))}
		w.Header().Set(RequestIDHeader, entry.RequestID)
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(reqlog.NewContext(r.Context(), entry))

		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				g.logger.Error("panic serving request", "request_id", entry.RequestID, "panic", p)
				if !rec.wroteHeader {
					apierr.Write(rec, apierr.New(http.StatusInternalServerError, apierr.TypeInternal, "internal error"))
				} else {
					// The status line is out: ending the response cleanly
					// would make a truncated body (a cut-off stream) look
					// complete. Abort it instead, as net/http does for
					// ErrAbortHandler (the connection is reset, a chunked
					// body gets no terminator).
					if entry.Error == "" {
						entry.Error = "panic after the response started"
					}
					p = http.ErrAbortHandler
				}
			}
			status := rec.status
			if status == 0 && r.Context().Err() != nil {
				status = apierr.StatusClientClosed
			}
			g.finish(r, entry, status, rec.bytes, time.Since(start))
			if p == http.ErrAbortHandler {
				panic(p)
			}
		}()
		next(rec, r)
	}
}

// finish reports one finished request: the metrics observation, then the
// one access line (with the EMF members under Lambda, so metrics cost no
// second line and no API call).
func (g *Gateway) finish(r *http.Request, entry *reqlog.Entry, status int, bytesOut int64, d time.Duration) {
	if g.opts.Metrics != nil {
		g.opts.Metrics.Observe(entry, status, d)
	}
	attrs := slogAttrs(entry, r, status, bytesOut, d)
	if g.opts.EMF {
		attrs = append(attrs, metrics.EMF(entry, status, d, time.Now())...)
	}
	g.logger.LogAttrs(r.Context(), accessLevel(status), "request", attrs...)
}

func accessLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func slogAttrs(e *reqlog.Entry, r *http.Request, status int, bytesOut int64, d time.Duration) []slog.Attr {
	attrs := []slog.Attr{
		slog.String("request_id", e.RequestID),
		slog.String("method", r.Method),
		slog.String("route", e.Route),
		slog.Int("status", status),
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes_out", bytesOut),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("principal", e.Principal),
	}
	if e.Endpoint != "" {
		attrs = append(attrs, slog.String("endpoint", e.Endpoint))
	}
	if e.UpstreamStatus != 0 {
		attrs = append(attrs, slog.Int("upstream_status", e.UpstreamStatus))
	}
	if e.UserID != "" {
		attrs = append(attrs, slog.String("user_id", e.UserID))
	}
	if e.TeamID != "" {
		attrs = append(attrs, slog.String("team_id", e.TeamID))
	}
	if e.Error != "" {
		attrs = append(attrs, slog.String("error", e.Error))
	}
	if e.Denied != "" {
		attrs = append(attrs, slog.String("denied", e.Denied))
	}
	if e.ClientRequestID != "" {
		attrs = append(attrs, slog.String("client_request_id", e.ClientRequestID))
	}
	if e.UsageSource != "" {
		attrs = append(attrs, slog.String("model", e.Model), slog.Int64("input_tokens", e.InputTokens),
			slog.Int64("output_tokens", e.OutputTokens), slog.Float64("cost", float64(e.CostNanos)/1e9),
			slog.String("usage_source", e.UsageSource))
	}
	return attrs
}

// clientRequestID is a caller's X-Request-Id when it is short and plain
// (safe to log), else "".
func clientRequestID(given string) string {
	if n := len(given); n == 0 || n > 64 {
		return ""
	}
	for _, c := range given {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return given
}

// newRequestID is a fresh random id (96 bits, hex).
func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder counts what is written and passes flushes through, so SSE still
// streams (http.ResponseController finds the Flusher via Unwrap).
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher for callers that type-assert.
func (r *recorder) Flush() {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
