package lambdaio

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestIdleTimeoutEndsStalledStream: an upstream that sends one event and
// then nothing is cut after the idle timeout: its request context ends (so
// the function stops instead of running to its timeout) and the Lambda
// stream ends with an error, not a complete-looking 200.
func TestIdleTimeoutEndsStalledStream(t *testing.T) {
	upstreamGone := make(chan struct{})
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(upstreamGone)
	})
	resp, err := Stream(IdleTimeout(forward(t, srv.URL), 200*time.Millisecond))(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	br := bufio.NewReader(resp.Body)
	if got := readEvent(t, br); got != "data: first\n\n" {
		t.Fatalf("first event %q", got)
	}
	start := time.Now()
	rest, err := io.ReadAll(br)
	if !errors.Is(err, ErrAborted) {
		t.Errorf("stream ended with %q, %v; want an error wrapping ErrAborted", rest, err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("stream cut after %v; want about 200ms", waited)
	}
	recv(t, upstreamGone, "the upstream request to be cancelled")
}

// TestIdleTimeoutSparesActiveStreams: a stream that writes more often than
// the idle timeout runs longer than the timeout, and a handler's wait before
// its first write is not idleness (the endpoint timeout bounds it).
func TestIdleTimeoutSparesActiveStreams(t *testing.T) {
	const idle = 100 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(3 * idle) // waiting for upstream headers
		for range 6 {
			if r.Context().Err() != nil {
				return
			}
			io.WriteString(w, "tick\n")
			w.(http.Flusher).Flush()
			time.Sleep(idle / 3)
		}
	})
	resp, err := Stream(IdleTimeout(h, idle))(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || len(body) != 6*len("tick\n") {
		t.Errorf("body %q, %v; want six ticks and a clean end", body, err)
	}
}

// TestIdleTimeoutCause: the handler's context names ErrIdle as its cause,
// and a handler that then returns quietly still ends the stream with an
// error.
func TestIdleTimeoutCause(t *testing.T) {
	cause := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "x")
		<-r.Context().Done()
		cause <- context.Cause(r.Context())
	})
	resp, err := Stream(IdleTimeout(h, 50*time.Millisecond))(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	read := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); read <- err }()
	if got := recv(t, cause, "the idle timeout"); !errors.Is(got, ErrIdle) {
		t.Errorf("cause %v; want ErrIdle", got)
	}
	if err := recv(t, read, "the stream to end"); !errors.Is(err, ErrAborted) {
		t.Errorf("stream ended with %v; want ErrAborted", err)
	}
}
