package boltstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/keywaygw/keyway/shared/keys"
)

// lastTxID is the id of the file's last committed write transaction.
func lastTxID(t *testing.T, s *Store) int {
	t.Helper()
	id := 0
	if err := s.db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestAttackEndGraceWritesOnlyWhenNeeded: blocking a team of many keys
// calls EndGrace once per key; a key without old secrets must not cost a
// write transaction (an fsync each: blocking a team of 1,000 keys took
// 0.5 s on a fast disk, 50x another team update, and grows with the
// disk's fsync latency). A key with old secrets still has them removed.
func TestAttackEndGraceWritesOnlyWhenNeeded(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	var toks []string
	for i := range 20 {
		tok := keys.Hash(fmt.Sprintf("sk-attack-grace-%d", i))
		toks = append(toks, tok)
		if err := s.CreateKey(ctx, &keys.Key{Token: tok, TokenID: tok, CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	before := lastTxID(t, s)
	for _, tok := range toks {
		if ended, err := s.EndGrace(ctx, tok); err != nil || len(ended) != 0 {
			t.Fatalf("EndGrace of a key without old secrets: %v %v", ended, err)
		}
	}
	if n := lastTxID(t, s) - before; n != 0 {
		t.Errorf("EndGrace of 20 keys without old secrets committed %d write transactions; want 0", n)
	}
	// With an old secret: removed.
	k, err := s.GetKey(ctx, toks[0])
	if err != nil {
		t.Fatal(err)
	}
	next := *k
	next.Token = keys.Hash("sk-attack-grace-next")
	grace := now.Add(time.Hour)
	if err := s.RotateKey(ctx, k.Token, &next, &grace); err != nil {
		t.Fatal(err)
	}
	ended, err := s.EndGrace(ctx, next.Token)
	if err != nil || len(ended) != 1 || ended[0] != k.Token {
		t.Fatalf("EndGrace with one old secret: %v %v; want [%s]", ended, err, abbrev(k.Token))
	}
	if _, err := s.GetKey(ctx, k.Token); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("GetKey(old secret) after EndGrace: %v; want ErrNotFound", err)
	}
}
