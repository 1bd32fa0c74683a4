package lambdaio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/keywaygw/keyway/shared/apierr"
)

const (
	// integrationLimit is API Gateway's maximum integration timeout for a
	// buffered (non-streaming) integration: 29 s unless a quota increase was
	// granted. Past it API Gateway answers 504 itself and drops the Lambda
	// response.
	integrationLimit = 29 * time.Second
	// timeoutMargin is kept back from both limits so the gateway's own 504
	// is written and returned before API Gateway or Lambda gives up.
	timeoutMargin = time.Second
	// maxBufferedBody bounds a buffered response body. Lambda's synchronous
	// response payload limit is 6 MB, and a binary body grows by a third in
	// base64; larger responses need stream mode.
	maxBufferedBody = 4 << 20
)

// Buffered returns the Lambda handler for KEYWAY_RESPONSE_MODE=buffered, also
// what `sam local start-api` needs. It accepts the raw event, treats it as an
// HTTP API payload 2.0 event when it says "version": "2.0" and as a REST API
// (payload 1.0) event otherwise, and returns the matching response event:
// events.APIGatewayV2HTTPResponse or events.APIGatewayProxyResponse.
//
// The request is converted as for Stream (see the package documentation on
// aws-lambda-go-api-proxy); the response is collected by lambdaio's own
// writer rather than the library's ProxyResponseWriter, which answers 504
// with a Lambda error when a handler writes nothing and chooses base64 by
// UTF-8 validity only. Binary bodies (non-text Content-Type, any
// Content-Encoding, or invalid UTF-8) are base64-encoded for API Gateway.
//
// h is given until API Gateway's 29 s integration limit, counted from the
// request time in the event, or the invocation deadline, whichever is
// earlier, less a one-second margin; past it Buffered answers 504 in the
// LiteLLM envelope and cancels h's context. Every expected failure (a bad
// event, a handler that aborts or panics, a response too large to buffer) is
// a well-formed response with a nil Lambda error.
func Buffered(h http.Handler) func(ctx context.Context, raw json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		var probe struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return toV1(errorResponse(apierr.BadRequest("event", "the Lambda event is not a JSON object"))), nil
		}
		if probe.Version == "2.0" {
			var e events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &e); err != nil {
				return toV2(errorResponse(apierr.BadRequest("event", "the HTTP API event is malformed: "+err.Error()))), nil
			}
			return toV2(serveBuffered(ctx, h, func(ctx context.Context) (*http.Request, *apierr.Error) {
				return requestV2(ctx, &e)
			}, e.RequestContext.TimeEpoch)), nil
		}
		var e events.APIGatewayProxyRequest
		if err := json.Unmarshal(raw, &e); err != nil {
			return toV1(errorResponse(apierr.BadRequest("event", "the REST API event is malformed: "+err.Error()))), nil
		}
		return toV1(serveBuffered(ctx, h, func(ctx context.Context) (*http.Request, *apierr.Error) {
			return requestV1(ctx, &e)
		}, e.RequestContext.RequestTimeEpoch)), nil
	}
}

// bufferedResponse is a complete response, before it is shaped into an event.
type bufferedResponse struct {
	status int
	header http.Header
	body   []byte
}

var errTimeout = errors.New("lambdaio: API Gateway's integration limit or the invocation deadline is near")

func serveBuffered(ctx context.Context, h http.Handler, convert func(context.Context) (*http.Request, *apierr.Error), requestEpochMS int64) bufferedResponse {
	now := time.Now()
	budget := bufferedBudget(ctx, requestEpochMS, now)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r, aerr := convert(ctx)
	if aerr != nil {
		return errorResponse(aerr)
	}
	if budget <= 0 {
		cancel(errTimeout)
		return timeoutResponse()
	}

	w := &bufferedWriter{header: http.Header{}, isHEAD: r.Method == http.MethodHead}
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		h.ServeHTTP(w, r)
	}()
	timer := time.NewTimer(budget)
	defer timer.Stop()
	select {
	case <-timer.C:
		// h keeps w; it is never read again. Cancelling the context stops
		// the upstream call.
		cancel(errTimeout)
		return timeoutResponse()
	case p := <-done:
		switch {
		case w.tooLarge:
			return errorResponse(apierr.New(http.StatusBadGateway, apierr.TypeUpstream,
				fmt.Sprintf("the response is larger than buffered mode can return (%d bytes); use KEYWAY_RESPONSE_MODE=stream", maxBufferedBody)))
		case p != nil:
			_ = panicError(ctx, p) // logs it; nothing was sent, so the caller gets a gateway error
			return errorResponse(panicResponse(p))
		case ctx.Err() != nil:
			// The invocation deadline passed while h ran; what it wrote may
			// be cut short.
			return timeoutResponse()
		}
		return w.response()
	}
}

