package govern

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// settle charges what was metered and releases what Admit took. It runs in
// the handler's defer, so on every exit path, and with a context detached
// from the client's: a client that disconnected is still charged for what
// was metered. A charge the store refuses is retried settleAttempts times,
// then logged at error level with everything needed to re-apply it.
func (g *Governor) settle(ctx context.Context, entry *reqlog.Entry, p *auth.Principal, ep *config.Endpoint,
	lease *ledger.Lease, obs *observer, status int, start time.Time) {
	m := obs.result(status)
	end := g.o.Now()
	entry.Model = m.u.Model
	entry.PricedModel = ep.Metering.PricedName(m.u.Model)
	// Input tokens include cached ones on every API (usage.TotalInputTokens).
	input := m.u.TotalInputTokens()
	entry.InputTokens, entry.OutputTokens = input, m.u.OutputTokens
	entry.CostNanos = int64(m.cost)
	entry.UsageSource = m.source

	rec := &ledger.Record{
		RequestID:    entry.RequestID,
		Endpoint:     ep.Path,
		Model:        m.u.Model,
		Spend:        m.cost,
		InputTokens:  input,
		OutputTokens: m.u.OutputTokens,
		CachedTokens: m.u.CachedInputTokens,
		StartTime:    start,
		EndTime:      end,
		StatusCode:   status,
		Status:       "success",
		UsageSource:  m.source,
		Expires:      end.Add(g.o.Retention()),
	}
	if status >= http.StatusBadRequest || status == 0 {
		rec.Status = "failure"
	}
	if p != nil && p.Key != nil {
		rec.Token, rec.KeyID, rec.KeyAlias = p.Key.Token, p.Key.TokenID, p.Key.KeyAlias
		rec.UserID, rec.TeamID = p.Key.UserID, p.Key.TeamID
	}
	charge := ledger.Charge{Cost: m.cost, InputTokens: input, OutputTokens: m.u.OutputTokens}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	var err error
	var res ledger.SettleResult
	for attempt := 0; attempt < settleAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			case <-sctx.Done():
			}
		}
		if res, err = g.o.Ledger.Settle(sctx, lease, charge, rec); err == nil {
			break
		}
	}
	if err != nil {
		entry.StoreOp = "settle"
		// Everything to re-apply the charge by hand; never a secret (the
		// token is the key's hash, as stored).
		g.o.Logger.Error("settle failed: charge not recorded",
			"request_id", rec.RequestID, "err", err.Error(),
			"cost_nanos", int64(m.cost), "reserved_nanos", int64(lease.Reserved),
			"input_tokens", input, "output_tokens", m.u.OutputTokens,
			"key_id", rec.KeyID, "user_id", rec.UserID, "team_id", rec.TeamID,
			"endpoint", rec.Endpoint, "admitted", lease.Admitted)
		return
	}
	for _, s := range res.SoftCrossed {
		g.o.Logger.Warn("soft budget crossed", "subject", s.String(), "request_id", rec.RequestID)
		if g.o.OnSoftBudget != nil {
			g.o.OnSoftBudget(s)
		}
	}
}

// denialError is the 429 for a limit, in LiteLLM's envelope: type
// budget_exceeded for budgets (LiteLLM's answer), and a type naming the
// limit for the others; param names the limit field; Retry-After says when
// capacity frees.
func denialError(d *ledger.Denial, entry *reqlog.Entry) *apierr.Error {
	var e *apierr.Error
	who := string(d.Subject.Kind)
	if d.Subject.Kind != ledger.KindKey {
		who = fmt.Sprintf("%s %q", d.Subject.Kind, d.Subject.ID)
	}
	switch d.Limit {
	case ledger.LimitBudget:
		entry.Denied = reqlog.DenyBudget
		e = apierr.New(http.StatusTooManyRequests, apierr.TypeBudgetExceeded,
			fmt.Sprintf("Budget has been exceeded: %s is at $%.6f of its max_budget $%.6f", who,
				ledger.Nanos(d.Current).Dollars(), ledger.Nanos(d.Max).Dollars()))
	case ledger.LimitRPM:
		entry.Denied = reqlog.DenyRate
		e = apierr.New(http.StatusTooManyRequests, "rpm_limit_exceeded",
			fmt.Sprintf("Rate limit exceeded: %s has made %d of its rpm_limit %d requests this minute", who, d.Current, d.Max))
	case ledger.LimitTPM:
		entry.Denied = reqlog.DenyTokens
		e = apierr.New(http.StatusTooManyRequests, "tpm_limit_exceeded",
			fmt.Sprintf("Rate limit exceeded: %s has used %d of its tpm_limit %d tokens this minute", who, d.Current, d.Max))
	default:
		entry.Denied = reqlog.DenyParallel
		e = apierr.New(http.StatusTooManyRequests, "max_parallel_requests_exceeded",
			fmt.Sprintf("Rate limit exceeded: %s has %d of its max_parallel_requests %d in flight", who, d.Current, d.Max))
	}
	e = e.WithParam(string(d.Limit))
	if d.RetryAfter > 0 {
		e.RetryAfter = int64((d.RetryAfter + time.Second - 1) / time.Second)
	}
	return e
}
