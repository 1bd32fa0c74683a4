package keystest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

// scribbleUser changes u everywhere a shared reference could leak: scalars,
// slice elements, nested metadata and Limits pointer targets.
func scribbleUser(u *keys.User) {
	u.UserEmail = "scribbled"
	u.Teams[0] = "scribbled"
	u.Metadata["owner"] = "scribbled"
	u.Metadata["quota"].(map[string]any)["daily"] = -1
	*u.MaxBudget = -1
}

func scribbleTeam(tm *keys.Team) {
	tm.TeamAlias = "scribbled"
	tm.AllowedPassthroughRoutes[0] = "/scribbled"
	tm.Metadata["owner"] = "scribbled"
	tm.Metadata["tags"].([]any)[0] = "scribbled"
	*tm.RPMLimit = 99
}

func scribbleKey(k *keys.Key) {
	k.KeyName = "scribbled"
	k.AllowedRoutes[0] = "/scribbled"
	k.Metadata["owner"] = "scribbled"
	k.Metadata["quota"].(map[string]any)["daily"] = -1
	*k.Expires = at(-1)
	*k.TPMLimit = 1
}

func copyTests() []test {
	return []test{
		{"changing a record after storing it does not change the store", func(t *testing.T, s keys.Store) {
			u, tm, k := fullUser("alice"), fullTeam("ml"), fullKey("k1")
			mustCreateUser(t, s, u)
			mustCreateTeam(t, s, tm)
			mustCreateKey(t, s, k)
			scribbleUser(u)
			scribbleTeam(tm)
			scribbleKey(k)
			wantStored(t, s)

			// The same after an update.
			u, tm, k = fullUser("alice"), fullTeam("ml"), fullKey("k1")
			noErr(t, "UpdateUser", s.UpdateUser(ctx(t), u))
			noErr(t, "UpdateTeam", s.UpdateTeam(ctx(t), tm))
			noErr(t, "UpdateKey", s.UpdateKey(ctx(t), k))
			scribbleUser(u)
			scribbleTeam(tm)
			scribbleKey(k)
			wantStored(t, s)

			// And for the record passed to RotateKey.
			next := successor(fullKey("k1"), "k1b")
			mustRotate(t, s, token("k1"), next, nil)
			scribbleKey(next)
			same(t, "GetKey(k1b) after changing the rotated record", mustGetKey(t, s, token("k1b")), successor(fullKey("k1"), "k1b"))
		}},
		{"changing a returned record does not change the store", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			mustCreateTeam(t, s, fullTeam("ml"))
			mustCreateKey(t, s, fullKey("k1"))

			u, err := s.GetUser(ctx(t), "alice")
			noErr(t, "GetUser", err)
			scribbleUser(u)
			us, err := s.ListUsers(ctx(t))
			noErr(t, "ListUsers", err)
			scribbleUser(us[0])

			tm, err := s.GetTeam(ctx(t), "ml")
			noErr(t, "GetTeam", err)
			scribbleTeam(tm)
			ts, err := s.ListTeams(ctx(t))
			noErr(t, "ListTeams", err)
			scribbleTeam(ts[0])

			scribbleKey(mustGetKey(t, s, token("k1")))
			byAlias, err := s.GetKeyByAlias(ctx(t), "alias-k1")
			noErr(t, "GetKeyByAlias", err)
			scribbleKey(byAlias)
			scribbleKey(mustList(t, s, keys.KeyFilter{})[0])
			scribbleKey(mustList(t, s, keys.KeyFilter{UserID: "alice"})[0])

			wantStored(t, s)
		}},
	}
}

// wantStored checks that alice, ml and k1 are still their fixtures.
func wantStored(t *testing.T, s keys.Store) {
	t.Helper()
	u, err := s.GetUser(ctx(t), "alice")
	noErr(t, "GetUser(alice)", err)
	same(t, "GetUser(alice)", u, fullUser("alice"))
	tm, err := s.GetTeam(ctx(t), "ml")
	noErr(t, "GetTeam(ml)", err)
	same(t, "GetTeam(ml)", tm, fullTeam("ml"))
	same(t, "GetKey(k1)", mustGetKey(t, s, token("k1")), fullKey("k1"))
}

// parallel runs f(i) for i in [0, n) at once and returns the errors by i.
// A start barrier makes the calls overlap as much as the store allows.
func parallel(n int, f func(i int) error) []error {
	errs := make([]error, n)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return errs
}

