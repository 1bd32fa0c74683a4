package boltstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/keywaygw/keyway/shared/keys"
)

// checkListings verifies the listing indexes against the key records: every
// listing bucket's sequence is its entry count, every entry names a current
// key record whose sort key is the entry's name (and whose owner is the
// bucket's), every current key has its entries, and ListKeyPage's totals and
// pages equal ListKeys for every filter.
func checkListings(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	users := map[string]bool{}
	teams := map[string]bool{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		recs := tx.Bucket(bucketKeys)
		current := map[string]*keys.Key{}
		err := recs.ForEach(func(tok, v []byte) error {
			var k keys.Key
			if err := decodeRecord(v, &k); err != nil {
				return err
			}
			if k.RotatedTo == "" {
				current[string(tok)] = &k
				if k.UserID != "" {
					users[k.UserID] = true
				}
				if k.TeamID != "" {
					teams[k.TeamID] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		check := func(where string, b *bbolt.Bucket, name func(*keys.Key) string, owns func(*keys.Key) bool) {
			n := 0
			seen := map[string]bool{}
			b.ForEach(func(e, v []byte) error {
				if v == nil {
					t.Errorf("%s: nested bucket %q in a listing", where, e)
					return nil
				}
				n++
				k := current[string(v)]
				switch {
				case k == nil:
					t.Errorf("%s: entry %q names %s, which is not a current key", where, e, abbrev(string(v)))
				case name(k) != string(e):
					t.Errorf("%s: entry %q for key whose sort key is %q", where, e, name(k))
				case !owns(k):
					t.Errorf("%s: entry %q for a key of user %q team %q", where, e, k.UserID, k.TeamID)
				}
				seen[string(v)] = true
				return nil
			})
			if int(b.Sequence()) != n {
				t.Errorf("%s: sequence %d, %d entries", where, b.Sequence(), n)
			}
			for tok, k := range current {
				if owns(k) && !seen[tok] {
					t.Errorf("%s: current key %s (user %q team %q) not listed", where, abbrev(tok), k.UserID, k.TeamID)
				}
			}
		}
		check("key_order", tx.Bucket(bucketKeyOrder), keys.KeyListOrder, func(*keys.Key) bool { return true })
		for _, o := range []struct {
			parent []byte
			owner  func(*keys.Key) string
		}{{bucketUserKeyList, func(k *keys.Key) string { return k.UserID }}, {bucketTeamKeyList, func(k *keys.Key) string { return k.TeamID }}} {
			tx.Bucket(o.parent).ForEach(func(id, v []byte) error {
				owner := string(id)
				b := tx.Bucket(o.parent).Bucket(id)
				if b == nil {
					t.Errorf("%s: %q is not a bucket", o.parent, id)
					return nil
				}
				if k, _ := b.Cursor().First(); k == nil {
					t.Errorf("%s/%s: empty bucket kept", o.parent, owner)
				}
				check(fmt.Sprintf("%s/%s", o.parent, owner), b, keys.OwnerListOrder, func(k *keys.Key) bool { return o.owner(k) == owner })
				return nil
			})
			for tok, k := range current {
				if ow := o.owner(k); ow != "" && tx.Bucket(o.parent).Bucket([]byte(ow)) == nil {
					t.Errorf("%s: key %s of %q: owner has no listing", o.parent, abbrev(tok), ow)
				}
			}
		}
		if users := tx.Bucket(bucketUsers); int(users.Sequence()) != users.Stats().KeyN {
			t.Errorf("users: sequence %d, %d users", users.Sequence(), users.Stats().KeyN)
		}
		// The previous release's owner indexes (what its DeleteUser reads
		// after a rollback): exactly each current key's token under its
		// user and team.
		for _, o := range []struct {
			parent []byte
			owner  func(*keys.Key) string
		}{{bucketUserKeys, func(k *keys.Key) string { return k.UserID }}, {bucketTeamKeys, func(k *keys.Key) string { return k.TeamID }}} {
			want := map[string]map[string]bool{}
			for tok, k := range current {
				if ow := o.owner(k); ow != "" {
					if want[ow] == nil {
						want[ow] = map[string]bool{}
					}
					want[ow][tok] = true
				}
			}
			tx.Bucket(o.parent).ForEach(func(id, _ []byte) error {
				for _, tok := range indexTokens(tx, o.parent, string(id)) {
					if !want[string(id)][tok] {
						t.Errorf("%s/%s: token %s is not a current key of it", o.parent, id, abbrev(tok))
					}
					delete(want[string(id)], tok)
				}
				return nil
			})
			for ow, toks := range want {
				for tok := range toks {
					t.Errorf("%s/%s: current key %s missing", o.parent, ow, abbrev(tok))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filters := []keys.KeyFilter{{}}
	for u := range users {
		filters = append(filters, keys.KeyFilter{UserID: u})
		for tm := range teams {
			filters = append(filters, keys.KeyFilter{UserID: u, TeamID: tm})
		}
	}
	for tm := range teams {
		filters = append(filters, keys.KeyFilter{TeamID: tm})
	}
	for _, f := range filters {
		all, err := s.ListKeys(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var paged []*keys.Key
		for off := 0; ; off += 3 {
			pg, total, err := s.ListKeyPage(ctx, f, off, 3)
			if err != nil {
				t.Fatal(err)
			}
			if total != len(all) {
				t.Errorf("ListKeyPage(%+v, %d, 3): total %d; ListKeys has %d", f, off, total, len(all))
			}
			paged = append(paged, pg...)
			if len(pg) < 3 {
				break
			}
		}
		if len(paged) != len(all) {
			t.Errorf("ListKeyPage(%+v): pages hold %d keys; ListKeys has %d", f, len(paged), len(all))
			continue
		}
		got := map[string]bool{}
		for _, k := range paged {
			if got[k.Token] {
				t.Errorf("ListKeyPage(%+v): %s listed twice", f, abbrev(k.Token))
			}
			got[k.Token] = true
		}
		for _, k := range all {
			if !got[k.Token] {
				t.Errorf("ListKeyPage(%+v): %s missing", f, abbrev(k.Token))
			}
		}
	}
}

// randomOps runs n random store operations from r on s, tolerating the
// errors that random operations legitimately meet.
func randomOps(t *testing.T, s *Store, r *rand.Rand, n int, prefix string) {
	ctx := context.Background()
	users := []string{"a", "a#b", "b", "ü\x01"}
	teams := []string{"t1", "t2", "t#3"}
	base := time.Date(2125, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+1", 3600))
	created := func() time.Time { return base.Add(time.Duration(r.IntN(4)) * time.Second) }
	pick := func(xs []string) string {
		if r.IntN(4) == 0 {
			return ""
		}
		return xs[r.IntN(len(xs))]
	}
	serial := 0
	fresh := func() string {
		serial++
		return keys.Hash(fmt.Sprintf("sk-%s-%d", prefix, serial))
	}
	anyKey := func() *keys.Key {
		ks, err := s.ListKeys(ctx, keys.KeyFilter{})
		if err != nil || len(ks) == 0 {
			return nil
		}
		return ks[r.IntN(len(ks))]
	}
	ok := func(op string, err error) {
		if err == nil || errors.Is(err, keys.ErrNotFound) || errors.Is(err, keys.ErrExists) ||
			errors.Is(err, keys.ErrConflict) || errors.Is(err, keys.ErrTooManyGraceSecrets) {
			return
		}
		var onf *keys.OwnerNotFoundError
		if errors.As(err, &onf) {
			return
		}
		t.Errorf("%s: %v", op, err)
	}
	for range n {
		switch r.IntN(14) {
		case 0, 1:
			for _, u := range users {
				ok("CreateUser", s.CreateUser(ctx, &keys.User{UserID: u}))
			}
			for _, tm := range teams {
				ok("CreateTeam", s.CreateTeam(ctx, &keys.Team{TeamID: tm}))
			}
		case 2, 3, 12, 13:
			tok := fresh()
			alias := ""
			if r.IntN(3) == 0 {
				alias = fmt.Sprintf("alias-%d", r.IntN(5))
			}
			ok("CreateKey", s.CreateKey(ctx, &keys.Key{Token: tok, TokenID: "id-" + tok[:16], UserID: pick(users), TeamID: pick(teams), KeyAlias: alias, CreatedAt: created()}))
		case 4:
			if k := anyKey(); k != nil {
				k.UserID, k.TeamID = pick(users), pick(teams)
				if r.IntN(2) == 0 {
					k.CreatedAt = created()
				}
				k.Blocked = r.IntN(3) == 0
				ok("UpdateKey", s.UpdateKey(ctx, k))
			}
		case 5:
			if k := anyKey(); k != nil {
				_, err := s.ModifyKey(ctx, k.Token, func(k *keys.Key) error {
					k.CreatedAt = created()
					k.TeamID = pick(teams)
					return nil
				})
				ok("ModifyKey", err)
			}
		case 6, 7:
			if k := anyKey(); k != nil {
				next := *k
				next.Token = fresh()
				if r.IntN(2) == 0 {
					next.UserID, next.TeamID, next.CreatedAt = pick(users), pick(teams), created()
				}
				var grace *time.Time
				if r.IntN(3) != 0 {
					g := time.Now().Add(time.Hour)
					if r.IntN(4) == 0 {
						g = time.Now().Add(-time.Hour)
					}
					grace = &g
				}
				ok("RotateKey", s.RotateKey(ctx, k.Token, &next, grace))
			}
		case 8:
			if k := anyKey(); k != nil {
				ok("DeleteKey", s.DeleteKey(ctx, k.Token))
			}
		case 9:
			if k := anyKey(); k != nil {
				_, err := s.DeleteKeyByID(ctx, k.TokenID)
				ok("DeleteKeyByID", err)
			}
		case 10:
			if r.IntN(3) != 0 {
				continue
			}
			_, err := s.DeleteUser(ctx, users[r.IntN(len(users))])
			ok("DeleteUser", err)
		case 11:
			ok("DeleteTeam", s.DeleteTeam(ctx, teams[r.IntN(len(teams))]))
		}
	}
}

// TestAttackListingsRandomOps: after many random writes, the listing
// indexes agree with the records and ListKeyPage agrees with ListKeys.
func TestAttackListingsRandomOps(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "k.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			r := rand.New(rand.NewPCG(seed, 1))
			for range 10 {
				randomOps(t, s, r, 40, "s")
				checkListings(t, s)
				if t.Failed() {
					return
				}
			}
		})
	}
}

// TestAttackListingsConcurrentOps: the same with writers racing.
func TestAttackListingsConcurrentOps(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			randomOps(t, s, rand.New(rand.NewPCG(uint64(w), 7)), 150, fmt.Sprint("w", w))
		}()
	}
	wg.Wait()
	checkListings(t, s)
}

// TestAttackListingsReopen: reopening a current file neither rebuilds nor
// changes the listings.
func TestAttackListingsReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	randomOps(t, s, rand.New(rand.NewPCG(3, 3)), 200, "r")
	checkListings(t, s)
	s.Close()
	for range 2 {
		if s, err = Open(path); err != nil {
			t.Fatal(err)
		}
		checkListings(t, s)
		s.Close()
	}
}

// TestAttackListingsOddOffsetCreatedAt: a CreatedAt whose zone offset has
// seconds (local mean time; time.LoadLocation gives one for dates before
// ~1900 in most zones) does not survive JSON: RFC 3339 offsets carry no
// seconds, so the stored instant differs from the caller's. The listing
// entries must be named from what is stored, else removing the key later
// (named from the stored record) misses them.
func TestAttackListingsOddOffsetCreatedAt(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if err := s.CreateUser(ctx, &keys.User{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTeam(ctx, &keys.Team{TeamID: "ml"}); err != nil {
		t.Fatal(err)
	}
	odd := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("LMT", 32))
	tok := keys.Hash("sk-odd-offset")
	k := &keys.Key{Token: tok, TokenID: "odd", UserID: "alice", TeamID: "ml", CreatedAt: odd}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	checkListings(t, s)
	// The same through UpdateKey and RotateKey.
	tok2 := keys.Hash("sk-odd-offset-2")
	if err := s.CreateKey(ctx, &keys.Key{Token: tok2, TokenID: "odd2", UserID: "alice", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	k2, _ := s.GetKey(ctx, tok2)
	k2.CreatedAt = odd.Add(time.Second)
	if err := s.UpdateKey(ctx, k2); err != nil {
		t.Fatal(err)
	}
	checkListings(t, s)
	if err := s.DeleteKey(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteKey(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	checkListings(t, s)
	if _, total, err := s.ListKeyPage(ctx, keys.KeyFilter{UserID: "alice"}, 0, 10); err != nil || total != 0 {
		t.Errorf("alice's total after deleting every key: %d, %v; want 0", total, err)
	}
	if _, total, err := s.ListKeyPage(ctx, keys.KeyFilter{}, 0, 10); err != nil || total != 0 {
		t.Errorf("the total after deleting every key: %d, %v; want 0", total, err)
	}
}

// TestAttackListingsAfterPreviousReleaseWrote: the release before the
// listing indexes (1e596ce) runs on a file this one wrote (a rollback) and
// creates a key the way it did: user_keys/<user> and team_keys/<team>
// entries named by token, nothing in the listing indexes. The next Open
// must notice and rebuild, or the key stays out of the listings for good.
// And the previous release's DeleteUser, which reads user_keys by token,
// must find the keys this release wrote (it found none while this release
// kept its listings in user_keys).
func TestAttackListingsAfterPreviousReleaseWrote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.CreateUser(ctx, &keys.User{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, &keys.Key{Token: keys.Hash("sk-new"), TokenID: "new", UserID: "alice", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.db.View(func(tx *bbolt.Tx) error { // 1e596ce's DeleteUser reads this
		if toks := indexTokens(tx, bucketUserKeys, "alice"); len(toks) != 1 || toks[0] != keys.Hash("sk-new") {
			t.Errorf("user_keys/alice as the previous release reads it: %d tokens; want the key this release created", len(toks))
		}
		return nil
	})
	old := &keys.Key{Token: keys.Hash("sk-by-old-release"), TokenID: "old", UserID: "alice", CreatedAt: time.Now()}
	err = s.db.Update(func(tx *bbolt.Tx) error { // 1e596ce's CreateKey
		if err := putJSON(tx.Bucket(bucketKeys), old.Token, old, 1); err != nil {
			return err
		}
		if err := tx.Bucket(bucketKeyIDs).Put([]byte(old.TokenID), []byte(old.Token)); err != nil {
			return err
		}
		return indexAdd(tx, bucketUserKeys, old.UserID, old.Token)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkListings(t, s)
	if gone, err := s.DeleteUser(ctx, "alice"); err != nil || len(gone) != 2 {
		t.Errorf("DeleteUser(alice): removed %d, %v; want both keys", len(gone), err)
	}
}

// TestAttackListingsReopenDoesNotRebuild: a file last written by this
// store is trusted on Open (a marker put into key_order through the
// store's own write path survives a reopen), so the rollback check does
// not turn every start into a rebuild.
func TestAttackListingsReopenDoesNotRebuild(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := s.CreateUser(ctx, &keys.User{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	err = s.update(ctx, func(tx *bbolt.Tx) error { return tx.Bucket(bucketKeyOrder).Put([]byte("marker"), []byte("x")) })
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s.Close()
		if s, err = Open(path); err != nil {
			t.Fatal(err)
		}
		s.db.View(func(tx *bbolt.Tx) error {
			if tx.Bucket(bucketKeyOrder).Get([]byte("marker")) == nil {
				t.Errorf("reopening a file this store wrote rebuilt the listings")
			}
			return nil
		})
	}
	s.Close()
}
