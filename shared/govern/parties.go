package govern

import (
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/ledger"
)

// partiesOf lists who a request is charged to, with their limits: the key
// (by TokenID, stable across regenerate), the keys it was minted from
// (LimitedBy), the key's user and the key's team, whichever exist. The master key and anonymous callers have no parties:
// their calls are metered and recorded, charged to nobody.
func partiesOf(p *auth.Principal) []ledger.Party {
	if p == nil || p.Key == nil {
		return nil
	}
	parties := make([]ledger.Party, 0, 3+len(p.Key.LimitedBy))
	k := p.Key
	id := k.TokenID
	if id == "" {
		id = k.Token // records written before token ids existed
	}
	limits := ledger.LimitsOf(k.Limits)
	parties = append(parties, ledger.Party{Subject: ledger.Subject{Kind: ledger.KindKey, ID: id}, Limits: limits})
	// A key minted by a limited key counts against that key's counters too,
	// with the limits it inherited from it.
	for _, parent := range k.LimitedBy {
		if parent != "" && parent != id {
			parties = append(parties, ledger.Party{Subject: ledger.Subject{Kind: ledger.KindKey, ID: parent}, Limits: limits})
		}
	}
	if k.UserID != "" {
		var l keys.Limits
		if p.User != nil {
			l = p.User.Limits
		}
		parties = append(parties, ledger.Party{Subject: ledger.Subject{Kind: ledger.KindUser, ID: k.UserID}, Limits: ledger.LimitsOf(l)})
	}
	if k.TeamID != "" {
		var l keys.Limits
		if p.Team != nil {
			l = p.Team.Limits
		}
		parties = append(parties, ledger.Party{Subject: ledger.Subject{Kind: ledger.KindTeam, ID: k.TeamID}, Limits: ledger.LimitsOf(l)})
	}
	return parties
}
