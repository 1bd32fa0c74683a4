package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// A key must not outlive its user or lose its team (security review: the
// admin API checked that the user exists, then created the key in a
// separate write; a /user/delete in between left a key of a deleted user
// that still authenticated and that /user/delete could no longer sweep).
// These tests put the other admin's write exactly in that gap, through a
// store that runs a hook before the handler's write.

// hookStore runs a hook before some writes, and can hide user and team
// records (as if they were already deleted, with keys left naming them).
type hookStore struct {
	keys.Store
	beforeCreateKey  func(k *keys.Key)
	beforeUpdateKey  func(k *keys.Key)
	beforeRotateKey  func(next *keys.Key)
	beforeDeleteTeam func(teamID string)
	hidden           map[string]bool // "user:<id>" or "team:<id>": GetUser/GetTeam answer ErrNotFound
}

func (s *hookStore) CreateKey(ctx context.Context, k *keys.Key) error {
	if s.beforeCreateKey != nil {
		s.beforeCreateKey(k)
	}
	return s.Store.CreateKey(ctx, k)
}

func (s *hookStore) UpdateKey(ctx context.Context, k *keys.Key) error {
	if s.beforeUpdateKey != nil {
		s.beforeUpdateKey(k)
	}
	return s.Store.UpdateKey(ctx, k)
}

// ModifyKey runs beforeUpdateKey (with nil: the record is not read yet)
// before the store's own step, as UpdateKey does.
func (s *hookStore) ModifyKey(ctx context.Context, token string, fn func(*keys.Key) error) (*keys.Key, error) {
	if s.beforeUpdateKey != nil {
		s.beforeUpdateKey(nil)
	}
	return s.Store.ModifyKey(ctx, token, fn)
}

func (s *hookStore) RotateKey(ctx context.Context, old string, next *keys.Key, grace *time.Time) error {
	if s.beforeRotateKey != nil {
		s.beforeRotateKey(next)
	}
	return s.Store.RotateKey(ctx, old, next, grace)
}

func (s *hookStore) DeleteTeam(ctx context.Context, id string) error {
	if s.beforeDeleteTeam != nil {
		s.beforeDeleteTeam(id)
	}
	return s.Store.DeleteTeam(ctx, id)
}

func (s *hookStore) GetUser(ctx context.Context, id string) (*keys.User, error) {
	if s.hidden["user:"+id] {
		return nil, fmt.Errorf("user %q: %w", id, keys.ErrNotFound)
	}
	return s.Store.GetUser(ctx, id)
}

func (s *hookStore) GetTeam(ctx context.Context, id string) (*keys.Team, error) {
	if s.hidden["team:"+id] {
		return nil, fmt.Errorf("team %q: %w", id, keys.ErrNotFound)
	}
	return s.Store.GetTeam(ctx, id)
}

func newHookEnv(t *testing.T) (*env, *hookStore) {
	t.Helper()
	hs := &hookStore{hidden: map[string]bool{}}
	e := newEnvWith(t, func(s keys.Store) keys.Store { hs.Store = s; return hs })
	return e, hs
}

// once wraps f so that it runs on the first call only.
func once[T any](f func(T)) func(T) {
	done := false
	return func(v T) {
		if !done {
			done = true
			f(v)
		}
	}
}