func concurrencyTests() []test {
	return []test{
		{"100 concurrent creates of keys with distinct tokens all succeed", func(t *testing.T, s keys.Store) {
			const n = 100
			for i := range 3 {
				mustOwners(t, s, key("owner", fmt.Sprintf("user%d", i), "", at(0)))
			}
			errs := parallel(n, func(i int) error {
				k := key(fmt.Sprintf("p%03d", i), fmt.Sprintf("user%d", i%3), "", at(i))
				k.KeyAlias = fmt.Sprintf("alias-%03d", i)
				return s.CreateKey(ctx(t), k)
			})
			for i, err := range errs {
				if err != nil {
					t.Errorf("CreateKey(p%03d): got error %v; want nil", i, err)
				}
			}
			if got := len(mustList(t, s, keys.KeyFilter{})); got != n {
				t.Errorf("ListKeys(all): got %d keys; want %d", got, n)
			}
			if got := len(mustList(t, s, keys.KeyFilter{UserID: "user1"})); got != n/3 {
				t.Errorf("ListKeys(user1): got %d keys; want %d", got, n/3)
			}
		}},
		{"20 concurrent creates with the same alias: exactly one succeeds", func(t *testing.T, s keys.Store) {
			const n = 20
			mustOwners(t, s, key("owner", "alice", "", at(0)))
			errs := parallel(n, func(i int) error {
				k := key(fmt.Sprintf("same%02d", i), "alice", "", at(i))
				k.KeyAlias = "contested"
				return s.CreateKey(ctx(t), k)
			})
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("CreateKey(same%02d): got nil error; want ErrExists (same%02d already won)", i, winner)
				case err == nil:
					winner = i
				default:
					wantErr(t, fmt.Sprintf("CreateKey(same%02d)", i), err, keys.ErrExists)
				}
			}
			if winner < 0 {
				t.Fatalf("CreateKey with alias contested: got %d failures; want exactly one success", n)
			}
			wantAliasAt(t, s, "contested", token(fmt.Sprintf("same%02d", winner)))
			sameTokens(t, "ListKeys(all)", tokensOf(mustList(t, s, keys.KeyFilter{})), []string{token(fmt.Sprintf("same%02d", winner))})
		}},
		{"20 concurrent creates of the same user id: exactly one succeeds", func(t *testing.T, s keys.Store) {
			const n = 20
			errs := parallel(n, func(i int) error {
				return s.CreateUser(ctx(t), &keys.User{UserID: "alice", UserAlias: fmt.Sprint(i)})
			})
			wins := 0
			for i, err := range errs {
				if err == nil {
					wins++
					continue
				}
				wantErr(t, fmt.Sprintf("CreateUser(alice) #%d", i), err, keys.ErrExists)
			}
			if wins != 1 {
				t.Errorf("concurrent CreateUser(alice): got %d successes; want 1", wins)
			}
		}},
		{"10 concurrent rotations of one key: exactly one succeeds", func(t *testing.T, s keys.Store) {
			const n = 10
			mustCreateKey(t, s, fullKey("k1"))
			errs := parallel(n, func(i int) error {
				return s.RotateKey(ctx(t), token("k1"), successor(fullKey("k1"), fmt.Sprintf("r%d", i)), ptr(at(60)))
			})
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("RotateKey(k1 -> r%d): got nil error; want an error (r%d already won)", i, winner)
				case err == nil:
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("concurrent RotateKey(k1): got %d failures; want exactly one success", n)
			}
			won := token(fmt.Sprintf("r%d", winner))
			sameTokens(t, "ListKeys(all)", tokensOf(mustList(t, s, keys.KeyFilter{})), []string{won})
			wantRotationRecord(t, s, token("k1"), won, at(60))
			wantAliasAt(t, s, "alias-k1", won)
			for i := range n {
				if i != winner {
					wantGone(t, s, token(fmt.Sprintf("r%d", i)))
				}
			}
		}},
	}
}

func edgeTests() []test {
	return []test{
		{"an empty store lists no users, teams or keys", func(t *testing.T, s keys.Store) {
			us, err := s.ListUsers(ctx(t))
			noErr(t, "ListUsers", err)
			ts, err := s.ListTeams(ctx(t))
			noErr(t, "ListTeams", err)
			ks := mustList(t, s, keys.KeyFilter{})
			if len(us) != 0 || len(ts) != 0 || len(ks) != 0 {
				t.Errorf("empty store: got %d users, %d teams, %d keys; want none", len(us), len(ts), len(ks))
			}
		}},
		{"records with an empty id are refused", func(t *testing.T, s keys.Store) {
			if err := s.CreateUser(ctx(t), &keys.User{UserRole: keys.RoleInternalUser}); err == nil {
				t.Errorf("CreateUser with empty id: got nil error; want an error")
			}
			if err := s.CreateTeam(ctx(t), &keys.Team{}); err == nil {
				t.Errorf("CreateTeam with empty id: got nil error; want an error")
			}
			if err := s.CreateKey(ctx(t), &keys.Key{KeyAlias: "a"}); err == nil {
				t.Errorf("CreateKey with empty token: got nil error; want an error")
			}
			us, _ := s.ListUsers(ctx(t))
			ts, _ := s.ListTeams(ctx(t))
			ks, _ := s.ListKeys(ctx(t), keys.KeyFilter{})
			if len(us) != 0 || len(ts) != 0 || len(ks) != 0 {
				t.Errorf("after refused creates: got %d users, %d teams, %d keys; want none", len(us), len(ts), len(ks))
			}
		}},
	}
}
