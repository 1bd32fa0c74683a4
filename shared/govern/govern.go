// Package govern puts Keyway's usage governance around the pass-through
// proxy: admit → forward (meter) → settle.
//
//   - Admit: when the key, its user or its team has a limit (rpm, tpm,
//     parallel requests, budget), one ledger.Admit checks and takes
//     everything for all of them atomically, before anything is forwarded.
//     A refusal is a 429 (budget: type budget_exceeded) with Retry-After; a
//     store failure is a 503 and nothing is forwarded (fail closed).
//     Principals without limits add no store access here.
//   - Meter: the upstream response body passes through a usage.Meter that
//     reads token usage as the bytes go by; the client gets the same bytes
//     at the same time.
//   - Settle: after the response ended, on every exit path (end, client
//     gone, upstream error, timeout, panic), ledger.Settle releases the
//     lease and reservation and charges the metered cost to the key, user
//     and team, writing the usage record and the day's totals. It runs
//     before the handler returns, so in Lambda it finishes before the
//     invocation does.
package govern

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/proxy"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// Forwarder streams a request to its endpoint (*proxy.Proxy).
type Forwarder interface {
	Forward(w http.ResponseWriter, r *http.Request, ep *config.Endpoint, subpath string)
}

// Options configure a Governor.
type Options struct {
	// Next forwards admitted requests. Required.
	Next Forwarder
	// Ledger keeps counters, leases, spend and usage records. Required.
	Ledger ledger.Store
	// Retention returns how long usage records are kept (the current
	// config's keyway.spend_logs_retention). Default 30 days.
	Retention func() time.Duration
	// OnSoftBudget is called once per period when a party's spend crosses
	// its soft_budget (metrics). Optional.
	OnSoftBudget func(s ledger.Subject)
	// Logger receives settle failures (with everything needed to re-apply
	// the charge) and soft-budget warnings. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// LeaseTTL is the life of an unrenewed lease. Default
	// ledger.DefaultLeaseTTL; leases are renewed every LeaseTTL/3.
	LeaseTTL time.Duration
}

// Governor is the gateway's pass-through Forwarder with governance.
type Governor struct {
	o Options
}

// New returns a Governor.
func New(o Options) *Governor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Retention == nil {
		o.Retention = func() time.Duration { return config.DefaultSpendLogsRetention }
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = ledger.DefaultLeaseTTL
	}
	return &Governor{o: o}
}

// settleAttempts and settleTimeout bound how long a charge is retried
// when the store fails; after that it is logged for re-application.
const (
	settleAttempts = 3
	settleTimeout  = 10 * time.Second
)

// Forward admits, forwards, meters and settles one pass-through request.
func (g *Governor) Forward(w http.ResponseWriter, r *http.Request, ep *config.Endpoint, subpath string) {
	entry := reqlog.FromContext(r.Context())
	principal := auth.FromContext(r.Context())
	start := g.o.Now()
	parties := partiesOf(principal)

	req := inspect(r, ep, parties)
	// Admit takes nothing and touches no store when no party has a limit;
	// the lease it returns then only carries the parties to Settle.
	lease, err := g.o.Ledger.Admit(r.Context(), &ledger.Admission{
		RequestID: entry.RequestID,
		Parties:   parties,
		Reserve:   req.reserve,
		Now:       start,
		LeaseTTL:  g.o.LeaseTTL,
	})
	if err != nil {
		g.refuse(w, r, entry, err)
		return
	}

	obs := &observer{ep: ep, inject: req.injected, lease: lease, estimate: req.estimate}
	rec := &statusWriter{ResponseWriter: w}
	stopRenew := g.renew(lease)
	defer func() {
		stopRenew()
		g.settle(r.Context(), entry, principal, ep, lease, obs, rec.status(r), start)
	}()
	g.o.Next.Forward(rec, req.r.WithContext(proxy.WithObserver(req.r.Context(), obs)), ep, subpath)
}

// renew keeps an admitted lease alive while a long response streams, so a
// slot is freed within LeaseTTL of a crash but never under a live stream.
func (g *Governor) renew(l *ledger.Lease) (stop func()) {
	if !l.Admitted {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(g.o.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), g.o.LeaseTTL/3)
				if err := g.o.Ledger.Renew(ctx, l, g.o.Now().Add(g.o.LeaseTTL)); err != nil {
					g.o.Logger.Warn("renewing a lease failed; it expires on its own", "request_id", l.RequestID, "err", err.Error())
				}
				cancel()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// refuse answers an Admit failure: a limit (429) or the store (503).
func (g *Governor) refuse(w http.ResponseWriter, r *http.Request, entry *reqlog.Entry, err error) {
	var e *apierr.Error
	if d, ok := ledger.AsDenial(err); ok {
		e = denialError(d, entry)
	} else {
		entry.Denied, entry.StoreOp = reqlog.DenyStore, "admit"
		if !errors.Is(err, context.Canceled) {
			g.o.Logger.Error("admission failed: store error", "request_id", entry.RequestID, "err", err.Error())
		}
		e = apierr.Unavailable("the limits store is unavailable; nothing was forwarded; retry later")
	}
	entry.Error = e.Message
	apierr.Write(w, e)
}

// statusWriter records the status the client got (for the usage record).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController flush and enable full duplex.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) status(r *http.Request) int {
	if s.code == 0 && r.Context().Err() != nil {
		return apierr.StatusClientClosed
	}
	return s.code
}