func wantNoKeys(t *testing.T, e *env, what string, f keys.KeyFilter) {
	t.Helper()
	ks, err := e.store.ListKeys(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 0 {
		t.Errorf("%s: got %d keys (user %q); want none", what, len(ks), ks[0].UserID)
	}
}

// TestGenerateRacingUserDelete: the user (or team) is deleted after
// /key/generate checked it and before the key is written: 400 naming
// user_id (team_id), and no key is left.
func TestGenerateRacingUserDelete(t *testing.T) {
	e, hs := newHookEnv(t)
	ctx := t.Context()
	e.newUser("alice", keys.RoleInternalUser, nil)
	own, _ := e.newKey(obj("user_id", "alice"))

	// alice mints a key for herself while an admin deletes her.
	hs.beforeCreateKey = once(func(*keys.Key) {
		if _, err := e.store.DeleteUser(ctx, "alice"); err != nil {
			t.Errorf("DeleteUser(alice): %v", err)
		}
	})
	r := e.call(own, "POST", "/key/generate", obj())
	if r.status != 400 || r.errField("param") != "user_id" || !strings.Contains(r.errField("message"), `"alice" does not exist`) {
		t.Errorf("/key/generate racing /user/delete: got %d %s; want 400 naming user_id", r.status, r.raw)
	}
	wantNoKeys(t, e, "alice's keys after the race", keys.KeyFilter{UserID: "alice"})

	// The master key, for a team deleted meanwhile.
	e.newUser("bob", keys.RoleInternalUser, nil)
	e.must(testMaster, "POST", "/team/new", obj("team_id", "t1"))
	hs.beforeCreateKey = once(func(*keys.Key) {
		if err := e.store.DeleteTeam(ctx, "t1"); err != nil {
			t.Errorf("DeleteTeam(t1): %v", err)
		}
	})
	r = e.call(testMaster, "POST", "/key/generate", obj("user_id", "bob", "team_id", "t1"))
	if r.status != 400 || r.errField("param") != "team_id" {
		t.Errorf("/key/generate racing /team/delete: got %d %s; want 400 naming team_id", r.status, r.raw)
	}
	wantNoKeys(t, e, "t1's keys after the race", keys.KeyFilter{TeamID: "t1"})
	wantNoKeys(t, e, "bob's keys after the race", keys.KeyFilter{UserID: "bob"})
}

// TestMoveKeyRacingDelete: /key/update and /key/regenerate moving a key to
// a user or team deleted meanwhile answer 400 and leave the key as it was.
func TestMoveKeyRacingDelete(t *testing.T) {
	e, hs := newHookEnv(t)
	ctx := t.Context()
	e.newUser("alice", keys.RoleInternalUser, nil)
	e.newUser("bob", keys.RoleInternalUser, nil)
	e.must(testMaster, "POST", "/team/new", obj("team_id", "t1"))
	secret, tok := e.newKey(obj("user_id", "alice"))

	hs.beforeUpdateKey = once(func(*keys.Key) {
		if _, err := e.store.DeleteUser(ctx, "bob"); err != nil {
			t.Errorf("DeleteUser(bob): %v", err)
		}
	})
	r := e.call(testMaster, "POST", "/key/update", obj("key", tok, "user_id", "bob"))
	if r.status != 400 || r.errField("param") != "user_id" {
		t.Errorf("/key/update to a user deleted meanwhile: got %d %s; want 400 naming user_id", r.status, r.raw)
	}
	hs.beforeRotateKey = once(func(*keys.Key) {
		if err := e.store.DeleteTeam(ctx, "t1"); err != nil {
			t.Errorf("DeleteTeam(t1): %v", err)
		}
	})
	r = e.call(testMaster, "POST", "/key/regenerate", obj("key", tok, "team_id", "t1"))
	if r.status != 400 || r.errField("param") != "team_id" {
		t.Errorf("/key/regenerate to a team deleted meanwhile: got %d %s; want 400 naming team_id", r.status, r.raw)
	}
	k, err := e.store.GetKey(ctx, tok)
	if err != nil || k.UserID != "alice" || k.TeamID != "" {
		t.Fatalf("the key after both refusals: got %+v, %v; want alice's, no team", k, err)
	}
	if r := e.call(secret, "GET", "/key/info", nil); r.status != 200 {
		t.Errorf("the key after both refusals: got %d; want 200", r.status)
	}
	// A key that is gone is still a 404.
	e.must(testMaster, "POST", "/key/delete", obj("keys", []string{tok}))
	if r := e.call(testMaster, "POST", "/key/update", obj("key", tok, "key_alias", "x")); r.status != 404 {
		t.Errorf("/key/update of a deleted key: got %d %s; want 404", r.status, r.raw)
	}
}

// TestUserDeleteSweepsKeysWithoutUser: /user/delete of an id that has no
// user record but still has keys deletes them (it used to answer 404, so
// such keys could not be swept); 404 only when there is nothing.
func TestUserDeleteSweepsKeysWithoutUser(t *testing.T) {
	e, hs := newHookEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	secret, tok := e.newKey(obj("user_id", "alice"))
	hs.hidden["user:alice"] = true // as if its record were gone, keys left

	r := e.call(testMaster, "POST", "/user/delete", obj("user_ids", []string{"alice"}))
	if r.status != 200 || !strings.Contains(fmt.Sprint(r.body["deleted_keys"]), tok) {
		t.Fatalf("/user/delete of a user without a record but with keys: got %d %s; want 200 deleting %s…", r.status, r.raw, tok[:8])
	}
	if _, err := e.store.GetKey(t.Context(), tok); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("the key after /user/delete: got %v; want ErrNotFound", err)
	}
	if r := e.call(secret, "GET", "/key/info", nil); r.status != 401 {
		t.Errorf("the key after /user/delete: got %d; want 401", r.status)
	}
	r = e.call(testMaster, "POST", "/user/delete", obj("user_ids", []string{"alice"}))
	if r.status != 404 || r.errField("param") != "user_ids[0]" {
		t.Errorf("/user/delete with nothing left: got %d %s; want 404 naming user_ids[0]", r.status, r.raw)
	}
}

