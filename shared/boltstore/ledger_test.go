package boltstore

import (
	"path/filepath"
	"testing"

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
