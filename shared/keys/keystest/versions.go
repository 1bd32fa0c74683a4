package keystest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// raceTrials is how many times each lost-update race is run; the issue that
// asked for these tests saw the old stores lose the admin's write in 30 of
// 30 trials.
const raceTrials = 30

// retryWrite is what a caller of keys.Store does with a read-modify-write:
// read, change only the fields it means to change, write; on ErrConflict,
// again from a fresh read. It fails the test when the retries run out.
func retryWrite(t *testing.T, what string, f func() error) {
	t.Helper()
	for attempt := range 100 {
		err := f()
		if errors.Is(err, keys.ErrConflict) {
			// Back off a random while, as the admin API does, so two
			// writers cannot stay in lock-step.
			time.Sleep(time.Duration(rand.IntN(1000*(attempt%8+1))) * time.Microsecond)
			continue
		}
		if err != nil {
			t.Errorf("%s: got error %v; want nil", what, err)
		}
		return
	}
	t.Errorf("%s: still ErrConflict after 100 attempts", what)
}

// loop calls f(0), f(1), … in a goroutine until the returned stop is
// called; stop returns once the call under way has.
func loop(f func(i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			f(i)
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

func versionTests() []test {
	return []test{
		{"create, get and list set Version; each write advances it", func(t *testing.T, s keys.Store) {
			s = raw(s)
			u := &keys.User{UserID: "alice", UserRole: keys.RoleInternalUser, CreatedAt: t0}
			noErr(t, "CreateUser(alice)", s.CreateUser(ctx(t), u))
			if u.Version == 0 {
				t.Fatalf("CreateUser: Version: got 0; want it set")
			}
			got, err := s.GetUser(ctx(t), "alice")
			noErr(t, "GetUser(alice)", err)
			if got.Version != u.Version {
				t.Errorf("GetUser(alice).Version: got %d; want %d", got.Version, u.Version)
			}
			got.UserAlias = "A"
			noErr(t, "UpdateUser(alice)", s.UpdateUser(ctx(t), got))
			again, err := s.GetUser(ctx(t), "alice")
			noErr(t, "GetUser(alice)", err)
			if again.Version != got.Version || again.Version == u.Version {
				t.Errorf("after UpdateUser: stored Version %d, returned %d, created %d; want stored = returned ≠ created", again.Version, got.Version, u.Version)
			}
			k := key("k1", "alice", "", at(1))
			noErr(t, "CreateKey(k1)", s.CreateKey(ctx(t), k))
			ks, err := s.ListKeys(ctx(t), keys.KeyFilter{UserID: "alice"})
			noErr(t, "ListKeys(alice)", err)
			if len(ks) != 1 || ks[0].Version != k.Version || k.Version == 0 {
				t.Errorf("ListKeys(alice): got %d keys (Version %v); want 1 with Version %d", len(ks), versionsOf(ks), k.Version)
			}
		}},
		{"a write from a stale read fails with ErrConflict and changes nothing", func(t *testing.T, s keys.Store) {
			s = raw(s)
			noErr(t, "CreateUser(alice)", s.CreateUser(ctx(t), &keys.User{UserID: "alice", UserRole: keys.RoleInternalUser}))
			noErr(t, "CreateTeam(ml)", s.CreateTeam(ctx(t), &keys.Team{TeamID: "ml"}))
			noErr(t, "CreateKey(k1)", s.CreateKey(ctx(t), key("k1", "alice", "", at(1))))

			u1, _ := s.GetUser(ctx(t), "alice")
			u2, _ := s.GetUser(ctx(t), "alice")
			u1.UserRole = keys.RoleInternalUserViewer
			noErr(t, "UpdateUser(demote)", s.UpdateUser(ctx(t), u1))
			u2.UserAlias = "stale"
			wantErr(t, "UpdateUser(stale)", s.UpdateUser(ctx(t), u2), keys.ErrConflict)
			if got, _ := s.GetUser(ctx(t), "alice"); got.UserRole != keys.RoleInternalUserViewer || got.UserAlias != "" {
				t.Errorf("after the stale UpdateUser: role %q alias %q; want %q and none", got.UserRole, got.UserAlias, keys.RoleInternalUserViewer)
			}

			t1, _ := s.GetTeam(ctx(t), "ml")
			t2, _ := s.GetTeam(ctx(t), "ml")
			t1.Blocked = true
			noErr(t, "UpdateTeam(block)", s.UpdateTeam(ctx(t), t1))
			t2.TeamAlias = "stale"
			wantErr(t, "UpdateTeam(stale)", s.UpdateTeam(ctx(t), t2), keys.ErrConflict)
			if got, _ := s.GetTeam(ctx(t), "ml"); !got.Blocked {
				t.Errorf("after the stale UpdateTeam: team unblocked")
			}

			k1, _ := s.GetKey(ctx(t), token("k1"))
			k2, _ := s.GetKey(ctx(t), token("k1"))
			k3, _ := s.GetKey(ctx(t), token("k1"))
			k1.Blocked = true
			noErr(t, "UpdateKey(block)", s.UpdateKey(ctx(t), k1))
			k2.Metadata = map[string]any{"stale": true}
			wantErr(t, "UpdateKey(stale)", s.UpdateKey(ctx(t), k2), keys.ErrConflict)
			next := *k3
			next.Token, next.KeyName = token("k1b"), "sk-...k1b"
			wantErr(t, "RotateKey(stale)", s.RotateKey(ctx(t), token("k1"), &next, nil), keys.ErrConflict)
			got, err := s.GetKey(ctx(t), token("k1"))
			noErr(t, "GetKey(k1)", err)
			if !got.Blocked {
				t.Errorf("after the stale writes: key unblocked")
			}
			wantGone(t, s, token("k1b"))
		}},
		{"concurrent self-updates never undo an admin's block", func(t *testing.T, s keys.Store) {
			s = raw(s)
			noErr(t, "CreateUser(alice)", s.CreateUser(ctx(t), &keys.User{UserID: "alice", UserRole: keys.RoleInternalUser}))
			for trial := range raceTrials {
				name := fmt.Sprintf("r%d", trial)
				noErr(t, "CreateKey("+name+")", s.CreateKey(ctx(t), key(name, "alice", "", at(trial))))
				tok := token(name)
				stop := loop(func(i int) { // the key holder, touching its metadata
					retryWrite(t, "self-update", func() error {
						k, err := s.GetKey(ctx(t), tok)
						if err != nil {
							return err
						}
						k.Metadata = map[string]any{"n": float64(i)}
						return s.UpdateKey(ctx(t), k)
					})
				})
				// The admin's write is a ModifyKey: one atomic step that a
				// loop of other writes cannot starve.
				_, err := s.ModifyKey(ctx(t), tok, func(k *keys.Key) error {
					k.Blocked = true
					return nil
				})
				if err != nil {
					t.Errorf("trial %d: ModifyKey(block): got error %v; want nil", trial, err)
				}
				time.Sleep(5 * time.Millisecond) // let the self-updates run on
				stop()
				got, err := s.GetKey(ctx(t), tok)
				noErr(t, "GetKey("+name+")", err)
				if !got.Blocked {
					t.Errorf("trial %d: the block was undone by a concurrent self-update", trial)
				}
			}
		}},
		{"concurrent self-updates never undo a demotion", func(t *testing.T, s keys.Store) {
			s = raw(s)
			for trial := range raceTrials {
				id := fmt.Sprintf("u%d", trial)
				noErr(t, "CreateUser("+id+")", s.CreateUser(ctx(t), &keys.User{UserID: id, UserRole: keys.RoleProxyAdmin}))
				stop := loop(func(i int) {
					retryWrite(t, "self-update", func() error {
						u, err := s.GetUser(ctx(t), id)
						if err != nil {
							return err
						}
						u.UserAlias = fmt.Sprint(i)
						return s.UpdateUser(ctx(t), u)
					})
				})
				_, err := s.ModifyUser(ctx(t), id, func(u *keys.User) error {
					u.UserRole = keys.RoleInternalUserViewer
					return nil
				})
				if err != nil {
					t.Errorf("trial %d: ModifyUser(demote): got error %v; want nil", trial, err)
				}
				time.Sleep(5 * time.Millisecond)
				stop()
				got, err := s.GetUser(ctx(t), id)
				noErr(t, "GetUser("+id+")", err)
				if got.UserRole != keys.RoleInternalUserViewer {
					t.Errorf("trial %d: the demotion was undone: role %q", trial, got.UserRole)
				}
			}
		}},
		{"Modify* change only what fn changes, on the latest record, and follow UpdateKey's rules", func(t *testing.T, s keys.Store) {
			s = raw(s)
			noErr(t, "CreateUser(alice)", s.CreateUser(ctx(t), &keys.User{UserID: "alice", UserRole: keys.RoleInternalUser}))
			noErr(t, "CreateTeam(ml)", s.CreateTeam(ctx(t), &keys.Team{TeamID: "ml"}))
			k := key("k1", "alice", "", at(1))
			noErr(t, "CreateKey(k1)", s.CreateKey(ctx(t), k))
			stale, _ := s.GetKey(ctx(t), token("k1"))
			_, err := s.ModifyKey(ctx(t), token("k1"), func(k *keys.Key) error { k.Blocked = true; return nil })
			noErr(t, "ModifyKey(block)", err)
			got, err := s.ModifyKey(ctx(t), token("k1"), func(k *keys.Key) error { k.KeyAlias = "a1"; return nil })
			noErr(t, "ModifyKey(alias)", err)
			if !got.Blocked || got.KeyAlias != "a1" || got.Version <= stale.Version {
				t.Errorf("ModifyKey result: blocked %v alias %q version %d; want blocked, a1, above %d", got.Blocked, got.KeyAlias, got.Version, stale.Version)
			}
			if again, _ := s.GetKey(ctx(t), token("k1")); again.Version != got.Version || !again.Blocked {
				t.Errorf("GetKey after ModifyKey: version %d blocked %v; want %d, blocked", again.Version, again.Blocked, got.Version)
			}
			stale.Metadata = map[string]any{"x": "stale"}
			wantErr(t, "UpdateKey(stale copy)", s.UpdateKey(ctx(t), stale), keys.ErrConflict)
			_, err = s.ModifyKey(ctx(t), token("k1"), func(k *keys.Key) error { k.UserID = "ghost"; return nil })
			wantErr(t, "ModifyKey(to a missing user)", err, keys.ErrNotFound)
			_, err = s.ModifyKey(ctx(t), token("k1"), func(k *keys.Key) error { k.Token = token("other"); return nil })
			if err == nil {
				t.Errorf("ModifyKey changing the token: got nil; want an error")
			}
			boom := errors.New("refused")
			_, err = s.ModifyKey(ctx(t), token("k1"), func(k *keys.Key) error { k.Blocked = false; return boom })
			wantErr(t, "ModifyKey(fn error)", err, boom)
			if again, _ := s.GetKey(ctx(t), token("k1")); !again.Blocked {
				t.Errorf("after a ModifyKey whose fn failed: key unblocked; want nothing written")
			}
			_, err = s.ModifyKey(ctx(t), token("nothing"), func(*keys.Key) error { return nil })
			wantErr(t, "ModifyKey(missing)", err, keys.ErrNotFound)
			u, err := s.ModifyUser(ctx(t), "alice", func(u *keys.User) error { u.Blocked = true; return nil })
			noErr(t, "ModifyUser", err)
			if u2, _ := s.GetUser(ctx(t), "alice"); !u2.Blocked || u2.Version != u.Version {
				t.Errorf("GetUser after ModifyUser: blocked %v version %d; want blocked, %d", u2.Blocked, u2.Version, u.Version)
			}
			_, err = s.ModifyUser(ctx(t), "ghost", func(*keys.User) error { return nil })
			wantErr(t, "ModifyUser(missing)", err, keys.ErrNotFound)
			tm, err := s.ModifyTeam(ctx(t), "ml", func(t *keys.Team) error { t.Blocked = true; return nil })
			noErr(t, "ModifyTeam", err)
			if t2, _ := s.GetTeam(ctx(t), "ml"); !t2.Blocked || t2.Version != tm.Version {
				t.Errorf("GetTeam after ModifyTeam: blocked %v version %d; want blocked, %d", t2.Blocked, t2.Version, tm.Version)
			}
			_, err = s.ModifyTeam(ctx(t), "ghost", func(*keys.Team) error { return nil })
			wantErr(t, "ModifyTeam(missing)", err, keys.ErrNotFound)
			// The id is the record's name: fn cannot change it, and
			// nothing is written when it tries.
			if _, err = s.ModifyUser(ctx(t), "alice", func(u *keys.User) error { u.UserID, u.Blocked = "mallory", false; return nil }); err == nil {
				t.Errorf("ModifyUser changing the user id: got nil; want an error")
			}
			if u2, _ := s.GetUser(ctx(t), "alice"); !u2.Blocked || u2.Version != u.Version {
				t.Errorf("after a ModifyUser that changed the id: blocked %v version %d; want blocked, %d (nothing written)", u2.Blocked, u2.Version, u.Version)
			}
			wantErr(t, "GetUser(mallory)", func() error { _, err := s.GetUser(ctx(t), "mallory"); return err }(), keys.ErrNotFound)
			if _, err = s.ModifyTeam(ctx(t), "ml", func(t *keys.Team) error { t.TeamID, t.Blocked = "other", false; return nil }); err == nil {
				t.Errorf("ModifyTeam changing the team id: got nil; want an error")
			}
			if t2, _ := s.GetTeam(ctx(t), "ml"); !t2.Blocked || t2.Version != tm.Version {
				t.Errorf("after a ModifyTeam that changed the id: blocked %v version %d; want blocked, %d (nothing written)", t2.Blocked, t2.Version, tm.Version)
			}
			wantErr(t, "GetTeam(other)", func() error { _, err := s.GetTeam(ctx(t), "other"); return err }(), keys.ErrNotFound)
			// A rotation record is not a key to modify.
			cur, _ := s.GetKey(ctx(t), token("k1"))
			next := *cur
			next.Token = token("k1b")
			next.Blocked = false
			noErr(t, "RotateKey(k1 -> k1b)", s.RotateKey(ctx(t), token("k1"), &next, ptr(time.Now().Add(time.Hour))))
			_, err = s.ModifyKey(ctx(t), token("k1"), func(*keys.Key) error { return nil })
			wantErr(t, "ModifyKey(rotation record)", err, keys.ErrNotFound)
		}},
		{"DeleteKeyByID removes the key wherever regenerate moved it", func(t *testing.T, s keys.Store) {
			s = raw(s)
			noErr(t, "CreateKey(k1)", s.CreateKey(ctx(t), key("k1", "", "", at(1))))
			cur, _ := s.GetKey(ctx(t), token("k1"))
			next := *cur
			next.Token = token("k1b")
			grace := time.Now().Add(time.Hour)
			noErr(t, "RotateKey(k1 -> k1b)", s.RotateKey(ctx(t), token("k1"), &next, &grace))
			next2 := next
			next2.Token = token("k1c")
			noErr(t, "RotateKey(k1b -> k1c)", s.RotateKey(ctx(t), token("k1b"), &next2, nil))
			gone, err := s.DeleteKeyByID(ctx(t), cur.TokenID)
			noErr(t, "DeleteKeyByID", err)
			sameTokenSet(t, "DeleteKeyByID", gone, []string{token("k1c")})
			for _, n := range []string{"k1", "k1b", "k1c"} {
				if k, err := s.GetKey(ctx(t), token(n)); err == nil && (k.RotatedTo == "" || !k.Expired(time.Now())) {
					t.Errorf("GetKey(%s) after DeleteKeyByID: still there (rotated_to %q)", n, label(k.RotatedTo))
				}
			}
			_, err = s.DeleteKeyByID(ctx(t), cur.TokenID)
			wantErr(t, "DeleteKeyByID again", err, keys.ErrNotFound)
		}},
		{"delete by id racing regenerate leaves no secret behind", func(t *testing.T, s keys.Store) {
			s = raw(s)
			for _, withGrace := range []bool{false, true} {
				for trial := range raceTrials / 2 {
					name := fmt.Sprintf("d%v%d", withGrace, trial)
					noErr(t, "CreateKey("+name+")", s.CreateKey(ctx(t), key(name, "", "", at(trial))))
					k0, _ := s.GetKey(ctx(t), token(name))
					var wg sync.WaitGroup
					var mu sync.Mutex
					made := []string{token(name)}
					wg.Add(1)
					go func() { // the owner, regenerating in a loop
						defer wg.Done()
						tok := token(name)
						for i := 0; i < 6; i++ {
							cur, err := s.GetKey(ctx(t), tok)
							if err != nil {
								return
							}
							next := *cur
							next.Token = token(fmt.Sprintf("%s-%d", name, i))
							var grace *time.Time
							if withGrace {
								grace = ptr(time.Now().Add(time.Hour))
							}
							err = s.RotateKey(ctx(t), tok, &next, grace)
							if errors.Is(err, keys.ErrNotFound) {
								return
							}
							if err == nil {
								mu.Lock()
								made = append(made, next.Token)
								mu.Unlock()
								tok = next.Token
							}
						}
					}()
					var err error
					for range 100 {
						if _, err = s.DeleteKeyByID(ctx(t), k0.TokenID); !errors.Is(err, keys.ErrConflict) {
							break
						}
					}
					noErr(t, "DeleteKeyByID("+name+")", err)
					wg.Wait()
					for _, tok := range made {
						k, err := s.GetKey(ctx(t), tok)
						if err == nil && !(k.RotatedTo != "" && k.Expired(time.Now())) {
							if k.RotatedTo != "" {
								if _, err := s.GetKey(ctx(t), k.RotatedTo); err != nil {
									continue // points at nothing: cannot authenticate
								}
							}
							t.Errorf("%s: secret %s survived a delete that succeeded", name, label(tok))
						}
					}
				}
			}
		}},
		{"writing a key blocked ends its grace secrets for good", func(t *testing.T, s keys.Store) {
			s = raw(s)
			noErr(t, "CreateKey(k1)", s.CreateKey(ctx(t), key("k1", "", "", at(1))))
			cur, _ := s.GetKey(ctx(t), token("k1"))
			next := *cur
			next.Token = token("k1b")
			noErr(t, "RotateKey(k1 -> k1b)", s.RotateKey(ctx(t), token("k1"), &next, ptr(time.Now().Add(time.Hour))))
			next.Blocked = true
			noErr(t, "UpdateKey(block)", s.UpdateKey(ctx(t), &next))
			wantGone(t, s, token("k1"))
			next.Blocked = false
			noErr(t, "UpdateKey(unblock)", s.UpdateKey(ctx(t), &next))
			wantGone(t, s, token("k1"))
		}},
		{"the grace-secret limit is ErrTooManyGraceSecrets and expired ones do not count", func(t *testing.T, s keys.Store) {
			s = raw(s)
			noErr(t, "CreateKey(g)", s.CreateKey(ctx(t), key("g", "", "", at(1))))
			tok := token("g")
			rotate := func(i int, grace time.Time) error {
				cur, err := s.GetKey(ctx(t), tok)
				if err != nil {
					return err
				}
				next := *cur
				next.Token = token(fmt.Sprintf("g%d", i))
				if err := s.RotateKey(ctx(t), tok, &next, &grace); err != nil {
					return err
				}
				tok = next.Token
				return nil
			}
			// Old secrets whose grace is already over do not count.
			for i := range 3 {
				noErr(t, "RotateKey(expired grace)", rotate(i, time.Now().Add(-time.Minute)))
			}
			for i := 3; i < 3+keys.MaxGraceSecrets; i++ {
				noErr(t, fmt.Sprintf("RotateKey #%d", i), rotate(i, time.Now().Add(time.Hour)))
			}
			wantErr(t, "RotateKey past the limit", rotate(999, time.Now().Add(time.Hour)), keys.ErrTooManyGraceSecrets)
		}},
	}
}

func versionsOf(ks []*keys.Key) []int64 {
	out := make([]int64, len(ks))
	for i, k := range ks {
		out[i] = k.Version
	}
	return out
}
