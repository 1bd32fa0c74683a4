package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// logBuffer is a concurrency-safe slog destination.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, nil))
}

// endpointConfig is a valid config with one endpoint at path.
func endpointConfig(path string) string {
	return fmt.Sprintf(`general_settings:
  master_key: os.environ/MASTER
  pass_through_endpoints:
    - path: %s
      target: https://up.example.com
      headers: {Authorization: "Bearer os.environ/UPSTREAM"}
`, path)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func firstPath(c *Config) string {
	if c == nil || len(c.Endpoints) == 0 {
		return ""
	}
	return c.Endpoints[0].Path
}

// eventually polls cond until it holds or 5s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

const watcherSecret = "upstream-secret-do-not-log"

var watcherResolver = mapResolver{"MASTER": "sk-master-0123456789abcdefghij", "UPSTREAM": watcherSecret}

func startWatcher(t *testing.T, src Source, r SecretResolver, ttl time.Duration, clock *fakeClock, logs *logBuffer) *Watcher {
	t.Helper()
	w, err := newWatcher(context.Background(), src, r, ttl, logs.logger(), clock.Now)
	if err != nil {
		t.Fatalf("newWatcher: %v", err)
	}
	t.Cleanup(w.Close)
	return w
}

func TestWatcherReloadsAfterTTL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	clock, logs := newFakeClock(), &logBuffer{}
	w := startWatcher(t, FileSource(file), watcherResolver, time.Minute, clock, logs)
	first := w.Current()
	if got, want := firstPath(first), "/a"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}

	writeFile(t, file, endpointConfig("/b"))
	clock.Advance(59 * time.Second)
	for range 100 {
		if got := w.Current(); got != first {
			t.Fatalf("config changed before ttl: got %q", firstPath(got))
		}
	}

	clock.Advance(time.Second)
	// The first stale call waits for the reload and gets the new config:
	// idle time never makes a request see a config older than ttl.
	if got, want := firstPath(w.Current()), "/b"; got != want {
		t.Fatalf("first call after ttl: got %q; want %q", got, want)
	}
	if !strings.Contains(logs.String(), `"msg":"config reloaded"`) {
		t.Errorf("no reload log line in %s", logs)
	}
	if strings.Contains(logs.String(), watcherSecret) {
		t.Errorf("log shows a secret: %s", logs)
	}
}

// TestWatcherRealClock runs NewWatcher as start-up does, with real time.
func TestWatcherRealClock(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	w, err := NewWatcher(context.Background(), FileSource(file), watcherResolver, 10*time.Millisecond, (&logBuffer{}).logger())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	writeFile(t, file, endpointConfig("/b"))
	eventually(t, "the new config", func() bool { return firstPath(w.Current()) == "/b" })
}

func TestWatcherKeepsLastGood(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	clock, logs := newFakeClock(), &logBuffer{}
	w := startWatcher(t, FileSource(file), watcherResolver, time.Minute, clock, logs)
	good := w.Current()

	tests := []struct {
		name    string
		change  func()
		wantLog string
	}{
		{"invalid config", func() {
			writeFile(t, file, endpointConfig("/b")+"      include_subpaths: true\n")
		}, `unknown field \"include_subpaths\"`},
		{"unresolved secret", func() {
			writeFile(t, file, strings.Replace(endpointConfig("/b"), "UPSTREAM", "MISSING", 1))
		}, `os.environ/MISSING is not set`},
		{"not yaml", func() { writeFile(t, file, "general_settings: [") }, `not valid YAML or JSON`},
		{"file gone", func() {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
		}, `reading config file`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			clock.Advance(time.Minute)
			w.Current()
			eventually(t, "a failed-reload log line", func() bool {
				return strings.Count(logs.String(), "config reload failed; keeping the last good config") == i+1
			})
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log does not say %s:\n%s", tt.wantLog, logs)
			}
			if got := w.Current(); got != good {
				t.Errorf("got config %q; want the last good one", firstPath(got))
			}
		})
	}
	if strings.Contains(logs.String(), watcherSecret) || strings.Contains(logs.String(), "sk-master-0123456789abcdefghij") {
		t.Errorf("log shows a secret: %s", logs)
	}

	// A fixed config is picked up on the next reload.
	writeFile(t, file, endpointConfig("/c"))
	clock.Advance(time.Minute)
	w.Current()
	eventually(t, "the fixed config", func() bool { return firstPath(w.Current()) == "/c" })
}

