package config

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestWatcherOnReload checks the metrics hook: one call per background
// reload, naming its result.
func TestWatcherOnReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	clock, logs := newFakeClock(), &logBuffer{}
	w := startWatcher(t, FileSource(file), watcherResolver, time.Minute, clock, logs)
	var mu sync.Mutex
	var results []string
	w.OnReload(func(r string) { mu.Lock(); results = append(results, r); mu.Unlock() })
	got := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(results) }

	step := func(content string, want []string) {
		t.Helper()
		if content != "" {
			writeFile(t, file, content)
		}
		clock.Advance(time.Minute)
		w.Current()
		eventually(t, "reload result", func() bool { return len(got()) == len(want) })
		if g := got(); !slices.Equal(g, want) {
			t.Fatalf("results %v; want %v", g, want)
		}
	}
	step(endpointConfig("/b"), []string{"success"})
	step("", []string{"success", "unchanged"})
	step("general_settings: [not, a, map", []string{"success", "unchanged", "failure"})
}
