package dynamostore

import (
	"strconv"
	"testing"

	"github.com/keywaygw/keyway/shared/ledger"
)

func TestLedgerCacheBounded(t *testing.T) {
	cc := newCounterCache()
	c := counterState{Counter: ledger.NewCounter()}
	c.Leases = map[string]ledger.LeaseHold{"r1": {Exp: 1}}
	for i := range counterCacheSize + 10 {
		cc.put(ledger.Subject{Kind: ledger.KindKey, ID: strconv.Itoa(i)}, c)
	}
	if n := cc.len(); n != counterCacheSize {
		t.Errorf("after %d subjects: %d remembered; want %d", counterCacheSize+10, n, counterCacheSize)
	}
	last := ledger.Subject{Kind: ledger.KindKey, ID: strconv.Itoa(counterCacheSize + 9)}
	got, ok := cc.get(last)
	if !ok || got.Leases["r1"].Exp != 1 {
		t.Fatalf("last subject put: %+v, %v; want it remembered", got, ok)
	}
	// Copies: changing what get returned, or what put was given, changes
	// nothing remembered.
	got.Leases["r1"] = ledger.LeaseHold{Exp: 2}
	c.Leases["r1"] = ledger.LeaseHold{Exp: 3}
	if again, _ := cc.get(last); again.Leases["r1"].Exp != 1 {
		t.Errorf("lease expiry after changing the copies: %d; want 1", again.Leases["r1"].Exp)
	}
	cc.renewed(last, "r1", 4)
	if again, _ := cc.get(last); again.Leases["r1"].Exp != 4 {
		t.Errorf("lease expiry after renewed(4): %d; want 4", again.Leases["r1"].Exp)
	}
	cc.forget(last)
	if _, ok := cc.get(last); ok {
		t.Error("forgotten subject still remembered")
	}
}
