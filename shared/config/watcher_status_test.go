package config

import (
	"path/filepath"
	"testing"
	"time"
)

func TestWatcherStatus(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	clock, logs := newFakeClock(), &logBuffer{}
	w := startWatcher(t, FileSource(file), watcherResolver, time.Minute, clock, logs)
	start := clock.Now()
	st := w.Status()
	if st.Source != "file "+file || !st.LoadedAt.Equal(start) || !st.CheckedAt.Equal(start) {
		t.Fatalf("Status() = %+v; want source %q, loaded and checked at %v", st, "file "+file, start)
	}

	// An unchanged reload moves CheckedAt only.
	clock.Advance(time.Minute)
	w.Current()
	eventually(t, "the unchanged reload", func() bool { return w.Status().CheckedAt.After(start) })
	if st := w.Status(); !st.LoadedAt.Equal(start) {
		t.Errorf("LoadedAt moved on an unchanged reload: %v; want %v", st.LoadedAt, start)
	}

	// A changed config moves both.
	writeFile(t, file, endpointConfig("/b"))
	clock.Advance(time.Minute)
	w.Current()
	eventually(t, "the new config", func() bool { return firstPath(w.Current()) == "/b" })
	if st := w.Status(); !st.LoadedAt.Equal(clock.Now()) {
		t.Errorf("LoadedAt %v after a reload; want %v", st.LoadedAt, clock.Now())
	}
}
