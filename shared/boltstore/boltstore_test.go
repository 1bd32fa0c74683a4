package boltstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