// gatedSource counts reads and, once armed, holds each read until released.
type gatedSource struct {
	Source
	armed    atomic.Bool
	gate     chan struct{}
	reads    atomic.Int32
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

func (g *gatedSource) Read(ctx context.Context) ([]byte, error) {
	g.reads.Add(1)
	n := g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	for {
		m := g.maxIn.Load()
		if n <= m || g.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	if g.armed.Load() {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Source.Read(ctx)
}

// TestWatcherStaleWaitIsBounded: while a reload is stuck reading the
// source (SSM failing or slow), stale calls wait at most the reload wait and
// get the last good config; however many arrive, only one reload runs; once
// the source answers, the next call gets the new config.
func TestWatcherStaleWaitIsBounded(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	src := &gatedSource{Source: FileSource(file), gate: make(chan struct{})}
	clock := newFakeClock()
	w := startWatcher(t, src, watcherResolver, time.Second, clock, &logBuffer{})
	w.wait = 50 * time.Millisecond
	old := w.Current()

	writeFile(t, file, endpointConfig("/b"))
	src.armed.Store(true)
	clock.Advance(time.Second)

	answered := make(chan struct{})
	go func() {
		defer close(answered)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					if got := w.Current(); got != old {
						t.Errorf("got %q during a blocked reload; want the old config", firstPath(got))
						return
					}
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("Current waited past the reload wait")
	}
	if got := src.inFlight.Load(); got != 1 {
		t.Fatalf("got %d reloads in flight; want 1", got)
	}

	close(src.gate)
	eventually(t, "the new config", func() bool { return firstPath(w.Current()) == "/b" })
	w.Close() // waits for the reload: no read can still be starting
	if got, want := src.reads.Load(), int32(2); got != want {
		t.Errorf("got %d source reads; want %d (start-up and one reload)", got, want)
	}
	if got := src.maxIn.Load(); got != 1 {
		t.Errorf("got %d concurrent reads; want 1", got)
	}
}

// TestWatcherFirstRequestAfterIdle: however long the watcher sat idle (a
// frozen Lambda sandbox), the first call past ttl returns the reloaded config,
// and a reload that fails quickly falls back to the last good one at once.
func TestWatcherFirstRequestAfterIdle(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	r := &rotatingResolver{m: map[string]string{"MASTER": "sk-master-old-0123456789abcdef", "UPSTREAM": "v1"}}
	clock, logs := newFakeClock(), &logBuffer{}
	w := startWatcher(t, FileSource(file), r, 30*time.Second, clock, logs)
	for _, idle := range []time.Duration{30 * time.Second, time.Hour, 72 * time.Hour} {
		r.set("MASTER", "sk-master-after-"+idle.String()+"-0123456789")
		clock.Advance(idle)
		if got, want := w.Current().MasterKey, "sk-master-after-"+idle.String()+"-0123456789"; got != want {
			t.Fatalf("after %v idle: first call got master key %q; want %q", idle, got, want)
		}
	}
	good := w.Current()
	writeFile(t, file, "general_settings: [")
	clock.Advance(time.Minute)
	start := time.Now()
	if got := w.Current(); got != good {
		t.Errorf("failed reload: got %q; want the last good config", firstPath(got))
	}
	if waited := time.Since(start); waited > w.wait {
		t.Errorf("a failed reload held the call %v; want it answered when the reload failed", waited)
	}
	// The failure is retried after another ttl, not by every call.
	for range 10 {
		w.Current()
	}
	if got := strings.Count(logs.String(), "config reload failed"); got != 1 {
		t.Errorf("got %d failed reloads; want 1 until ttl passes again", got)
	}
}

// TestWatcherConcurrent hammers Current from many goroutines while the file
// is rewritten (valid and invalid) and reloaded. Run with -race.
func TestWatcherConcurrent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	clock := newFakeClock()
	w := startWatcher(t, FileSource(file), watcherResolver, time.Second, clock, &logBuffer{})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := w.Current()
				calls.Add(1)
				runtime.Gosched() // share the test machine's two cores with the writer
				if c == nil {
					t.Error("Current returned nil")
					return
				}
				if p := firstPath(c); p != "/a" && p != "/b" {
					t.Errorf("got endpoint %q; want /a or /b", p)
					return
				}
			}
		}()
	}
	docs := []string{endpointConfig("/b"), "general_settings: [", endpointConfig("/a")}
	for i := range 30 {
		writeFile(t, file, docs[i%len(docs)])
		clock.Advance(time.Second)
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if calls.Load() == 0 {
		t.Fatal("no Current calls ran")
	}
	// After the storm, reloading still works.
	writeFile(t, file, endpointConfig("/b"))
	clock.Advance(time.Second)
	eventually(t, "the final config", func() bool { return firstPath(w.Current()) == "/b" })
}

