package lambdaio

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/keywaygw/keyway/shared/apierr"
)

// Stream returns the Lambda handler for KEYWAY_RESPONSE_MODE=stream: REST API
// (payload 1.0) proxy events in, *events.APIGatewayProxyStreamingResponse out,
// for an integration whose ResponseTransferMode is STREAM.
//
// It bridges h the way lambdaurl.Wrap does for Function URLs: h runs in a
// goroutine writing into an io.Pipe, and Stream returns as soon as h commits
// its status and headers (first Write, Flush, or return), with the pipe's
// reader as the body. aws-lambda-go then sends the prelude (the JSON status
// and headers, then eight NUL bytes) and copies the body to the Runtime API
// as it is read; each Write of h is one read, so server-sent events leave as
// they are flushed.
//
// A response h abandons after the status was sent (a panic, including the
// http.ErrAbortHandler that httputil.ReverseProxy raises when the upstream
// body breaks, or a request context that ended before h returned) ends the
// body with an error wrapping ErrAborted: the runtime reports it as a
// function error in the Lambda-Runtime-Function-Error-* trailers, so the
// stream ends as a failed invocation instead of a complete-looking 200.
// lambdaurl.Wrap closes the pipe normally in that case (its TODO).
// Before the status is sent, the same failures are answered with a gateway
// error (502 or 500; 504 when the context ended) and a nil Lambda error, as is
// an event that cannot be converted (400).
func Stream(h http.Handler) func(ctx context.Context, e events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
	return func(ctx context.Context, e events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
		ctx, cancel := context.WithCancelCause(ctx)
		r, aerr := requestV1(ctx, &e)
		if aerr != nil {
			cancel(nil)
			resp := errorResponse(aerr)
			mv, cookies := splitCookies(resp.header)
			return &events.APIGatewayProxyStreamingResponse{
				StatusCode:        resp.status,
				MultiValueHeaders: mv,
				Cookies:           cookies,
				Body:              bytes.NewReader(resp.body),
			}, nil
		}

		pr, pw := io.Pipe()
		ready := make(chan responseHead, 1)
		w := &streamWriter{header: http.Header{}, pw: pw, ready: ready, isHEAD: r.Method == http.MethodHead}
		go w.serve(ctx, cancel, h, r)
		head := <-ready

		mv, cookies := splitCookies(head.header)
		return &events.APIGatewayProxyStreamingResponse{
			StatusCode:        head.status,
			MultiValueHeaders: mv,
			Cookies:           cookies,
			Body:              &streamBody{PipeReader: pr, cancel: cancel},
		}, nil
	}
}

type responseHead struct {
	status int
	header http.Header
}

// streamBody is the response body handed to the runtime. Closing it (the
// runtime closes it when the invocation ends, early if posting the response
// failed) cancels the handler's context so it stops instead of blocking on a
// pipe nobody reads.
type streamBody struct {
	*io.PipeReader
	cancel context.CancelCauseFunc
}

func (b *streamBody) Close() error {
	b.cancel(errBodyClosed)
	return b.PipeReader.Close()
}

var errBodyClosed = fmt.Errorf("%w: the response body was closed", ErrAborted)

// streamWriter is the http.ResponseWriter of Stream. It is used by the
// handler's goroutine only, like net/http's.
type streamWriter struct {
	header http.Header
	status int         // set by WriteHeader; 0 until then
	snap   http.Header // the header as WriteHeader saw it
	sent   bool        // the head went to ready
	isHEAD bool
	pw     *io.PipeWriter
	ready  chan<- responseHead
}

var _ http.Flusher = (*streamWriter)(nil)

func (w *streamWriter) Header() http.Header { return w.header }

// WriteHeader records the status and the header as they are now; they are
// sent with the first Write or Flush, as net/http sends them. 1xx statuses
// are dropped: the streaming prelude carries one status.
func (w *streamWriter) WriteHeader(code int) {
	checkWriteHeaderCode(code)
	if w.sent || w.status != 0 || code < 200 {
		return
	}
	w.status = code
	w.snap = w.header.Clone()
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.commit(p)
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.isHEAD {
		return len(p), nil
	}
	return w.pw.Write(p)
}

// Flush sends the status and headers if they are not sent yet. Body bytes
// need no flushing: a pipe Write returns only once the runtime has read it.
func (w *streamWriter) Flush() { w.commit(nil) }

func (w *streamWriter) commit(first []byte) {
	if w.sent {
		return
	}
	w.sent = true
	hdr := w.header
	if w.snap != nil {
		hdr = w.snap
	}
	var h http.Header
	w.status, h = commitHead(hdr, w.status, first)
	w.ready <- responseHead{status: w.status, header: h}
}

// serve runs h and ends the body: normally when h returns with its context
// alive, with an error wrapping ErrAborted when it was abandoned after the
// head was sent.
func (w *streamWriter) serve(ctx context.Context, cancel context.CancelCauseFunc, h http.Handler, r *http.Request) {
	defer cancel(nil)
	defer func() {
		if p := recover(); p != nil {
			err := panicError(ctx, p)
			if !w.sent {
				w.replace(panicResponse(p))
				w.pw.Close()
				return
			}
			w.pw.CloseWithError(err)
			return
		}
		if ctx.Err() != nil {
			cause := context.Cause(ctx)
			if !w.sent {
				w.replace(apierr.New(http.StatusGatewayTimeout, apierr.TypeTimeout, "the request ran out of time"))
				w.pw.Close()
				return
			}
			w.pw.CloseWithError(fmt.Errorf("%w: the request context ended before the handler returned: %w", ErrAborted, cause))
			return
		}
		w.commit(nil)
		w.pw.Close()
	}()
	h.ServeHTTP(w, r)
}

// replace answers e in place of a response the handler never sent.
func (w *streamWriter) replace(e *apierr.Error) {
	w.header = http.Header{}
	w.status = 0
	w.snap = nil
	apierr.Write(w, e)
}
