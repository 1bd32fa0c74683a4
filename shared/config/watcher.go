package config

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// reloadTimeout bounds one reload (reading the source and resolving
// secrets), so that a hung SSM call cannot stall reloads forever.
const reloadTimeout = 30 * time.Second

// DefaultReloadWait is how long a request that finds the config older than
// its ttl waits for the reload it started before it is served with the last
// good config. A reload is one SSM call for the config and one per ten
// secrets, tens of milliseconds when SSM is healthy; the wait only runs out
// when SSM is failing or slow.
const DefaultReloadWait = 3 * time.Second

// Watcher keeps the current config and re-reads the source once it is older
// than ttl. A failed or invalid reload keeps the last good config and logs
// why (slog, never a secret); the first load is synchronous and its error
// stops start-up.
//
// Staleness is bounded: reloads are lazy (on Lambda a frozen sandbox runs
// no timers), and the first Current after ttl starts a reload and waits for
// it, up to DefaultReloadWait. So a request is never served with a config
// older than ttl merely because the instance was idle: a rotated master key
// is refused on the very first request after ttl. Only when the reload fails
// or outlasts the wait (SSM failing or slow) is the request served with the
// last good config; a failed reload is then retried after another ttl, so an
// SSM outage costs at most one wait per ttl, not one per request. Reloading
// also re-resolves os.environ/ references, so a rotated secret is picked up
// without a config change.
type Watcher struct {
	src     Source
	resolve SecretResolver
	ttl     time.Duration
	wait    time.Duration
	logger  *slog.Logger
	now     func() time.Time

	cur      atomic.Pointer[Config]
	onReload atomic.Pointer[func(result string)]
	attempt  atomic.Int64 // unix nanoseconds of the last load attempt's end
	loaded   atomic.Int64 // unix nanoseconds when the config in force was adopted
	ctx      context.Context
	cancel   context.CancelFunc

	mu       sync.Mutex
	inflight chan struct{} // closed when the reload in progress ends; nil when none
	// waitedOut is the reload in progress that a caller has already waited
	// DefaultReloadWait for in vain: no one waits for it again.
	waitedOut <-chan struct{}
	closed    bool
	reloads   sync.WaitGroup
}

// NewWatcher loads the config from src once, synchronously, and returns a
// Watcher serving it; a load error is returned as is (a *Error inside for an
// invalid config) and should stop start-up. ttl <= 0 means never reload.
// ctx bounds the first load and every reload (its values, such as
// WithLambdaDefaults, apply to them all); Close stops reloading too. A nil
// logger means slog.Default(). The first config's warnings are the caller's
// to report (it knows whether it is starting or checking); the warnings of
// each config adopted by a reload are logged once.
func NewWatcher(ctx context.Context, src Source, resolve SecretResolver, ttl time.Duration, logger *slog.Logger) (*Watcher, error) {
	return newWatcher(ctx, src, resolve, ttl, logger, time.Now)
}

// newWatcher is NewWatcher with a clock, for tests.
func newWatcher(ctx context.Context, src Source, resolve SecretResolver, ttl time.Duration, logger *slog.Logger, now func() time.Time) (*Watcher, error) {
	if logger == nil {
		logger = slog.Default()
	}
	cfg, err := Load(ctx, src, resolve)
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		src:     src,
		resolve: resolve,
		ttl:     ttl,
		wait:    DefaultReloadWait,
		logger:  logger.With("source", src.String()),
		now:     now,
	}
	w.cur.Store(cfg)
	w.attempt.Store(now().UnixNano())
	w.loaded.Store(w.attempt.Load())
	w.ctx, w.cancel = context.WithCancel(ctx)
	return w, nil
}

