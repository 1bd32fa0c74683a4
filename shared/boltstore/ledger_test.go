package boltstore

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/ledger/ledgertest"
)

func TestLedgerConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		s, err := Open(filepath.Join(t.TempDir(), "keyway.db"))
		if err != nil {
			t.Fatalf("Open: got error %v; want nil", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestLedgerPrunesExpiredRecords: records past their retention go, a few at
// a time, as later requests settle.
func TestLedgerPrunesExpiredRecords(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keyway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := time.Now().UTC()
	settleOne := func(id string, expires time.Time) {
		t.Helper()
		l := &ledger.Lease{RequestID: id, Parties: []ledger.Party{{Subject: ledger.Subject{Kind: ledger.KindKey, ID: "k1"}}}}
		if _, err := s.Settle(ctx, l, ledger.Charge{Cost: 1}, &ledger.Record{KeyID: "k1", EndTime: now, Expires: expires}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range pruneBatch + 2 {
		settleOne(fmt.Sprintf("old-%d", i), now.Add(-time.Hour))
	}
	settleOne("keep", now.Add(time.Hour))
	settleOne("trigger", time.Time{})
	recs, _, err := s.ListRecords(ctx, ledger.RecordFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.RequestID)
	}
	if len(recs) != 2 || !slices.Contains(ids, "keep") || !slices.Contains(ids, "trigger") {
		t.Errorf("records after pruning: got %v; want keep and trigger only", ids)
	}
	st, err := s.Status(ctx, ledger.Subject{Kind: ledger.KindKey, ID: "k1"}, ledger.Limits{}, now)
	if err != nil || st.Spend != pruneBatch+4 {
		t.Errorf("spend: got %d, %v; want %d (pruning records never touches spend)", st.Spend, err, pruneBatch+4)
	}
}