// TestTeamDeleteCatchesKeyCreatedMeanwhile: a key created for the team
// after /team/delete listed its keys is deleted too, and a team id with no
// record but keys is swept.
func TestTeamDeleteCatchesKeyCreatedMeanwhile(t *testing.T) {
	e, hs := newHookEnv(t)
	ctx := t.Context()
	e.newUser("alice", keys.RoleInternalUser, nil)
	e.must(testMaster, "POST", "/team/new", obj("team_id", "t1", "allowed_passthrough_routes", []string{"/v1/ocr"}))
	_, first := e.newKey(obj("user_id", "alice", "team_id", "t1"))
	late := &keys.Key{Token: keys.Hash("sk-late-key-created-during-team-delete"), UserID: "alice", TeamID: "t1"}
	hs.beforeDeleteTeam = once(func(string) {
		if err := e.store.CreateKey(ctx, late); err != nil {
			t.Errorf("CreateKey(late): %v", err)
		}
	})
	r := e.must(testMaster, "POST", "/team/delete", obj("team_ids", []string{"t1"}))
	deleted, _ := r.body["deleted_keys"].([]any)
	for _, tok := range []string{first, late.Token} {
		if !slices.Contains(deleted, any(tok)) {
			t.Errorf("deleted_keys: got %v; want it to list %s…", deleted, tok[:8])
		}
		if _, err := e.store.GetKey(ctx, tok); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("key %s… after /team/delete: got %v; want ErrNotFound (no key may outlive its team's restrictions)", tok[:8], err)
		}
	}

	// A team with no record whose keys remain.
	e.must(testMaster, "POST", "/team/new", obj("team_id", "t2"))
	_, t2key := e.newKey(obj("team_id", "t2"))
	hs.hidden["team:t2"] = true
	r = e.call(testMaster, "POST", "/team/delete", obj("team_ids", []string{"t2"}))
	if r.status != 200 || !strings.Contains(fmt.Sprint(r.body["deleted_keys"]), t2key) {
		t.Errorf("/team/delete of a team without a record but with keys: got %d %s; want 200 deleting its key", r.status, r.raw)
	}
	if r := e.call(testMaster, "POST", "/team/delete", obj("team_ids", []string{"nothing"})); r.status != 404 {
		t.Errorf("/team/delete of an unknown team: got %d %s; want 404", r.status, r.raw)
	}
}