// Current returns the config in force; never nil. While the config is
// younger than ttl it is one atomic load. Once it is older, Current starts a
// reload (at most one runs at a time; concurrent callers share it) and waits
// for it up to DefaultReloadWait, then returns the new config, or the last
// good one when the reload failed or is still running. Current returns the
// same pointer until a reload produces a different config, so callers may
// keep state derived from it (a route table) keyed by the pointer.
func (w *Watcher) Current() *Config {
	cfg := w.cur.Load()
	if !w.stale() {
		return cfg
	}
	done, wait := w.startReload()
	if done == nil || !wait {
		return cfg // closed, or a caller already waited this reload out
	}
	t := time.NewTimer(w.wait)
	defer t.Stop()
	select {
	case <-done:
		return w.cur.Load()
	case <-t.C:
		// One wait per hung reload: later callers get the last good
		// config at once until it ends.
		w.mu.Lock()
		w.waitedOut = done
		w.mu.Unlock()
		w.logger.Warn("config reload is slow; serving the last good config", "waited", w.wait.String())
		return cfg
	}
}

// Status is what the admin console's status line shows about the config:
// where it comes from, when the config in force was adopted, and when the
// source was last read (a reload that found no change or failed moves
// CheckedAt, not LoadedAt). It is per instance: each Lambda execution
// environment has its own Watcher.
type Status struct {
	Source    string
	LoadedAt  time.Time
	CheckedAt time.Time
}

// Status reports the watcher's source and its last load times.
func (w *Watcher) Status() Status {
	return Status{
		Source:    w.src.String(),
		LoadedAt:  time.Unix(0, w.loaded.Load()).UTC(),
		CheckedAt: time.Unix(0, w.attempt.Load()).UTC(),
	}
}

// Close stops reloading and waits for a reload in progress to end. Current
// keeps returning the last config. Close is idempotent.
func (w *Watcher) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.reloads.Wait()
}

func (w *Watcher) stale() bool {
	return w.ttl > 0 && w.now().UnixNano()-w.attempt.Load() >= int64(w.ttl)
}

// startReload returns a channel closed when a reload that began no earlier
// than this call ends: the one in progress, or a new one. It returns nil
// once the watcher is closed.
func (w *Watcher) startReload() (<-chan struct{}, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return nil, false
	case w.inflight != nil:
		return w.inflight, w.waitedOut != w.inflight
	case !w.stale():
		// A reload ended between the caller's check and this lock.
		done := make(chan struct{})
		close(done)
		return done, true
	}
	done := make(chan struct{})
	w.inflight = done
	w.reloads.Add(1)
	go func() {
		defer w.reloads.Done()
		w.reload()
		w.mu.Lock()
		w.inflight = nil
		w.mu.Unlock()
		close(done)
	}()
	return done, true
}

// reload loads the config again and adopts it if it is valid. Failures keep
// the last good config. Parse and Source errors never hold a secret value.
func (w *Watcher) reload() {
	ctx, cancel := context.WithTimeout(w.ctx, reloadTimeout)
	defer cancel()
	// The attempt is recorded last, after the new config is in place, so a
	// caller that finds the config fresh also finds it current.
	defer func() { w.attempt.Store(w.now().UnixNano()) }()
	cfg, err := Load(ctx, w.src, w.resolve)
	if err != nil {
		if w.ctx.Err() != nil {
			return // closing
		}
		w.logger.Warn("config reload failed; keeping the last good config", "error", err.Error())
		w.reported("failure")
		return
	}
	old := w.cur.Load()
	if reflect.DeepEqual(old, cfg) {
		w.reported("unchanged")
		return // unchanged: keep the pointer callers may have derived state from
	}
	w.loaded.Store(w.now().UnixNano())
	w.cur.Store(cfg)
	w.logger.Info("config reloaded", "endpoints", len(cfg.Endpoints))
	w.logWarnings(cfg)
	w.reported("success")
}

// OnReload sets f to be called after each reload with its result:
// "success" (a new config is in force), "unchanged", or "failure" (the last
// good config stays). It is for metrics; f must not block.
func (w *Watcher) OnReload(f func(result string)) { w.onReload.Store(&f) }

func (w *Watcher) reported(result string) {
	if f := w.onReload.Load(); f != nil && *f != nil {
		(*f)(result)
	}
}

func (w *Watcher) logWarnings(cfg *Config) {
	for _, warning := range cfg.Warnings {
		w.logger.Warn("config warning", "warning", warning)
	}
}
