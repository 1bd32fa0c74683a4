package dynamostore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/ledger/ledgertest"
)

// TestLedgerAlternatingInstancesRarelyRead: requests that alternate between
// two instances on one key (admit on one, settle on the other) keep both
// caches usable: counts moved by the other instance fail no condition; only
// a window, period or lease map the instance has not seen does, about once
// per minute, instance and operation. The calls are logged.
func TestLedgerAlternatingInstancesRarelyRead(t *testing.T) {
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	a, opsA := countedStore(srv, table)
	b, opsB := countedStore(srv, table)
	ctx := t.Context()
	budget := ledger.FromDollars(100)
	p := ledger.Party{Subject: ledger.Subject{Kind: ledger.KindKey, ID: "k1"}, Limits: ledger.Limits{RPM: 1000, TPM: 100000, MaxParallel: 10, MaxBudget: &budget}}
	count := func(ops []string) map[string]int {
		m := map[string]int{}
		for _, o := range ops {
			m[o]++
		}
		return m
	}
	for round, start := range []time.Time{ledgertest.T0, ledgertest.T0.Add(time.Minute)} {
		admitOps, settleOps := map[string]int{}, map[string]int{}
		for i := range 20 {
			st, other := a, b
			if i%2 == 1 {
				st, other = b, a
			}
			now := start.Add(time.Duration(i) * time.Second)
			opsA.take()
			opsB.take()
			l, err := st.Admit(ctx, &ledger.Admission{RequestID: fmt.Sprintf("r%d-%d", round, i), Parties: []ledger.Party{p}, Reserve: 1000, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range count(append(opsA.take(), opsB.take()...)) {
				admitOps[k] += v
			}
			if _, err := other.Settle(ctx, l, ledger.Charge{Cost: 500, OutputTokens: 10}, &ledger.Record{KeyID: "k1", EndTime: now.Add(time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
			for k, v := range count(append(opsA.take(), opsB.take()...)) {
				settleOps[k] += v
			}
		}
		t.Logf("minute %d, 20 requests alternating instances: Admit calls %v; Settle calls %v", round, admitOps, settleOps)
		// At most one miss or stale state per instance and operation.
		if admitOps["GetItem"] > 2 || settleOps["GetItem"] > 2 || admitOps["UpdateItem"] > 22 || settleOps["TransactWriteItems"] > 22 {
			t.Errorf("minute %d: Admit calls %v, Settle calls %v; want at most 2 reads and 2 failed writes each", round, admitOps, settleOps)
		}
	}
}
