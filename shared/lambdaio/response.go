package lambdaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/keywaygw/keyway/shared/apierr"
)

// ErrAborted is wrapped by the error a response ends with when the handler
// abandoned it after the status was sent: it panicked (httputil.ReverseProxy
// panics with http.ErrAbortHandler when the upstream body breaks), or the
// request context ended before the handler returned.
var ErrAborted = errors.New("lambdaio: response aborted mid-stream")

// commitHead returns the status and header to send when a response is
// committed, following net/http's server: status 200 unless WriteHeader set
// one; the header as it was at that moment; a Content-Type sniffed from the
// first bytes (http.DetectContentType) when the handler set none, unless it
// suppressed sniffing with Header()["Content-Type"] = nil. The local server
// does the same, so a response does not depend on where the gateway runs.
func commitHead(header http.Header, status int, first []byte) (int, http.Header) {
	if status == 0 {
		status = http.StatusOK
	}
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	_, haveType := header["Content-Type"]
	if !haveType && header.Get("Transfer-Encoding") == "" && bodyAllowed(status) && len(first) > 0 {
		h.Set("Content-Type", http.DetectContentType(first))
	}
	return status, h
}

// checkWriteHeaderCode panics like net/http's does for a status that cannot
// be sent; lambdaio recovers it and answers 500.
func checkWriteHeaderCode(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
}

// bodyAllowed reports whether a response with status may have a body (RFC
// 9110 §6.4.1).
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// isBinary reports whether a buffered response body must be base64-encoded
// for API Gateway: it carries a Content-Encoding (gzip JSON is bytes, not
// text), its Content-Type is not a text type, or it is not valid UTF-8 (a
// JSON string can only carry UTF-8 text byte for byte).
func isBinary(h http.Header, body []byte) bool {
	if len(body) == 0 {
		return false
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return true
	}
	if !utf8.Valid(body) {
		return true
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return false // valid UTF-8 of unknown type: text is exact either way
	}
	return !isTextType(ct)
}

func isTextType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript",
		"application/x-www-form-urlencoded", "application/x-ndjson", "application/jsonl",
		"application/graphql", "application/yaml", "application/x-yaml", "application/problem+json",
		"image/svg+xml":
		return true
	}
	return false
}

// splitCookies returns h without Set-Cookie, and the Set-Cookie values.
// API Gateway's streaming prelude and HTTP API responses carry cookies in
// their own field; joining Set-Cookie values with commas would corrupt them
// (an Expires attribute contains a comma).
func splitCookies(h http.Header) (map[string][]string, []string) {
	cookies := h.Values("Set-Cookie")
	out := make(map[string][]string, len(h))
	for k, v := range h {
		if http.CanonicalHeaderKey(k) == "Set-Cookie" || len(v) == 0 {
			continue
		}
		out[k] = v
	}
	return out, cookies
}

// panicError turns a recovered handler panic into the error the response
// ends with, and logs it (with the stack) unless it is the expected
// http.ErrAbortHandler.
func panicError(ctx context.Context, p any) error {
	if p == http.ErrAbortHandler {
		return fmt.Errorf("%w: the handler aborted the response (http.ErrAbortHandler)", ErrAborted)
	}
	attrs := []any{"panic", fmt.Sprint(p), "stack", string(debug.Stack())}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		attrs = append(attrs, "request_id", lc.AwsRequestID)
	}
	slog.ErrorContext(ctx, "lambdaio: handler panicked", attrs...)
	if err, ok := p.(error); ok {
		return fmt.Errorf("%w: handler panicked: %w", ErrAborted, err)
	}
	return fmt.Errorf("%w: handler panicked: %v", ErrAborted, p)
}

// panicResponse is the gateway error for a handler that panicked before it
// sent anything: 502 when it aborted (the upstream failed), 500 otherwise.
func panicResponse(p any) *apierr.Error {
	if p == http.ErrAbortHandler {
		return apierr.New(http.StatusBadGateway, apierr.TypeUpstream, "the upstream response failed before it was complete")
	}
	return apierr.New(http.StatusInternalServerError, apierr.TypeInternal, "internal error")
}
