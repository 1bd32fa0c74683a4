package keystest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

func filterName(f keys.KeyFilter) string {
	return fmt.Sprintf("ListKeys(user %q, team %q)", f.UserID, f.TeamID)
}

func listTests() []test {
	return []test{
		{"keys are listed by user, by team, by both, or all", func(t *testing.T, s keys.Store) {
			createSix(t, s)
			for _, c := range []struct {
				f    keys.KeyFilter
				want []string
			}{
				{keys.KeyFilter{}, tokens("k1", "k2", "k3", "k4", "k5", "k6")},
				{keys.KeyFilter{UserID: "alice"}, tokens("k1", "k2", "k6")},
				{keys.KeyFilter{UserID: "bob"}, tokens("k3")},
				{keys.KeyFilter{TeamID: "ml"}, tokens("k1", "k3")},
				{keys.KeyFilter{TeamID: "ops"}, tokens("k4", "k6")},
				{keys.KeyFilter{UserID: "alice", TeamID: "ml"}, tokens("k1")},
				{keys.KeyFilter{UserID: "alice", TeamID: "ops"}, tokens("k6")},
				{keys.KeyFilter{UserID: "bob", TeamID: "ops"}, nil},
				{keys.KeyFilter{UserID: "nobody"}, nil},
				{keys.KeyFilter{TeamID: "noteam"}, nil},
			} {
				sameTokens(t, filterName(c.f), tokensOf(mustList(t, s, c.f)), c.want)
			}
		}},
		{"listed keys are ordered by CreatedAt, then token", func(t *testing.T, s keys.Store) {
			// Four keys share a CreatedAt; one was created earlier but
			// stored last.
			tied := []string{"t1", "t2", "t3", "t4"}
			for _, n := range tied {
				mustCreateKey(t, s, key(n, "alice", "ml", at(10)))
			}
			mustCreateKey(t, s, key("later", "alice", "ml", at(20)))
			mustCreateKey(t, s, key("early", "alice", "ml", at(-20)))
			var tiedTokens []string
			for _, n := range tied {
				tiedTokens = append(tiedTokens, token(n))
			}
			slices.Sort(tiedTokens)
			want := append(append([]string{token("early")}, tiedTokens...), token("later"))
			for _, f := range []keys.KeyFilter{{}, {UserID: "alice"}, {TeamID: "ml"}, {UserID: "alice", TeamID: "ml"}} {
				sameTokens(t, filterName(f), tokensOf(mustList(t, s, f)), want)
			}
		}},
		{"listed keys carry every field", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			for _, f := range []keys.KeyFilter{{}, {UserID: "alice"}, {TeamID: "ml"}, {UserID: "alice", TeamID: "ml"}} {
				ks := mustList(t, s, f)
				if len(ks) != 1 {
					t.Fatalf("%s: got %d keys; want 1", filterName(f), len(ks))
				}
				same(t, filterName(f), ks[0], fullKey("k1"))
			}
		}},
		{"listings leave out rotation records", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustCreateKey(t, s, key("other", "alice", "ml", at(5)))
			mustRotate(t, s, token("k1"), successor(fullKey("k1"), "k1b"), ptr(at(3600)))
			want := []string{token("k1b"), token("other")}
			for _, f := range []keys.KeyFilter{{}, {UserID: "alice"}, {TeamID: "ml"}, {UserID: "alice", TeamID: "ml"}} {
				sameTokenSet(t, filterName(f), tokensOf(mustList(t, s, f)), want)
			}
		}},
	}
}

func deleteUserTests() []test {
	return []test{
		{"deleting a user removes its keys and their rotation records and returns their tokens", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			mustCreateUser(t, s, fullUser("bob"))
			a1 := key("a1", "alice", "", at(1))
			a1.KeyAlias = "alice-main"
			for _, k := range []*keys.Key{
				a1,
				key("a2", "alice", "ml", at(2)),
				key("a3", "alice", "", at(3)),
				key("b1", "bob", "ml", at(4)),
				key("t1", "", "ml", at(5)),
				key("s1", "", "", at(6)),
			} {
				mustCreateKey(t, s, k)
			}
			// a3 was regenerated with a grace period: its old token is a
			// rotation record that must not outlive alice.
			mustRotate(t, s, token("a3"), successor(key("a3", "alice", "", at(3)), "a3b"), ptr(at(3600)))

			removed, err := s.DeleteUser(ctx(t), "alice")
			noErr(t, "DeleteUser(alice)", err)
			want := []string{token("a1"), token("a2"), token("a3"), token("a3b")}
			sameTokenSet(t, "DeleteUser(alice) tokens", removed, want)
			for _, tok := range want {
				wantGone(t, s, tok)
			}
			_, err = s.GetUser(ctx(t), "alice")
			wantErr(t, "GetUser(alice)", err, keys.ErrNotFound)
			sameTokens(t, "ListKeys(all)", tokensOf(mustList(t, s, keys.KeyFilter{})), []string{token("b1"), token("t1"), token("s1")})
			sameTokens(t, "ListKeys(team ml)", tokensOf(mustList(t, s, keys.KeyFilter{TeamID: "ml"})), []string{token("b1"), token("t1")})
			sameTokens(t, "ListKeys(user alice)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "alice"})), nil)
			if _, err := s.GetUser(ctx(t), "bob"); err != nil {
				t.Errorf("GetUser(bob): got error %v; want nil", err)
			}
			// alice's alias is free again.
			reuse := key("new", "bob", "", at(7))
			reuse.KeyAlias = "alice-main"
			mustCreateKey(t, s, reuse)
		}},
		{"deleting a user removes the rotation record of a key later moved to it", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			mustCreateUser(t, s, fullUser("bob"))
			old := key("k1", "bob", "", at(1))
			mustCreateKey(t, s, old)
			next := successor(old, "k1b")
			mustRotate(t, s, token("k1"), next, ptr(at(3600)))
			next.UserID = "alice"
			noErr(t, "UpdateKey(k1b) to alice", s.UpdateKey(ctx(t), next))

			removed, err := s.DeleteUser(ctx(t), "alice")
			noErr(t, "DeleteUser(alice)", err)
			sameTokenSet(t, "DeleteUser(alice) tokens", removed, []string{token("k1"), token("k1b")})
			wantGone(t, s, token("k1"))
			wantGone(t, s, token("k1b"))
		}},
		{"deleting a user leaves a key whose rotation record it once owned", func(t *testing.T, s keys.Store) {
			// The mirror case: the old secret was bob's, the key is now
			// alice's. Deleting bob must not take alice's key with it.
			mustCreateUser(t, s, fullUser("alice"))
			mustCreateUser(t, s, fullUser("bob"))
			old := key("k1", "bob", "", at(1))
			mustCreateKey(t, s, old)
			next := successor(old, "k1b")
			mustRotate(t, s, token("k1"), next, ptr(at(3600)))
			next.UserID = "alice"
			noErr(t, "UpdateKey(k1b) to alice", s.UpdateKey(ctx(t), next))

			_, err := s.DeleteUser(ctx(t), "bob")
			noErr(t, "DeleteUser(bob)", err)
			mustGetKey(t, s, token("k1b"))
		}},
	}
}
