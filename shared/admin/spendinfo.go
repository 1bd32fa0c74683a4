package admin

import (
	"sync"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/ledger"
)

// Spend lives in the ledger, never in the key, user or team record (so no
// record write can overwrite it); info and list responses read it from
// there. budget_reset_at is the end of the current budget period.

// spendTarget is one rendered record whose spend is to be filled in.
type spendTarget struct {
	m      map[string]any
	s      ledger.Subject
	limits keys.Limits
}

func keyTarget(m map[string]any, k *keys.Key) spendTarget {
	id := k.TokenID
	if id == "" {
		id = k.Token
	}
	return spendTarget{m, ledger.Subject{Kind: ledger.KindKey, ID: id}, k.Limits}
}

func userTarget(m map[string]any, u *keys.User) spendTarget {
	return spendTarget{m, ledger.Subject{Kind: ledger.KindUser, ID: u.UserID}, u.Limits}
}

func teamTarget(m map[string]any, t *keys.Team) spendTarget {
	return spendTarget{m, ledger.Subject{Kind: ledger.KindTeam, ID: t.TeamID}, t.Limits}
}

// spendReadConcurrency bounds the ledger reads of one list response.
const spendReadConcurrency = 8

// fillSpend sets "spend" (dollars, current budget period) and
// "budget_reset_at" on each target from the ledger. A ledger failure is a
// 503: a response showing spend 0 for a key that has spent would mislead.
func (h *handler) fillSpend(c *call, targets ...spendTarget) *apierr.Error {
	now := h.now()
	if h.ledger == nil {
		for _, t := range targets {
			t.m["spend"] = 0.0
		}
		return nil
	}
	errs := make([]error, len(targets))
	sem := make(chan struct{}, spendReadConcurrency)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			limits := ledger.LimitsOf(t.limits)
			st, err := h.ledger.Status(c.ctx, t.s, limits, now)
			if err != nil {
				errs[i] = err
				return
			}
			t.m["spend"] = st.Spend.Dollars()
			if st.ResetAt != nil {
				t.m["budget_reset_at"] = st.ResetAt.UTC().Format(time.RFC3339)
			} else {
				t.m["budget_reset_at"] = nil
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return h.storeErr(c, err, "spend", "")
		}
	}
	return nil
}
