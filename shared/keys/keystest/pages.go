package keystest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// mustPage calls ListKeyPage and returns the page's tokens and the total.
func mustPage(t *testing.T, s keys.Store, f keys.KeyFilter, offset, limit int) ([]string, int) {
	t.Helper()
	ks, total, err := s.ListKeyPage(ctx(t), f, offset, limit)
	noErr(t, fmt.Sprintf("ListKeyPage(%+v, %d, %d)", f, offset, limit), err)
	for _, k := range ks {
		if k.RotatedTo != "" {
			t.Errorf("ListKeyPage(%+v, %d, %d) returned rotation record %s", f, offset, limit, label(k.Token))
		}
	}
	return tokensOf(ks), total
}

// wantPages checks every window of want (offsets 0 … len+1, limits 1, 2
// and one larger than the listing): the page is that window, the total is
// len(want).
func wantPages(t *testing.T, s keys.Store, f keys.KeyFilter, want []string) {
	t.Helper()
	checkPages(t, s, f, want, []int{1, 2, len(want) + 5})
}

// wantListing is wantPages with one page size (2): enough to show pages
// follow a write, at a third of the calls (the DynamoDB run is on moto).
func wantListing(t *testing.T, s keys.Store, f keys.KeyFilter, want []string) {
	t.Helper()
	checkPages(t, s, f, want, []int{2})
}

func checkPages(t *testing.T, s keys.Store, f keys.KeyFilter, want []string, limits []int) {
	t.Helper()
	for offset := 0; offset <= len(want)+1; offset++ {
		for _, limit := range limits {
			got, total := mustPage(t, s, f, offset, limit)
			lo, hi := min(offset, len(want)), min(offset+limit, len(want))
			sameTokens(t, fmt.Sprintf("ListKeyPage(%+v, offset %d, limit %d)", f, offset, limit), got, want[lo:hi])
			if total != len(want) {
				t.Errorf("ListKeyPage(%+v, offset %d, limit %d): total %d; want %d", f, offset, limit, total, len(want))
			}
		}
	}
}

func tokens(names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = token(n)
	}
	return out
}

// createSix creates six keys across users alice and bob, teams ml and ops,
// and none, out of their CreatedAt and listing orders, so that an
// insertion-ordered index fails.
func createSix(t *testing.T, s keys.Store) {
	t.Helper()
	for _, k := range []*keys.Key{
		key("k6", "alice", "ops", at(6)),
		key("k3", "bob", "ml", at(3)),
		key("k1", "alice", "ml", at(1)),
		key("k5", "", "", at(5)),
		key("k2", "alice", "", at(2)),
		key("k4", "", "ops", at(4)),
	} {
		mustCreateKey(t, s, k)
	}
}

