package config

import (
	"path/filepath"
	"testing"
	"time"
)

// TestAttackHungReloadDelaysEveryRequest shows that a reload that hangs
// (SSM slow rather than failing: up to reloadTimeout = 30 s, plus SDK
// retries) delays *every* request that arrives while it hangs by the full
// reload wait (DefaultReloadWait = 3 s), not just the first one: stale()
// looks at the end of the last attempt, which does not move until the hung
// reload ends, so each Current joins the in-flight reload and waits again.
// The Watcher's doc promises "an SSM outage costs at most one wait per ttl,
// not one per request". With the production values a slow SSM adds 3 s to
// every request for up to 30 s of every ttl. Here wait = 50 ms and ten
// requests arrive one after the other during one hung reload; they should
// pay about one wait in total, not ten.
func TestAttackHungReloadDelaysEveryRequest(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	src := &gatedSource{Source: FileSource(file), gate: make(chan struct{})}
	clock := newFakeClock()
	w := startWatcher(t, src, watcherResolver, time.Minute, clock, &logBuffer{})
	w.wait = 50 * time.Millisecond
	defer close(src.gate)
	src.armed.Store(true)
	clock.Advance(time.Minute)

	start := time.Now()
	const n = 10
	for range n {
		w.Current()
	}
	took := time.Since(start)
	if took > 3*w.wait {
		t.Errorf("%d requests during one hung reload took %v in all (%v each); want at most about one reload wait (%v) in total: every request is delayed by the full wait while SSM hangs", n, took, took/n, w.wait)
	}
}
