package keystest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// wantOwnerMissing checks that err is a keys.OwnerNotFoundError (so also
// ErrNotFound) for the missing user or team id.
func wantOwnerMissing(t *testing.T, what string, err error, id string) {
	t.Helper()
	wantErr(t, what, err, keys.ErrNotFound)
	var owner *keys.OwnerNotFoundError
	if err != nil && (!errors.As(err, &owner) || owner.ID != id) {
		t.Errorf("%s: error %q is not a keys.OwnerNotFoundError for %q", what, err, id)
	}
}

func ownerTests() []test {
	return []test{
		{"creating a key for a missing user or team fails with ErrNotFound and stores nothing", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			mustCreateTeam(t, s, fullTeam("ml"))
			for i, c := range []struct{ user, team, missing string }{
				{"ghost", "", "ghost"},
				{"ghost", "ml", "ghost"},
				{"alice", "ghost-team", "ghost-team"},
				{"", "ghost-team", "ghost-team"},
			} {
				name := fmt.Sprintf("orphan%d", i)
				k := key(name, c.user, c.team, at(i))
				k.KeyAlias = "alias-" + name
				what := fmt.Sprintf("CreateKey(%s) with user %q, team %q", name, c.user, c.team)
				wantOwnerMissing(t, what, s.CreateKey(ctx(t), k), c.missing)
				wantGone(t, s, k.Token)
				_, err := s.GetKeyByAlias(ctx(t), k.KeyAlias)
				wantErr(t, "GetKeyByAlias("+k.KeyAlias+") after "+what, err, keys.ErrNotFound)
			}
			for _, f := range []keys.KeyFilter{{}, {UserID: "ghost"}, {UserID: "alice"}, {TeamID: "ml"}, {TeamID: "ghost-team"}} {
				sameTokens(t, filterName(f), tokensOf(mustList(t, s, f)), nil)
			}
			_, err := s.GetUser(ctx(t), "ghost")
			wantErr(t, "GetUser(ghost): a refused key creates no user", err, keys.ErrNotFound)
			_, err = s.GetTeam(ctx(t), "ghost-team")
			wantErr(t, "GetTeam(ghost-team): a refused key creates no team", err, keys.ErrNotFound)
			// The refused alias was not claimed.
			ok := key("fine", "alice", "ml", at(9))
			ok.KeyAlias = "alias-orphan0"
			mustCreateKey(t, s, ok)
		}},
		{"moving a key to a missing user or team fails with ErrNotFound and changes nothing", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			mustCreateTeam(t, s, fullTeam("ml"))
			mustCreateKey(t, s, fullKey("k1"))
			for _, c := range []struct{ user, team, missing string }{
				{"ghost", "ml", "ghost"},
				{"alice", "ghost-team", "ghost-team"},
			} {
				moved := fullKey("k1")
				moved.UserID, moved.TeamID = c.user, c.team
				moved.KeyAlias = "new-alias"
				moved.Blocked = false
				what := fmt.Sprintf("UpdateKey(k1) to user %q, team %q", c.user, c.team)
				wantOwnerMissing(t, what, s.UpdateKey(ctx(t), moved), c.missing)
				same(t, "GetKey(k1) after the refused "+what, mustGetKey(t, s, token("k1")), fullKey("k1"))
				wantAliasAt(t, s, "alias-k1", token("k1"))
				_, err := s.GetKeyByAlias(ctx(t), "new-alias")
				wantErr(t, "GetKeyByAlias(new-alias) after the refused "+what, err, keys.ErrNotFound)
			}
			sameTokens(t, "ListKeys(user alice, team ml)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "alice", TeamID: "ml"})), []string{token("k1")})
			sameTokens(t, "ListKeys(user ghost)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "ghost"})), nil)
			sameTokens(t, "ListKeys(team ghost-team)", tokensOf(mustList(t, s, keys.KeyFilter{TeamID: "ghost-team"})), nil)
		}},
		{"rotating a key to a missing user or team fails with ErrNotFound and changes nothing", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("alice"))
			mustCreateTeam(t, s, fullTeam("ml"))
			mustCreateKey(t, s, fullKey("k1"))
			for _, c := range []struct{ user, team, missing string }{
				{"ghost", "ml", "ghost"},
				{"alice", "ghost-team", "ghost-team"},
			} {
				for _, grace := range []*time.Time{nil, ptr(at(60))} {
					next := successor(fullKey("k1"), "k1b")
					next.UserID, next.TeamID = c.user, c.team
					what := fmt.Sprintf("RotateKey(k1 -> k1b) to user %q, team %q, grace %v", c.user, c.team, grace != nil)
					wantOwnerMissing(t, what, s.RotateKey(ctx(t), token("k1"), next, grace), c.missing)
					wantGone(t, s, token("k1b"))
					same(t, "GetKey(k1) after the refused "+what, mustGetKey(t, s, token("k1")), fullKey("k1"))
					wantAliasAt(t, s, "alias-k1", token("k1"))
				}
			}
			sameTokens(t, "ListKeys(all)", tokensOf(mustList(t, s, keys.KeyFilter{})), []string{token("k1")})
			sameTokens(t, "ListKeys(user ghost)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "ghost"})), nil)
		}},
		{"a key that already names a missing user and team can still be updated and rotated", func(t *testing.T, s keys.Store) {
			// Such keys exist: DeleteTeam may keep a team's keys, and keys
			// written before the rule may name users without a record.
			// Blocking or regenerating them must keep working.
			p := key("planted", "gone-user", "gone-team", at(1))
			p.KeyAlias = "alias-planted"
			mustPlant(t, s, p)
			p.Blocked = true
			p.KeyName = "blocked now"
			noErr(t, "UpdateKey(planted) keeping its owners", s.UpdateKey(ctx(t), p))
			same(t, "GetKey(planted) after update", mustGetKey(t, s, p.Token), p)
			next := successor(p, "planted2")
			mustRotate(t, s, p.Token, next, ptr(at(60)))
			same(t, "GetKey(planted2)", mustGetKey(t, s, next.Token), successor(p, "planted2"))
			sameTokens(t, "ListKeys(user gone-user)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "gone-user"})), []string{next.Token})
			// Moving it to another missing owner is still refused.
			moved := successor(p, "planted2")
			moved.UserID = "other-ghost"
			wantOwnerMissing(t, "UpdateKey(planted2) to user other-ghost", s.UpdateKey(ctx(t), moved), "other-ghost")
			same(t, "GetKey(planted2) after the refused move", mustGetKey(t, s, next.Token), successor(p, "planted2"))
		}},
		{"deleting a user without a record removes the keys that still name it", func(t *testing.T, s keys.Store) {
			mustCreateUser(t, s, fullUser("bob"))
			g1 := key("g1", "gone", "", at(1))
			g1.KeyAlias = "alias-g1"
			mustPlant(t, s, g1)
			mustPlant(t, s, key("g2", "gone", "ml", at(2)))
			// g2 regenerated with grace: the old secret must go too.
			mustRotate(t, s, token("g2"), successor(key("g2", "gone", "ml", at(2)), "g2b"), ptr(at(3600)))
			mustCreateKey(t, s, key("b1", "bob", "", at(3)))

			removed, err := s.DeleteUser(ctx(t), "gone")
			noErr(t, "DeleteUser(gone) of a user without a record", err)
			want := []string{token("g1"), token("g2"), token("g2b")}
			sameTokenSet(t, "DeleteUser(gone) tokens", removed, want)
			for _, tok := range want {
				wantGone(t, s, tok)
			}
			sameTokens(t, "ListKeys(user gone)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "gone"})), nil)
			sameTokens(t, "ListKeys(all)", tokensOf(mustList(t, s, keys.KeyFilter{})), []string{token("b1")})
			reuse := key("reuse", "bob", "", at(4))
			reuse.KeyAlias = "alias-g1"
			mustCreateKey(t, s, reuse)
			// Nothing is left: now it is a missing user.
			_, err = s.DeleteUser(ctx(t), "gone")
			wantErr(t, "second DeleteUser(gone)", err, keys.ErrNotFound)
		}},
		{"a key created while its user is deleted never outlives the user", func(t *testing.T, s keys.Store) {
			// Writers create keys for the user until the store refuses
			// them; DeleteUser runs at the same time. Every key a writer
			// was told exists must be gone afterwards: either the store
			// refused it, or DeleteUser removed it.
			const rounds, writers, perWriter = 4, 6, 15
			for round := range rounds {
				uid := fmt.Sprintf("victim%d", round)
				mustCreateUser(t, s, &keys.User{UserID: uid, UserRole: keys.RoleInternalUser})
				mustCreateKey(t, s, key(uid+"-first", uid, "", at(0)))
				var mu sync.Mutex
				created := []string{token(uid + "-first")}
				refused := 0
				errs := parallel(writers+1, func(i int) error {
					if i == writers {
						_, err := s.DeleteUser(ctx(t), uid)
						return err
					}
					for j := range perWriter {
						k := key(fmt.Sprintf("%s-w%d-%d", uid, i, j), uid, "", at(j))
						err := s.CreateKey(ctx(t), k)
						mu.Lock()
						switch {
						case err == nil:
							created = append(created, k.Token)
						case errors.Is(err, keys.ErrNotFound):
							refused++
						}
						mu.Unlock()
						if err != nil {
							if errors.Is(err, keys.ErrNotFound) {
								return nil // the user is gone: stop
							}
							return fmt.Errorf("CreateKey(%s): %w", label(k.Token), err)
						}
					}
					return nil
				})
				for i, err := range errs {
					if err != nil {
						t.Errorf("round %d, goroutine %d: got error %v; want nil", round, i, err)
					}
				}
				for _, tok := range created {
					if k, err := s.GetKey(ctx(t), tok); err == nil {
						t.Errorf("round %d: key %s of deleted user %s survived (created while the user was deleted)", round, label(tok), k.UserID)
					} else {
						wantErr(t, "GetKey("+label(tok)+")", err, keys.ErrNotFound)
					}
				}
				sameTokens(t, fmt.Sprintf("round %d: ListKeys(user %s)", round, uid), tokensOf(mustList(t, s, keys.KeyFilter{UserID: uid})), nil)
				_, err := s.GetUser(ctx(t), uid)
				wantErr(t, fmt.Sprintf("round %d: GetUser(%s)", round, uid), err, keys.ErrNotFound)
				t.Logf("round %d: %d keys created and removed with the user, %d refused", round, len(created), refused)
			}
		}},
	}
}