func pageTests() []test {
	return []test{
		{"a page is a window of the listing order, with the total of the listing", func(t *testing.T, s keys.Store) {
			createSix(t, s)
			for _, c := range []struct {
				f    keys.KeyFilter
				want []string
			}{
				// Unfiltered: by user ("" first), then CreatedAt, then token.
				{keys.KeyFilter{}, tokens("k4", "k5", "k1", "k2", "k6", "k3")},
				{keys.KeyFilter{UserID: "alice"}, tokens("k1", "k2", "k6")},
				{keys.KeyFilter{UserID: "bob"}, tokens("k3")},
				{keys.KeyFilter{TeamID: "ml"}, tokens("k1", "k3")},
				{keys.KeyFilter{TeamID: "ops"}, tokens("k4", "k6")},
				{keys.KeyFilter{UserID: "alice", TeamID: "ml"}, tokens("k1")},
				{keys.KeyFilter{UserID: "alice", TeamID: "ops"}, tokens("k6")},
				{keys.KeyFilter{UserID: "bob", TeamID: "ops"}, nil},
				{keys.KeyFilter{UserID: "nobody"}, nil},
				{keys.KeyFilter{TeamID: "noteam"}, nil},
				{keys.KeyFilter{UserID: "alice", TeamID: "noteam"}, nil},
			} {
				wantPages(t, s, c.f, c.want)
			}
		}},
		{"a user id that extends another does not leak into its pages", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, key("a1", "a", "", at(1)))
			mustCreateKey(t, s, key("ab1", "a#b", "", at(0)))
			mustCreateKey(t, s, key("a2", "a", "", at(2)))
			wantPages(t, s, keys.KeyFilter{UserID: "a"}, tokens("a1", "a2"))
			wantPages(t, s, keys.KeyFilter{UserID: "a#b"}, tokens("ab1"))
		}},
		{"ties on CreatedAt are broken by token", func(t *testing.T, s keys.Store) {
			names := []string{"t1", "t2", "t3", "t4"}
			for _, n := range names {
				mustCreateKey(t, s, key(n, "alice", "ml", at(10)))
			}
			want := mustList(t, s, keys.KeyFilter{UserID: "alice"}) // ListKeys: CreatedAt, then token
			for _, f := range []keys.KeyFilter{{}, {UserID: "alice"}, {TeamID: "ml"}, {UserID: "alice", TeamID: "ml"}} {
				wantPages(t, s, f, tokensOf(want))
			}
		}},
		{"pages follow every write: create, update, rotate, block, delete, delete user", func(t *testing.T, s keys.Store) {
			createSix(t, s)
			// Moving k1 from team ml to ops, and from alice to bob.
			k1 := mustGetKey(t, s, token("k1"))
			k1.TeamID, k1.UserID = "ops", "bob"
			noErr(t, "UpdateKey(k1)", s.UpdateKey(ctx(t), k1))
			wantListing(t, s, keys.KeyFilter{TeamID: "ml"}, tokens("k3"))
			wantListing(t, s, keys.KeyFilter{TeamID: "ops"}, tokens("k1", "k4", "k6"))
			wantListing(t, s, keys.KeyFilter{UserID: "alice"}, tokens("k2", "k6"))
			wantListing(t, s, keys.KeyFilter{UserID: "bob"}, tokens("k1", "k3"))
			wantListing(t, s, keys.KeyFilter{}, tokens("k4", "k5", "k2", "k6", "k1", "k3"))

			// Rotating k6 with grace: its successor takes its place; the
			// rotation record is never listed.
			grace := time.Now().Add(time.Hour)
			mustRotate(t, s, token("k6"), successor(mustGetKey(t, s, token("k6")), "k6b"), &grace)
			wantListing(t, s, keys.KeyFilter{UserID: "alice"}, tokens("k2", "k6b"))
			wantListing(t, s, keys.KeyFilter{TeamID: "ops"}, tokens("k1", "k4", "k6b"))
			wantListing(t, s, keys.KeyFilter{}, tokens("k4", "k5", "k2", "k6b", "k1", "k3"))

			// Blocking (which ends grace) keeps the key listed.
			_, err := s.ModifyKey(ctx(t), token("k6b"), func(k *keys.Key) error { k.Blocked = true; return nil })
			noErr(t, "ModifyKey(k6b, block)", err)
			wantListing(t, s, keys.KeyFilter{UserID: "alice"}, tokens("k2", "k6b"))

			noErr(t, "DeleteKey(k4)", s.DeleteKey(ctx(t), token("k4")))
			wantListing(t, s, keys.KeyFilter{TeamID: "ops"}, tokens("k1", "k6b"))
			wantListing(t, s, keys.KeyFilter{}, tokens("k5", "k2", "k6b", "k1", "k3"))

			_, err = s.DeleteUser(ctx(t), "bob")
			noErr(t, "DeleteUser(bob)", err)
			wantListing(t, s, keys.KeyFilter{UserID: "bob"}, nil)
			wantListing(t, s, keys.KeyFilter{TeamID: "ops"}, tokens("k6b"))
			wantListing(t, s, keys.KeyFilter{}, tokens("k5", "k2", "k6b"))

			_, err = s.DeleteKeyByID(ctx(t), "tid-k6")
			noErr(t, "DeleteKeyByID(tid-k6)", err)
			wantListing(t, s, keys.KeyFilter{}, tokens("k5", "k2"))
			wantListing(t, s, keys.KeyFilter{TeamID: "ops"}, nil)
		}},
		{"a bad offset or limit is an error", func(t *testing.T, s keys.Store) {
			createSix(t, s)
			for _, c := range [][2]int{{-1, 10}, {0, 0}, {0, -1}} {
				if _, _, err := s.ListKeyPage(ctx(t), keys.KeyFilter{}, c[0], c[1]); err == nil {
					t.Errorf("ListKeyPage(offset %d, limit %d): got nil error; want one", c[0], c[1])
				}
			}
		}},
	}
}

