package config

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// reloadTimeout bounds one background reload (reading the source and
// resolving secrets), so that a hung SSM call cannot stall reloads forever.
const reloadTimeout = 30 * time.Second

// Watcher keeps the current config and re-reads the source after ttl, in the
// background: no request waits on a reload while a valid config is in hand; a
// failed or invalid reload keeps the last good config and logs why (slog,
// never a secret); the first load is synchronous and its error stops
// start-up.
//
// Reloads are lazy: Current notices a stale config and wakes the one
// background reloader, so on Lambda, where a frozen sandbox runs no timers,
// a reload happens on the first request after ttl. A failed reload is
// retried after another ttl, not on every request. Reloading also re-resolves
// os.environ/ references, so a rotated secret is picked up without a config
// change.
type Watcher struct {
	src     Source
	resolve SecretResolver
	ttl     time.Duration
	logger  *slog.Logger
	now     func() time.Time

	cur      atomic.Pointer[Config]
	attempt  atomic.Int64  // unix nanoseconds of the last load attempt's end
	loaded   atomic.Int64  // unix nanoseconds when the config in force was adopted
	kick     chan struct{} // capacity 1: a pending reload request
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{} // closed when the reloader has exited
	closeOne sync.Once
}

// NewWatcher loads the config from src once, synchronously, and returns a
// Watcher serving it; a load error is returned as is (a *Error inside for an
// invalid config) and should stop start-up. ttl <= 0 means never reload.
// ctx bounds the first load and the life of the background reloader; Close
// stops it too. A nil logger means slog.Default(). The first config's
// warnings are the caller's to report (it knows whether it is starting or
// checking); the warnings of each config adopted by a reload are logged once.
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
		logger:  logger.With("source", src.String()),
		now:     now,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	w.cur.Store(cfg)
	w.attempt.Store(now().UnixNano())
	w.loaded.Store(w.attempt.Load())
	w.ctx, w.cancel = context.WithCancel(ctx)
	if ttl > 0 {
		go w.run()
	} else {
		close(w.done)
	}
	return w, nil
}

// Current returns the config in force; never nil, never blocking. It is
// lock-free (one atomic load). When the config is older than ttl it wakes the
// background reloader without waiting for it; at most one reload runs at a
// time. Current returns the same pointer until a reload produces a different
// config, so callers may keep state derived from it (a route table) keyed by
// the pointer.
func (w *Watcher) Current() *Config {
	cfg := w.cur.Load()
	if w.stale() {
		select {
		case w.kick <- struct{}{}:
		default: // a reload is already requested
		}
	}
	return cfg
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

// Close stops background reloading and waits for a reload in progress to
// end. Current keeps returning the last config. Close is idempotent.
func (w *Watcher) Close() {
	w.closeOne.Do(w.cancel)
	<-w.done
}

func (w *Watcher) stale() bool {
	return w.ttl > 0 && w.now().UnixNano()-w.attempt.Load() >= int64(w.ttl)
}

// run is the one background reloader.
func (w *Watcher) run() {
	defer close(w.done)
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.kick:
			// A request queued while the previous reload ran is answered
			// by that reload.
			if w.stale() {
				w.reload()
			}
		}
	}
}

// reload loads the config again and adopts it if it is valid. Failures keep
// the last good config. Parse and Source errors never hold a secret value.
func (w *Watcher) reload() {
	ctx, cancel := context.WithTimeout(w.ctx, reloadTimeout)
	defer cancel()
	cfg, err := Load(ctx, w.src, w.resolve)
	w.attempt.Store(w.now().UnixNano())
	if err != nil {
		if w.ctx.Err() != nil {
			return // closing
		}
		w.logger.Warn("config reload failed; keeping the last good config", "error", err.Error())
		return
	}
	old := w.cur.Load()
	if reflect.DeepEqual(old, cfg) {
		return // unchanged: keep the pointer callers may have derived state from
	}
	w.cur.Store(cfg)
	w.loaded.Store(w.attempt.Load())
	w.logger.Info("config reloaded", "endpoints", len(cfg.Endpoints))
	w.logWarnings(cfg)
}

func (w *Watcher) logWarnings(cfg *Config) {
	for _, warning := range cfg.Warnings {
		w.logger.Warn("config warning", "warning", warning)
	}
}