// bufferedBudget is how long the handler may take: until API Gateway's
// integration limit, counted from the request time it stamped on the event
// (a cold start's init already used some of it), or the invocation deadline,
// whichever comes first, less timeoutMargin. A request time that is missing,
// in the future (clock skew) or older than the limit itself counts as now:
// older SAM CLI versions stamp the time in seconds, not milliseconds, which
// would otherwise read as 1970 and time every request out.
func bufferedBudget(ctx context.Context, requestEpochMS int64, now time.Time) time.Duration {
	start := now
	if requestEpochMS > 0 {
		if t := time.UnixMilli(requestEpochMS); t.Before(now) && now.Sub(t) < integrationLimit {
			start = t
		}
	}
	end := start.Add(integrationLimit)
	if dl, ok := ctx.Deadline(); ok && dl.Before(end) {
		end = dl
	}
	return end.Add(-timeoutMargin).Sub(now)
}

func timeoutResponse() bufferedResponse {
	return errorResponse(apierr.New(http.StatusGatewayTimeout, apierr.TypeTimeout,
		"the upstream did not answer in time: API Gateway's 29 s integration limit (buffered mode) or the Lambda timeout was about to pass"))
}

func errorResponse(e *apierr.Error) bufferedResponse {
	w := &bufferedWriter{header: http.Header{}}
	apierr.Write(w, e)
	return w.response()
}

// toV1 shapes r as a REST API proxy response. Every header goes in
// multiValueHeaders, repeated headers (Set-Cookie among them) as separate
// values.
func toV1(r bufferedResponse) events.APIGatewayProxyResponse {
	body, b64 := encodeBody(r)
	mv := make(map[string][]string, len(r.header))
	for k, v := range r.header {
		if len(v) > 0 { // a nil value only suppressed sniffing
			mv[k] = v
		}
	}
	return events.APIGatewayProxyResponse{
		StatusCode:        r.status,
		MultiValueHeaders: mv,
		Body:              body,
		IsBase64Encoded:   b64,
	}
}

// toV2 shapes r as an HTTP API payload 2.0 response, which has no
// multi-value headers: repeated values are joined with ", " (RFC 9110 §5.3)
// and Set-Cookie values go in cookies.
func toV2(r bufferedResponse) events.APIGatewayV2HTTPResponse {
	body, b64 := encodeBody(r)
	mv, cookies := splitCookies(r.header)
	if cookies == nil {
		cookies = []string{} // "cookies": [] as HTTP API documents it, not null
	}
	headers := make(map[string]string, len(mv))
	for k, v := range mv {
		headers[k] = strings.Join(v, ", ")
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode:      r.status,
		Headers:         headers,
		Body:            body,
		IsBase64Encoded: b64,
		Cookies:         cookies,
	}
}

func encodeBody(r bufferedResponse) (string, bool) {
	if isBinary(r.header, r.body) {
		return base64.StdEncoding.EncodeToString(r.body), true
	}
	return string(r.body), false
}

// bufferedWriter collects a response, with net/http's header semantics (see
// commitHead). The handler's goroutine writes it; it is read only after the
// handler returned.
type bufferedWriter struct {
	header    http.Header
	status    int
	snap      http.Header // the header as WriteHeader saw it
	committed bool
	final     http.Header
	isHEAD    bool
	body      bytes.Buffer
	tooLarge  bool
}

var _ http.Flusher = (*bufferedWriter)(nil)

var errTooLarge = errors.New("lambdaio: response too large for buffered mode")

func (w *bufferedWriter) Header() http.Header { return w.header }

func (w *bufferedWriter) WriteHeader(code int) {
	checkWriteHeaderCode(code)
	if w.committed || w.status != 0 || code < 200 {
		return
	}
	w.status = code
	w.snap = w.header.Clone()
}

func (w *bufferedWriter) Write(p []byte) (int, error) {
	w.commit(p)
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.isHEAD {
		return len(p), nil
	}
	if w.body.Len()+len(p) > maxBufferedBody {
		w.tooLarge = true
		return 0, errTooLarge
	}
	return w.body.Write(p)
}

// Flush commits the head; there is nowhere to flush the body to.
func (w *bufferedWriter) Flush() { w.commit(nil) }

func (w *bufferedWriter) commit(first []byte) {
	if w.committed {
		return
	}
	w.committed = true
	hdr := w.header
	if w.snap != nil {
		hdr = w.snap
	}
	w.status, w.final = commitHead(hdr, w.status, first)
}

func (w *bufferedWriter) response() bufferedResponse {
	w.commit(nil)
	return bufferedResponse{status: w.status, header: w.final, body: w.body.Bytes()}
}