// userIDsOf returns the ids of us.
func userIDsOf(us []*keys.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.UserID
	}
	return out
}

// wantUserPages checks every window of want (user ids in order) as
// wantPages does for keys.
func wantUserPages(t *testing.T, s keys.Store, want []string) {
	t.Helper()
	for offset := 0; offset <= len(want)+1; offset++ {
		for _, limit := range []int{1, 2, len(want) + 5} {
			us, total, err := s.ListUserPage(ctx(t), offset, limit)
			noErr(t, fmt.Sprintf("ListUserPage(%d, %d)", offset, limit), err)
			lo, hi := min(offset, len(want)), min(offset+limit, len(want))
			if got := userIDsOf(us); !slices.Equal(got, want[lo:hi]) {
				t.Errorf("ListUserPage(offset %d, limit %d): got %q; want %q", offset, limit, got, want[lo:hi])
			}
			if total != len(want) {
				t.Errorf("ListUserPage(offset %d, limit %d): total %d; want %d", offset, limit, total, len(want))
			}
		}
	}
}

func userPageTests() []test {
	return []test{
		{"users are paged in id order, with the total, and follow creates and deletes", func(t *testing.T, s keys.Store) {
			wantUserPages(t, s, nil)
			for _, id := range []string{"carol", "alice", "a#b", "bob", "a"} {
				mustCreateUser(t, s, &keys.User{UserID: id})
			}
			wantUserPages(t, s, []string{"a", "a#b", "alice", "bob", "carol"})
			// A refused create, an update and a delete.
			wantErr(t, "CreateUser(bob) again", s.CreateUser(ctx(t), &keys.User{UserID: "bob"}), keys.ErrExists)
			_, err := s.ModifyUser(ctx(t), "carol", func(u *keys.User) error { u.UserAlias = "c"; return nil })
			noErr(t, "ModifyUser(carol)", err)
			mustCreateKey(t, s, key("k1", "alice", "", at(1)))
			_, err = s.DeleteUser(ctx(t), "alice")
			noErr(t, "DeleteUser(alice)", err)
			_, err = s.DeleteUser(ctx(t), "alice")
			wantErr(t, "DeleteUser(alice) again", err, keys.ErrNotFound)
			wantUserPages(t, s, []string{"a", "a#b", "bob", "carol"})
			us, _, err := s.ListUserPage(ctx(t), 3, 1)
			noErr(t, "ListUserPage(3, 1)", err)
			if len(us) != 1 || us[0].UserAlias != "c" || us[0].Version != 2 {
				t.Errorf("ListUserPage(3, 1): got %+v; want carol with her alias and version 2", us)
			}
		}},
		{"a bad offset or limit for users is an error", func(t *testing.T, s keys.Store) {
			for _, c := range [][2]int{{-1, 10}, {0, 0}, {0, -1}} {
				if _, _, err := s.ListUserPage(ctx(t), c[0], c[1]); err == nil {
					t.Errorf("ListUserPage(offset %d, limit %d): got nil error; want one", c[0], c[1])
				}
			}
		}},
	}
}
