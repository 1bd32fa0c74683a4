package dynamostore

import (
	"maps"
	"sync"

	"github.com/keywaygw/keyway/shared/ledger"
)

// counterCacheSize bounds the subjects one Store remembers counters of.
const counterCacheSize = 10_000

// counterCache is the last counters state one Store saw or wrote per
// subject: what a read returned, or what a successful write produced as far
// as this instance knows (the state it wrote against plus its own change;
// other instances' changes since are missing). It only lets Admit and
// Settle skip the read: every write built from it is conditional on the
// window, period and lease-map presence it assumed and on the limits
// themselves, so a stale entry costs a failed write and a read, never a
// wrong admission; and a refusal decided from it is confirmed by a fresh
// read before it is returned. Full, it forgets an arbitrary subject.
type counterCache struct {
	mu sync.Mutex
	m  map[ledger.Subject]counterState
}

func newCounterCache() *counterCache {
	return &counterCache{m: make(map[ledger.Subject]counterState)}
}

func (c counterState) clone() counterState {
	n := *c.Counter
	n.Leases = maps.Clone(c.Leases)
	return counterState{Counter: &n, hasLeases: c.hasLeases}
}

// get returns a copy of s's state, if known.
func (cc *counterCache) get(s ledger.Subject) (counterState, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	c, ok := cc.m[s]
	if !ok {
		return counterState{}, false
	}
	return c.clone(), true
}

// put remembers a copy of c as s's state.
func (cc *counterCache) put(s ledger.Subject, c counterState) {
	if c.Counter == nil {
		return
	}
	c = c.clone()
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.m[s]; !ok && len(cc.m) >= counterCacheSize {
		for k := range cc.m { // map order: an arbitrary subject
			delete(cc.m, k)
			break
		}
	}
	cc.m[s] = c
}

// forget drops what is known of subs (after a write whose outcome is
// unknown).
func (cc *counterCache) forget(subs ...ledger.Subject) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, s := range subs {
		delete(cc.m, s)
	}
}

// renewed records that s's lease id now expires at exp (Renew), if s's
// state is known and holds it.
func (cc *counterCache) renewed(s ledger.Subject, id string, exp int64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if c, ok := cc.m[s]; ok {
		if h, ok := c.Leases[id]; ok {
			h.Exp = exp
			c.Leases[id] = h
		}
	}
}

// len is the number of subjects remembered.
func (cc *counterCache) len() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.m)
}