func TestWatcherNeverReloadsWithoutTTL(t *testing.T) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		t.Run(ttl.String(), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "keyway.yaml")
			writeFile(t, file, endpointConfig("/a"))
			src := &gatedSource{Source: FileSource(file)}
			clock := newFakeClock()
			w := startWatcher(t, src, watcherResolver, ttl, clock, &logBuffer{})
			writeFile(t, file, endpointConfig("/b"))
			clock.Advance(1000 * time.Hour)
			for range 100 {
				if got, want := firstPath(w.Current()), "/a"; got != want {
					t.Fatalf("got %q; want %q", got, want)
				}
			}
			w.Close()
			if got, want := src.reads.Load(), int32(1); got != want {
				t.Errorf("got %d reads; want %d", got, want)
			}
		})
	}
}

// TestWatcherFirstLoadFails: the first load is synchronous and its error is
// returned, so start-up stops.
func TestWatcherFirstLoadFails(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "general_settings: {master_key: os.environ/KEYWAY_MASTER_KEY}")
	tests := []struct {
		name    string
		src     Source
		want    string
		isError bool
	}{
		{"invalid", FileSource(bad), "os.environ/KEYWAY_MASTER_KEY is not set", true},
		{"missing file", FileSource(filepath.Join(dir, "missing.yaml")), "reading config file", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWatcher(context.Background(), tt.src, mapResolver{}, time.Second, nil)
			if w != nil || err == nil {
				t.Fatalf("got (%v, %v); want an error", w, err)
			}
			var cerr *Error
			if got := errors.As(err, &cerr); got != tt.isError {
				t.Errorf("errors.As(*Error) = %v; want %v (%v)", got, tt.isError, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q; want it to contain %q", err, tt.want)
			}
		})
	}
}

// rotatingResolver's answers change while the watcher runs.
type rotatingResolver struct {
	mu sync.Mutex
	m  map[string]string
}

func (r *rotatingResolver) Resolve(ctx context.Context, name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return mapResolver(r.m).Resolve(ctx, name)
}

func (r *rotatingResolver) set(name, value string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[name] = value
}

// TestWatcherUnchangedAndRotated: a reload of the same config keeps the same
// pointer (callers key derived state on it); a rotated secret alone is a
// change.
func TestWatcherUnchangedAndRotated(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	src := &gatedSource{Source: FileSource(file)}
	r := &rotatingResolver{m: map[string]string{"MASTER": "sk-master-0123456789abcdefghij", "UPSTREAM": "v1"}}
	clock, logs := newFakeClock(), &logBuffer{}
	w := startWatcher(t, src, r, time.Second, clock, logs)
	first := w.Current()

	clock.Advance(time.Second)
	w.Current()
	eventually(t, "a reload", func() bool { return src.reads.Load() == 2 })
	time.Sleep(10 * time.Millisecond) // let the reload finish adopting (or not)
	if got := w.Current(); got != first {
		t.Errorf("unchanged reload replaced the config pointer")
	}

	r.set("UPSTREAM", "v2")
	clock.Advance(time.Second)
	w.Current()
	eventually(t, "the rotated secret", func() bool {
		return w.Current().Endpoints[0].Headers.Get("Authorization") == "Bearer v2"
	})
	if strings.Contains(logs.String(), "Bearer v") {
		t.Errorf("log shows a secret: %s", logs)
	}
}

func TestWatcherClose(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	src := &gatedSource{Source: FileSource(file)}
	clock := newFakeClock()
	w := startWatcher(t, src, watcherResolver, time.Second, clock, &logBuffer{})
	w.Close()
	w.Close() // idempotent
	clock.Advance(time.Hour)
	if got, want := firstPath(w.Current()), "/a"; got != want {
		t.Errorf("after Close: got %q; want %q", got, want)
	}
	time.Sleep(10 * time.Millisecond)
	if got, want := src.reads.Load(), int32(1); got != want {
		t.Errorf("got %d reads after Close; want %d", got, want)
	}
}

// TestWatcherCloseDuringReload: Close cancels a reload stuck in the source
// and returns.
func TestWatcherCloseDuringReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, endpointConfig("/a"))
	src := &gatedSource{Source: FileSource(file), gate: make(chan struct{})}
	clock, logs := newFakeClock(), &logBuffer{}
	w := startWatcher(t, src, watcherResolver, time.Second, clock, logs)
	src.armed.Store(true)
	clock.Advance(time.Second)
	go w.Current()
	eventually(t, "the reload to start", func() bool { return src.inFlight.Load() == 1 })
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while a reload was stuck")
	}
	if strings.Contains(logs.String(), "reload failed") {
		t.Errorf("a reload cancelled by Close was logged as a failure: %s", logs)
	}
}
