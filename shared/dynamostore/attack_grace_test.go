package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/boltstore"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
)

// Attack tests on keys.Store.EndGrace, DynamoDB against bbolt.

func graceStores(t *testing.T) map[string]keys.Store {
	t.Helper()
	srv := awstest.Start(t)
	client, table := awstest.NewTable(t, srv)
	b, err := boltstore.Open(filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return map[string]keys.Store{"dynamo": dynamostore.New(client, table), "bolt": b}
}

func graceKey(t *testing.T, user, alias string) *keys.Key {
	k := newKey(t, func(k *keys.Key) { k.UserID = user; k.KeyAlias = alias })
	return k
}

func rotateWithGrace(ctx context.Context, s keys.Store, cur *keys.Key, grace time.Time) (*keys.Key, error) {
	stored, err := s.GetKey(ctx, cur.Token)
	if err != nil {
		return nil, err
	}
	next := *stored
	sec, _ := keys.NewSecret()
	next.Token = keys.Hash(sec)
	next.KeyName = keys.Abbrev(sec)
	return &next, s.RotateKey(ctx, stored.Token, &next, &grace)
}

// TestAttackEndGraceFullGraceAndVersion: a key with the maximum number of
// old secrets (64: one transaction of 65 items) has its grace ended; the
// key, its alias and its key id survive; a writer holding the key as read
// before EndGrace can still write it — the stores differ (see the end).
func TestAttackEndGraceFullGraceAndVersion(t *testing.T) {
	ctx := context.Background()
	res := map[string]string{}
	for name, s := range graceStores(t) {
		t.Run(name, func(t *testing.T) {
			if err := s.CreateUser(ctx, &keys.User{UserID: "u", UserRole: keys.RoleInternalUser}); err != nil {
				t.Fatal(err)
			}
			cur := graceKey(t, "u", "al")
			if err := s.CreateKey(ctx, cur); err != nil {
				t.Fatal(err)
			}
			var old []string
			grace := time.Now().Add(time.Hour)
			for range keys.MaxGraceSecrets {
				next, err := rotateWithGrace(ctx, s, cur, grace)
				if err != nil {
					t.Fatalf("rotate %d: %v", len(old), err)
				}
				old = append(old, cur.Token)
				cur = next
			}
			before, err := s.GetKey(ctx, cur.Token)
			if err != nil {
				t.Fatal(err)
			}
			ended, err := s.EndGrace(ctx, cur.Token)
			if err != nil {
				t.Fatalf("EndGrace with %d old secrets: %v", len(old), err)
			}
			if len(ended) != len(old) {
				t.Errorf("EndGrace ended %d; want %d", len(ended), len(old))
			}
			for _, o := range old {
				if _, err := s.GetKey(ctx, o); !errors.Is(err, keys.ErrNotFound) {
					t.Errorf("old secret record after EndGrace: %v; want not found", err)
					break
				}
			}
			after, err := s.GetKey(ctx, cur.Token)
			if err != nil {
				t.Fatal(err)
			}
			if a, err := s.GetKeyByAlias(ctx, "al"); err != nil || a.Token != cur.Token {
				t.Errorf("alias after EndGrace: %v", err)
			}
			b, a := *before, *after
			b.Version, a.Version = 0, 0
			if fmt.Sprint(b) != fmt.Sprint(a) {
				t.Errorf("key changed by EndGrace:\n before %+v\n after  %+v", b, a)
			}
			res[name] = fmt.Sprintf("version %d -> %d", before.Version, after.Version)
			// A writer that read the key before EndGrace.
			stale := *before
			stale.Metadata = map[string]any{"x": "y"}
			err = s.UpdateKey(ctx, &stale)
			res[name] += fmt.Sprintf("; update from the read before EndGrace: %v", err)
			// Rotate with grace once more, then delete by id: nothing left.
			next, err := rotateWithGrace(ctx, s, cur, grace)
			if err != nil {
				t.Fatalf("rotate after EndGrace: %v", err)
			}
			removed, err := s.DeleteKeyByID(ctx, cur.TokenID)
			if err != nil || len(removed) != 2 {
				t.Errorf("DeleteKeyByID after EndGrace+rotate: %v %d; want 2 removed", err, len(removed))
			}
			for _, tok := range []string{cur.Token, next.Token} {
				if _, err := s.GetKey(ctx, tok); !errors.Is(err, keys.ErrNotFound) {
					t.Errorf("after DeleteKeyByID: %v", err)
				}
			}
		})
	}
	// Found: DynamoDB advances the key's Version (its rotated_from set is
	// in the key item) and bbolt does not, so a writer holding the key as
	// read before EndGrace conflicts on one store only. Harmless where it
	// is used (the admin API re-reads on conflict); keys.Store now says a
	// store may advance Version.
	t.Logf("bolt:   %s", res["bolt"])
	t.Logf("dynamo: %s", res["dynamo"])
}

// TestAttackEndGraceRacesRotate: EndGrace (following the key, as the admin
// API does) races a loop of RotateKey with grace on DynamoDB. Whatever the
// interleaving, no rotation record may be orphaned: after DeleteKeyByID no
// token ever issued is left.
func TestAttackEndGraceRacesRotate(t *testing.T) {
	ctx := context.Background()
	srv := awstest.Start(t)
	for trial := range 3 {
		client, table := awstest.NewTable(t, srv)
		s := dynamostore.New(client, table)
		if err := s.CreateUser(ctx, &keys.User{UserID: "u", UserRole: keys.RoleInternalUser}); err != nil {
			t.Fatal(err)
		}
		cur := graceKey(t, "u", "")
		if err := s.CreateKey(ctx, cur); err != nil {
			t.Fatal(err)
		}
		grace := time.Now().Add(time.Hour)
		var mu sync.Mutex
		all := []string{cur.Token}
		first := cur.Token
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cur
			for range 4 {
				// A concurrent EndGrace rewrites the key (a new version):
				// the rotate then reports a conflict and is tried again, as
				// /key/regenerate does.
				next, err := rotateWithGrace(ctx, s, c, grace)
				for try := 0; errors.Is(err, keys.ErrConflict) && try < 20; try++ {
					next, err = rotateWithGrace(ctx, s, c, grace)
				}
				if err != nil {
					t.Errorf("rotate: %v", err)
					return
				}
				mu.Lock()
				all = append(all, next.Token)
				mu.Unlock()
				c = next
			}
		}()
		tok := first
		for range 6 {
			_, err := s.EndGrace(ctx, tok)
			if errors.Is(err, keys.ErrNotFound) {
				if r, err := s.GetKey(ctx, tok); err == nil && r.RotatedTo != "" {
					tok = r.RotatedTo
				}
				continue
			}
			if err != nil {
				t.Errorf("EndGrace: %v", err)
			}
		}
		wg.Wait()
		if _, err := s.DeleteKeyByID(ctx, cur.TokenID); err != nil {
			t.Fatalf("trial %d: DeleteKeyByID: %v", trial, err)
		}
		for i, tok := range all {
			if _, err := s.GetKey(ctx, tok); !errors.Is(err, keys.ErrNotFound) {
				t.Errorf("trial %d: token %d of %d left after DeleteKeyByID: %v", trial, i, len(all), err)
			}
		}
	}
}
