// Package keystest is the conformance suite every keys.Store must pass, so
// that the embedded bbolt store used locally and the DynamoDB store used in
// Lambda are interchangeable: a rule that holds on a developer's laptop holds
// in production.
//
// It is a normal package, not a _test.go file, so that each store's own tests
// can import it:
//
//	func TestConformance(t *testing.T) {
//		keystest.Run(t, func(t *testing.T) keys.Store { return newEmptyStore(t) })
//	}
//
// Beyond the rules written on keys.Store, the suite pins these choices, which
// callers (auth, admin) rely on:
//
//   - Round trips: every field comes back as written, with two allowances.
//     Times are compared with time.Time.Equal after truncation to
//     microseconds (a store may drop nanoseconds and the location). A nil and
//     an empty slice or map are the same value, so a store may normalise
//     either way (JSON null vs [], DynamoDB dropping empty lists); non-empty
//     slices keep their order, and metadata maps are compared as canonical
//     JSON, so a store may return any numeric type for a JSON number.
//     A Limits pointer to zero stays a pointer to zero: "limit 0" is not
//     "no limit".
//
//   - Rotation records: a record left behind by RotateKey with a grace
//     period always points at a current key. Rotating a key again with grace
//     re-points earlier rotation records at the newest token (keeping their
//     own expiry), so an old secret reaches the current record in one hop;
//     rotating without grace removes them, as deleting the key would. A
//     rotation record is not a key that can be updated or rotated: UpdateKey
//     and RotateKey on its token fail with ErrNotFound, so a grace secret can
//     never be turned back into a full key. DeleteKey on its token removes
//     just that record (ending the grace period early).
//
//   - DeleteUser returns the removed tokens in no particular order; the
//     suite compares them as a set.
//
//   - Lists are sorted by id byte-wise, as Go compares strings.
//
//   - Records are values: a store keeps no reference to what it is given and
//     returns records the caller may change freely.
//
//   - Records with an empty id (user id, team id, key token) are refused
//     with an error.
//
//   - A key never gets a user or team that has no record (keys.Store's
//     rule): CreateKey, and UpdateKey or RotateKey giving the key another
//     user or team, fail with ErrNotFound and write nothing. A key created
//     while DeleteUser removes its user never survives both. A key that
//     already names a missing user or team (planted, see PlantKey) can
//     still be updated and rotated as long as those stay the same, and
//     DeleteUser of a user without a record removes the keys naming it.
//
//   - Versions (versions.go): Update*/RotateKey from a stale read fail with
//     ErrConflict and write nothing; Modify* apply a change to the latest
//     record in one step; loops of concurrent self-updates never undo (nor
//     keep out) a block or a demotion, 30 trials each; DeleteKeyByID racing
//     a regenerate loop, with and without grace, leaves no secret behind;
//     writing a key blocked removes its rotation records; the grace-secret
//     limit is ErrTooManyGraceSecrets and expired rotation records do not
//     count toward it.
//
// Not pinned, because keys.Store does not say: what DeleteTeam does to the
// team's keys.
package keystest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// PlantKey writes k into s as CreateKey would (indexes, alias) but without
// checking that its user and team exist: the state that keys written before
// keys.Store required them, or imported, leave a store in. No keys.Store
// method can produce it, so each store's own test supplies this from the
// store's internals; the suite uses it only to set such keys up.
type PlantKey func(ctx context.Context, s keys.Store, k *keys.Key) error

// Run runs the conformance suite against stores made by newStore; each
// subtest gets a fresh, empty store. plant is required (see PlantKey).
//
// Run closes every store it gets, once, when its subtest ends, and checks
// that Close succeeds; newStore should not close it, but should register
// t.Cleanup for anything else the store needs removed (files, tables).
// Subtests run one after another; the concurrency subtests start at most 100
// goroutines against one store.
func Run(t *testing.T, newStore func(t *testing.T) keys.Store, plant PlantKey) {
	t.Helper()
	if plant == nil {
		t.Fatal("keystest.Run: plant is nil; the suite needs a PlantKey for the store")
	}
	groups := []struct {
		name  string
		tests []test
	}{
		{"users", userTests()},
		{"teams", teamTests()},
		{"keys", keyTests()},
		{"listing keys", listTests()},
		{"listing keys a page at a time", pageTests()},
		{"listing users a page at a time", userPageTests()},
		{"deleting a user", deleteUserTests()},
		{"rotating keys", rotateTests()},
		{"owners must exist", ownerTests()},
		{"records are values", copyTests()},
		{"concurrency", concurrencyTests()},
		{"versions: writes never undo each other", versionTests()},
		{"edge cases", edgeTests()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := newStore(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close: got error %v; want nil", err)
						}
					})
					tc.run(t, env{Store: s, plant: plant})
				})
			}
		})
	}
}

// env is the store under test, with the suite's way to plant keys.
//
// Most tests write records they built themselves rather than read back, so
// env's Update* and RotateKey fill in a zero Version from the stored record
// (a blind write). The versioning tests (versions.go) call the store itself
// (raw), where a stale Version is a keys.ErrConflict.
type env struct {
	keys.Store
	plant PlantKey
}

// raw is the store under test without env's version filling.
func raw(s keys.Store) keys.Store {
	if e, ok := s.(env); ok {
		return e.Store
	}
	return s
}

func (e env) UpdateUser(ctx context.Context, u *keys.User) error {
	if u.Version == 0 {
		if cur, err := e.Store.GetUser(ctx, u.UserID); err == nil {
			u.Version = cur.Version
		}
	}
	return e.Store.UpdateUser(ctx, u)
}

func (e env) UpdateTeam(ctx context.Context, t *keys.Team) error {
	if t.Version == 0 {
		if cur, err := e.Store.GetTeam(ctx, t.TeamID); err == nil {
			t.Version = cur.Version
		}
	}
	return e.Store.UpdateTeam(ctx, t)
}

func (e env) UpdateKey(ctx context.Context, k *keys.Key) error {
	if k.Version == 0 {
		if cur, err := e.Store.GetKey(ctx, k.Token); err == nil {
			k.Version = cur.Version
		}
	}
	return e.Store.UpdateKey(ctx, k)
}

func (e env) RotateKey(ctx context.Context, oldToken string, next *keys.Key, graceUntil *time.Time) error {
	if next.Version == 0 {
		if cur, err := e.Store.GetKey(ctx, oldToken); err == nil {
			next.Version = cur.Version
		}
	}
	return e.Store.RotateKey(ctx, oldToken, next, graceUntil)
}

// mustPlant writes k without the owner checks (see PlantKey).
func mustPlant(t *testing.T, s keys.Store, k *keys.Key) {
	t.Helper()
	e, ok := s.(env)
	if !ok {
		t.Fatalf("mustPlant: the store is not the suite's env")
	}
	noErr(t, "PlantKey("+label(k.Token)+")", e.plant(ctx(t), e.Store, k))
}

// test is one subtest: a sentence naming the rule, and its check.
type test struct {
	name string
	run  func(t *testing.T, s keys.Store)
}

// wantErr fails the test unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got error %v; want %v", what, err, target)
	}
}

// noErr stops the test on an unexpected error: later checks would only
// repeat it.
func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: got error %v; want nil", what, err)
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }
