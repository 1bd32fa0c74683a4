package govern

import (
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/ledger"
)

// partiesOf lists who a request is charged to, with their limits: the key
// (by TokenID, stable across regenerate), the key's user and the key's team,
// whichever exist. The master key and anonymous callers have no parties:
// their calls are metered and recorded, charged to nobody.
func partiesOf(p *auth.Principal) []ledger.Party {
	if p == nil || p.Key == nil {
		return nil
	}
	parties := make([]ledger.Party, 0, 3)
	k := p.Key
	id := k.TokenID
	if id == "" {
		id = k.Token // records written before token ids existed
	}
	parties = append(parties, ledger.Party{Subject: ledger.Subject{Kind: ledger.KindKey, ID: id}, Limits: LimitsOf(k.Limits)})
	if k.UserID != "" {
		var l keys.Limits
		if p.User != nil {
			l = p.User.Limits
		}
		parties = append(parties, ledger.Party{Subject: ledger.Subject{Kind: ledger.KindUser, ID: k.UserID}, Limits: LimitsOf(l)})
	}
	if k.TeamID != "" {
		var l keys.Limits
		if p.Team != nil {
			l = p.Team.Limits
		}
		parties = append(parties, ledger.Party{Subject: ledger.Subject{Kind: ledger.KindTeam, ID: k.TeamID}, Limits: LimitsOf(l)})
	}
	return parties
}

// LimitsOf converts stored limits to enforced ones. The admin API only
// stores values this can represent (budgets in nano-dollars, a parsable
// budget_duration); anything else is treated as unset rather than guessed.
func LimitsOf(l keys.Limits) ledger.Limits {
	var out ledger.Limits
	if l.RPMLimit != nil && *l.RPMLimit > 0 {
		out.RPM = *l.RPMLimit
	}
	if l.TPMLimit != nil && *l.TPMLimit > 0 {
		out.TPM = *l.TPMLimit
	}
	if l.MaxParallelRequests != nil && *l.MaxParallelRequests > 0 {
		out.MaxParallel = *l.MaxParallelRequests
	}
	if l.MaxBudget != nil && *l.MaxBudget >= 0 {
		n := ledger.FromDollars(*l.MaxBudget)
		out.MaxBudget = &n
	}
	if l.SoftBudget != nil && *l.SoftBudget >= 0 {
		n := ledger.FromDollars(*l.SoftBudget)
		out.SoftBudget = &n
	}
	if p, err := ledger.ParsePeriod(l.BudgetDuration); err == nil {
		out.Period = p
	}
	return out
}
