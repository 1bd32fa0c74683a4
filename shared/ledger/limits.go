package ledger

import "github.com/keywaygw/keyway/shared/keys"

// LimitsOf converts stored limits to enforced ones. The admin API only
// stores values this can represent (budgets in nano-dollars, a parsable
// budget_duration); anything else is treated as unset rather than guessed.
func LimitsOf(l keys.Limits) Limits {
	var out Limits
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
		n := FromDollars(*l.MaxBudget)
		out.MaxBudget = &n
	}
	if l.SoftBudget != nil && *l.SoftBudget >= 0 {
		n := FromDollars(*l.SoftBudget)
		out.SoftBudget = &n
	}
	if p, err := ParsePeriod(l.BudgetDuration); err == nil {
		out.Period = p
	}
	return out
}
