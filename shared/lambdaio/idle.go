package lambdaio

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// ErrIdle is the cause with which IdleTimeout ends a request's context.
var ErrIdle = errors.New("lambdaio: response idle timeout: nothing was written to the caller for too long")

// IdleTimeout returns h with a body-idle timeout: once h has started its
// response (the first Write or Flush), if h then writes nothing for d, the
// request's context is cancelled with ErrIdle. The upstream call stops and
// the response ends as an aborted stream (see Stream). d <= 0 returns h.
//
// Why: in Lambda a caller that goes away does not stop the function. API
// Gateway ends a REGIONAL streamed response that carries no bytes for 300
// seconds, and a response stream whose reader is gone does not always fail
// the function's writes, so an upstream that stalls mid-stream would keep
// the function running (and billed) until the function timeout. The wait for
// the response head is the endpoint's own timeout (config.LambdaTimeout by
// default), so this timer starts with the first body write.
func IdleTimeout(h http.Handler, d time.Duration) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		iw := &idleWriter{ResponseWriter: w, d: d, cancel: cancel}
		h.ServeHTTP(iw, r.WithContext(ctx))
		if iw.stop() && errors.Is(context.Cause(ctx), ErrIdle) {
			// A handler that returns quietly after the timeout must not
			// leave a cut response looking complete.
			panic(http.ErrAbortHandler)
		}
	})
}

// idleWriter restarts the idle timer around every Write and Flush.
type idleWriter struct {
	http.ResponseWriter
	d      time.Duration
	cancel context.CancelCauseFunc

	mu    sync.Mutex
	timer *time.Timer // nil until the response starts
	done  bool
}

var _ http.Flusher = (*idleWriter)(nil)

func (w *idleWriter) touch() {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.done:
	case w.timer == nil:
		w.timer = time.AfterFunc(w.d, func() { w.cancel(ErrIdle) })
	default:
		w.timer.Reset(w.d)
	}
}

// stop stops the timer and reports whether the response had started.
func (w *idleWriter) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
		return true
	}
	return false
}

// pause stops the timer while a write is under way: a write that blocks is
// the caller reading slowly, not idleness.
func (w *idleWriter) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
}

func (w *idleWriter) Write(p []byte) (int, error) {
	w.touch() // the response has started: the timer exists from here on
	w.pause()
	n, err := w.ResponseWriter.Write(p)
	w.touch()
	return n, err
}

func (w *idleWriter) Flush() {
	w.touch()
	_ = http.NewResponseController(w.ResponseWriter).Flush() // http.Flusher has no error to report
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
