package lambdaio

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestAttackIdleTimeoutCutsSlowReader shows that IdleTimeout cuts a healthy
// stream whose *caller* reads slowly. idleWriter.Write says "a write that
// blocked was the caller reading slowly, not idleness", but the timer keeps
// running while the Write is blocked in the pipe (Stream's Write returns
// only once the runtime has read it), so a Write blocked longer than the
// idle timeout fires ErrIdle: the upstream request is cancelled and the
// stream ends as aborted although the handler never stopped writing. Here
// the handler writes three chunks back to back; the caller takes 3× the
// idle timeout before reading the second.
func TestAttackIdleTimeoutCutsSlowReader(t *testing.T) {
	const idle = 100 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 3 {
			if r.Context().Err() != nil {
				return
			}
			io.WriteString(w, "chunk\n")
		}
	})
	resp, err := Stream(IdleTimeout(h, idle))(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	first := make([]byte, len("chunk\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * idle) // the caller is slow, the handler is not idle
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != 2*len("chunk\n") {
		t.Errorf("after a slow read: rest %q, %v; want two more chunks and a clean end (the handler was never idle)", rest, err)
	}
}
