package boltstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/keys/keystest"
)

func TestConformance(t *testing.T) {
	keystest.Run(t, func(t *testing.T) keys.Store {
		s, err := Open(filepath.Join(t.TempDir(), "keyway.db"))
		if err != nil {
			t.Fatalf("Open: got error %v; want nil", err)
		}
		return s
	}, plantKey)
}

// plantKey writes k as CreateKey does (record and indexes) but without
// checking that its user and team exist (keystest.PlantKey).
func plantKey(ctx context.Context, s keys.Store, k *keys.Key) error {
	err := s.(*Store).update(ctx, func(tx *bbolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketKeys), k.Token, k, 1); err != nil {
			return err
		}
		return indexKey(tx, k)
	})
	if err == nil {
		k.Version = 1
	}
	return err
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyway.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: got error %v; want nil", err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Stat: got error %v; want nil", err)
	}
	if got := fi.Mode().Perm(); got&0o077 != 0 {
		t.Errorf("file mode: got %v; want no group or other access (0600)", got)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyway.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: got error %v; want nil", err)
	}
	ctx := t.Context()
	tok := keys.Hash("sk-reopen")
	if err := s.CreateUser(ctx, &keys.User{UserID: "alice", UserRole: keys.RoleInternalUser}); err != nil {
		t.Fatalf("CreateUser: got error %v; want nil", err)
	}
	if err := s.CreateKey(ctx, &keys.Key{Token: tok, KeyAlias: "main", UserID: "alice"}); err != nil {
		t.Fatalf("CreateKey: got error %v; want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v; want nil", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("second Open: got error %v; want nil", err)
	}
	defer s.Close()
	if _, err := s.GetUser(ctx, "alice"); err != nil {
		t.Errorf("GetUser(alice) after reopen: got error %v; want nil", err)
	}
	k, err := s.GetKeyByAlias(ctx, "main")
	if err != nil {
		t.Fatalf("GetKeyByAlias(main) after reopen: got error %v; want nil", err)
	}
	if k.Token != tok {
		t.Errorf("GetKeyByAlias(main).Token after reopen: got %s; want %s", k.Token, tok)
	}
	ks, err := s.ListKeys(ctx, keys.KeyFilter{UserID: "alice"})
	if err != nil || len(ks) != 1 {
		t.Errorf("ListKeys(alice) after reopen: got %d keys, error %v; want 1 key", len(ks), err)
	}
}

func TestOpenLockedFileFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyway.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: got error %v; want nil", err)
	}
	defer s.Close()

	// bbolt's flock is per open file, so a second Open in this process
	// contends exactly as a second process would.
	s2, err := Open(path)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a locked file: got nil error; want a lock error")
	}
	for _, want := range []string{path, "locked by another process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("second Open error: got %q; want it to contain %q", err, want)
		}
	}
}

func TestOpenUnreadableFileFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyway.db")
	if err := os.WriteFile(path, []byte("this is not a bbolt file, just some text that is long enough"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if err == nil {
		t.Fatal("Open of a non-bbolt file: got nil error; want an error")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Open error: got %q; want it to contain %q", err, path)
	}

	missingDir := filepath.Join(t.TempDir(), "no-such-dir", "keyway.db")
	_, err = Open(missingDir)
	if err == nil || !strings.Contains(err.Error(), missingDir) {
		t.Errorf("Open in a missing directory: got error %v; want one naming %q", err, missingDir)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open in a missing directory: got error %v; want one wrapping os.ErrNotExist", err)
	}
}

// TestOpenBackfillsKeyIDs: a file written before the key_ids index gets it
// on Open, so DeleteKeyByID finds keys made before the upgrade.
func TestOpenBackfillsKeyIDs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyway.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	k := &keys.Key{Token: keys.Hash("sk-before-key-ids-0123456789abcdef"), TokenID: "tid-old"}
	if err := s.CreateKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketKeyIDs) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gone, err := s.DeleteKeyByID(t.Context(), "tid-old")
	if err != nil || len(gone) != 1 || gone[0] != k.Token {
		t.Errorf("DeleteKeyByID after the upgrade: got %v, %v; want the key", gone, err)
	}
}

// TestOpenRebuildsListings: a file from before the listing indexes
// (user_keys and team_keys keyed by token, no key_order, no format mark)
// is re-indexed on Open, so pages, totals and DeleteUser work on it.
func TestOpenRebuildsListings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyway.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, id := range []string{"alice", "bob"} {
		if err := s.CreateUser(ctx, &keys.User{UserID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateTeam(ctx, &keys.Team{TeamID: "ml"}); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var want []string // alice's keys, by CreatedAt
	for i := range 5 {
		owner := []string{"alice", "bob"}[i%2]
		k := &keys.Key{Token: keys.Hash(fmt.Sprintf("sk-old-layout-%d-0123456789abcdef", i)), TokenID: fmt.Sprintf("tid-%d", i),
			UserID: owner, TeamID: "ml", CreatedAt: base.Add(time.Duration(-i) * time.Minute)}
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if owner == "alice" {
			want = append([]string{k.Token}, want...)
		}
	}
	// Rewrite the indexes as the old layout had them (no user count).
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketUsers).SetSequence(0); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketKeyOrder, bucketUserKeyList, bucketTeamKeyList, bucketMeta, bucketUserKeys, bucketTeamKeys} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		users, _ := tx.CreateBucket(bucketUserKeys)
		teams, _ := tx.CreateBucket(bucketTeamKeys)
		return tx.Bucket(bucketKeys).ForEach(func(tok, v []byte) error {
			var k keys.Key
			if err := decodeRecord(v, &k); err != nil {
				return err
			}
			u, _ := users.CreateBucketIfNotExists([]byte(k.UserID))
			tm, _ := teams.CreateBucketIfNotExists([]byte(k.TeamID))
			u.Put(tok, []byte{})
			return tm.Put(tok, []byte{})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	page, total, err := s.ListKeyPage(ctx, keys.KeyFilter{UserID: "alice"}, 1, 10)
	if err != nil || total != 3 || len(page) != 2 || page[0].Token != want[1] || page[1].Token != want[2] {
		t.Errorf("ListKeyPage(alice, 1, 10) after the upgrade: %d keys, total %d, %v; want alice's 2nd and 3rd of 3", len(page), total, err)
	}
	if _, total, _ := s.ListKeyPage(ctx, keys.KeyFilter{TeamID: "ml"}, 0, 1); total != 5 {
		t.Errorf("team ml's total after the upgrade: %d; want 5", total)
	}
	if _, total, _ := s.ListKeyPage(ctx, keys.KeyFilter{}, 0, 1); total != 5 {
		t.Errorf("the total of all keys after the upgrade: %d; want 5", total)
	}
	if _, total, _ := s.ListUserPage(ctx, 0, 1); total != 2 {
		t.Errorf("the user total after the upgrade: %d; want 2", total)
	}
	if gone, err := s.DeleteUser(ctx, "bob"); err != nil || len(gone) != 2 {
		t.Errorf("DeleteUser(bob) after the upgrade: removed %d keys, %v; want 2", len(gone), err)
	}
	if _, total, _ := s.ListKeyPage(ctx, keys.KeyFilter{}, 0, 1); total != 3 {
		t.Errorf("the total of all keys after deleting bob: %d; want 3", total)
	}
	if us, total, _ := s.ListUserPage(ctx, 0, 5); total != 1 || len(us) != 1 || us[0].UserID != "alice" {
		t.Errorf("users after deleting bob: %d listed, total %d; want alice alone", len(us), total)
	}
}
