package admin

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/boltstore"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
)

// The tests in this file hold on both stores: each runs once on bbolt and
// once on DynamoDB (moto server), through the whole admin API.

// raceTrials is how often each race is run; before writes were versioned,
// the block was undone in 30 of 30 trials.
const raceTrials = 30

type storeKind struct {
	name string
	open func(t *testing.T) keys.Store
}

func storeKinds() []storeKind {
	return []storeKind{
		{"bolt", func(t *testing.T) keys.Store {
			st, err := boltstore.Open(filepath.Join(t.TempDir(), "keyway.db"))
			if err != nil {
				t.Fatalf("boltstore.Open: %v", err)
			}
			return st
		}},
		{"dynamodb", func(t *testing.T) keys.Store {
			client, table := awstest.NewTable(t, awstest.Start(t))
			return dynamostore.New(client, table)
		}},
	}
}

// onEachStore runs f as a subtest per store.
func onEachStore(t *testing.T, f func(t *testing.T, e *env)) {
	for _, sk := range storeKinds() {
		t.Run(sk.name, func(t *testing.T) {
			if sk.name == "dynamodb" && testing.Short() {
				t.Skip("moto server: not in -short")
			}
			f(t, newEnvOn(t, sk.open(t), nil))
		})
	}
}

// loop calls f until stop is closed; the goroutine is waited for by wg.
func loop(wg *sync.WaitGroup, stop <-chan struct{}, f func(i int)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			f(i)
		}
	}()
}

// TestSelfUpdatesNeverUndoBlock: a key holder touching its key's metadata
// in a loop while an admin blocks the key never undoes the block.
func TestSelfUpdatesNeverUndoBlock(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		e.newUser("alice", keys.RoleInternalUser, nil)
		for trial := range raceTrials {
			secret, tok := e.newKey(obj("user_id", "alice"))
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for range 2 {
				loop(&wg, stop, func(i int) {
					e.try(secret, "POST", "/key/update", obj("key", secret, "metadata", obj("n", i)))
				})
			}
			time.Sleep(2 * time.Millisecond)
			if r := e.call(testMaster, "POST", "/key/block", obj("key", tok)); r.status != http.StatusOK {
				t.Errorf("trial %d: /key/block: got %d %s; want 200", trial, r.status, r.raw)
			}
			time.Sleep(10 * time.Millisecond)
			close(stop)
			wg.Wait()
			k, err := e.store.GetKey(t.Context(), tok)
			if err != nil || !k.Blocked {
				t.Errorf("trial %d: after a 200 block: got blocked=%v (err %v); want blocked (undone by a concurrent self-update)", trial, k != nil && k.Blocked, err)
			}
		}
	})
}

// TestSelfUpdatesNeverUndoDemotion: a user renaming itself in a loop while
// an admin demotes it never undoes the demotion.
func TestSelfUpdatesNeverUndoDemotion(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		for trial := range raceTrials {
			id := fmt.Sprintf("u%d", trial)
			e.newUser(id, keys.RoleInternalUser, nil)
			secret, _ := e.newKey(obj("user_id", id))
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for range 2 {
				loop(&wg, stop, func(i int) {
					e.try(secret, "POST", "/user/update", obj("user_id", id, "user_alias", fmt.Sprint(i)))
				})
			}
			time.Sleep(2 * time.Millisecond)
			if r := e.call(testMaster, "POST", "/user/update", obj("user_id", id, "user_role", "internal_user_viewer")); r.status != http.StatusOK {
				t.Errorf("trial %d: demotion: got %d %s; want 200", trial, r.status, r.raw)
			}
			time.Sleep(10 * time.Millisecond)
			close(stop)
			wg.Wait()
			u, err := e.store.GetUser(t.Context(), id)
			if err != nil || u.UserRole != keys.RoleInternalUserViewer {
				t.Errorf("trial %d: after a 200 demotion: got role %v (err %v); want internal_user_viewer", trial, u, err)
			}
		}
	})
}

// TestDeleteRacingRegenerate: the owner regenerates its key in a loop
// (with and without grace) while an admin deletes it; when the delete
// answers 200, no secret the key ever had still authenticates.
func TestDeleteRacingRegenerate(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		e.newUser("alice", keys.RoleInternalUser, nil)
		for _, grace := range []string{"", "1h"} {
			for trial := range raceTrials / 2 {
				first, tok := e.newKey(obj("user_id", "alice"))
				var mu sync.Mutex
				secrets := []string{first}
				var wg sync.WaitGroup
				stop := make(chan struct{})
				loop(&wg, stop, func(int) {
					mu.Lock()
					cur := secrets[len(secrets)-1]
					mu.Unlock()
					body := obj("key", cur)
					if grace != "" {
						body["grace_period"] = grace
					}
					r, err := e.try(cur, "POST", "/key/regenerate", body)
					if err == nil && r.status == http.StatusOK {
						mu.Lock()
						secrets = append(secrets, r.str("key"))
						mu.Unlock()
					}
				})
				time.Sleep(3 * time.Millisecond)
				// The admin names the key by the token it had when listed.
				r := e.call(testMaster, "POST", "/key/delete", obj("keys", []string{tok}))
				time.Sleep(5 * time.Millisecond)
				close(stop)
				wg.Wait()
				if r.status != http.StatusOK {
					continue // an honest "not found": the key had moved on
				}
				mu.Lock()
				for _, s := range secrets {
					if a := e.call(s, "GET", "/key/info", nil); a.status != http.StatusUnauthorized {
						t.Errorf("grace %q trial %d: secret %s after a 200 delete: got %d; want 401", grace, trial, keys.Abbrev(s), a.status)
					}
				}
				mu.Unlock()
			}
		}
	})
}

// TestOldSecretCannotTakeOver: an old secret in its grace period may call
// what it could before, but may not regenerate, may not revoke the current
// secret, and may make nothing that outlives its grace end.
func TestOldSecretCannotTakeOver(t *testing.T) {
	e := newEnv(t)
	for _, role := range []keys.Role{keys.RoleInternalUser, keys.RoleProxyAdmin} {
		t.Run(string(role), func(t *testing.T) {
			id := "owner-" + string(role)
			e.newUser(id, role, nil)
			old, tok := e.newKey(obj("user_id", id))
			cur := e.must(testMaster, "POST", "/key/regenerate", obj("key", old, "grace_period", "1h")).str("key")

			for _, c := range []struct {
				what, path string
				body       map[string]any
			}{
				{"regenerate itself", "/key/regenerate", obj("key", old)},
				{"regenerate the current secret", "/key/regenerate", obj("key", cur)},
				{"regenerate by path", "/key/" + tok + "/regenerate", nil},
				{"delete its key", "/key/delete", obj("keys", []string{cur})},
				{"block its key", "/key/block", obj("key", tok)},
				{"block its key by update", "/key/update", obj("key", cur, "blocked", true)},
				{"extend its key past the grace end", "/key/update", obj("key", cur, "duration", "30d")},
			} {
				var body any
				if c.body != nil {
					body = c.body
				}
				if r := e.call(old, "POST", c.path, body); r.status != http.StatusForbidden {
					t.Errorf("old secret may not %s: got %d %s; want 403", c.what, r.status, r.raw)
				}
			}
			// It writes nothing at all: minting or updating would let it
			// reach its key by another route. Reading still works.
			for _, c := range []struct {
				path string
				body any
			}{{"/key/generate", obj()}, {"/key/update", obj("key", cur, "metadata", obj("x", 1))}} {
				if r := e.call(old, "POST", c.path, c.body); r.status != http.StatusForbidden {
					t.Errorf("old secret %s: got %d %s; want 403 (an old secret only reads)", c.path, r.status, r.raw)
				}
			}
			if r := e.call(old, "GET", "/key/info", nil); r.status != http.StatusOK {
				t.Errorf("old secret /key/info: got %d %s; want 200", r.status, r.raw)
			}
			// The current secret is untouched and still works.
			if r := e.call(cur, "GET", "/key/info", nil); r.status != http.StatusOK {
				t.Errorf("current secret after the old one's attempts: got %d; want 200", r.status)
			}
		})
	}
}

// TestBlockEndsGrace: blocking a key ends its old secrets for good;
// unblocking brings back only the current one.
func TestBlockEndsGrace(t *testing.T) {
	onEachStore(t, func(t *testing.T, e *env) {
		old, tok := e.newKey(obj())
		cur := e.must(testMaster, "POST", "/key/regenerate", obj("key", old, "grace_period", "1h")).str("key")
		if r := e.call(old, "GET", "/key/info", nil); r.status != http.StatusOK {
			t.Fatalf("old secret within grace: got %d; want 200", r.status)
		}
		e.must(testMaster, "POST", "/key/block", obj("key", tok))
		e.must(testMaster, "POST", "/key/unblock", obj("key", cur))
		if r := e.call(old, "GET", "/key/info", nil); r.status != http.StatusUnauthorized {
			t.Errorf("old secret after block and unblock: got %d; want 401", r.status)
		}
		if r := e.call(cur, "GET", "/key/info", nil); r.status != http.StatusOK {
			t.Errorf("current secret after unblock: got %d; want 200", r.status)
		}
		// Regenerating a blocked key with grace leaves no old secret.
		e.must(testMaster, "POST", "/key/block", obj("key", cur))
		next := e.must(testMaster, "POST", "/key/regenerate", obj("key", cur, "grace_period", "1h")).str("key")
		e.must(testMaster, "POST", "/key/unblock", obj("key", next))
		if r := e.call(cur, "GET", "/key/info", nil); r.status != http.StatusUnauthorized {
			t.Errorf("secret of a blocked key regenerated with grace, after unblock: got %d; want 401", r.status)
		}
	})
}

// hostileValues are requests whose values one store or the other could not
// hold as they are; both stores must answer the same 400 naming the field.
func hostileValues() []struct {
	name, path string
	body       map[string]any
	param      string
} {
	deep := any(1)
	for range 33 {
		deep = map[string]any{"d": deep}
	}
	return []struct {
		name, path string
		body       map[string]any
		param      string
	}{
		{"huge max_budget", "/user/update", obj("user_id", "alice", "max_budget", 1e200), "max_budget"},
		{"tiny max_budget", "/user/update", obj("user_id", "alice", "max_budget", 1e-200), "max_budget"},
		{"max_budget above 9e9", "/key/generate", obj("max_budget", 9.5e9), "max_budget"},
		{"soft_budget below a nano-dollar", "/key/generate", obj("soft_budget", 1e-12), "soft_budget"},
		{"metadata number too large", "/user/update", obj("user_id", "alice", "metadata", obj("x", 1e300)), "metadata"},
		{"metadata empty key", "/key/generate", obj("metadata", map[string]any{"": 1}), "metadata"},
		{"metadata nested 33 levels", "/team/new", obj("metadata", deep), "metadata"},
		{"metadata too big", "/key/generate", obj("metadata", obj("x", strings.Repeat("m", 20<<10))), "metadata"},
		{"user_alias 450 KB", "/user/update", obj("user_id", "alice", "user_alias", strings.Repeat("a", 450<<10)), "user_alias"},
		{"null in models", "/key/generate", obj("models", []any{"gpt", nil}), "models[1]"},
		{"null in teams", "/user/update", obj("user_id", "alice", "teams", []any{nil}), "teams[0]"},
		{"zero-width user_id", "/user/new", obj("user_id", "ali\u200bce"), "user_id"},
		{"bidi override user_id", "/user/new", obj("user_id", "\u202eecila"), "user_id"},
		{"user_id posing as the master key", "/user/new", obj("user_id", "master key"), "user_id"},
		{"zero-width team_id", "/team/new", obj("team_id", "t\u200d1"), "team_id"},
	}
}

// TestHostileValuesSameOnBothStores: every hostile value is a 400 naming
// the field, and the answer is the same on bbolt and on DynamoDB.
func TestHostileValuesSameOnBothStores(t *testing.T) {
	answers := map[string]map[string]string{} // store → case → answer
	onEachStore(t, func(t *testing.T, e *env) {
		e.newUser("alice", keys.RoleInternalUser, nil)
		got := map[string]string{}
		for _, c := range hostileValues() {
			r := e.call(testMaster, "POST", c.path, c.body)
			if r.status != http.StatusBadRequest || r.errField("param") != c.param {
				t.Errorf("%s: got %d %s; want 400 naming %s", c.name, r.status, r.raw, c.param)
			}
			got[c.name] = fmt.Sprint(r.status, " ", r.raw)
		}
		answers[t.Name()] = got
	})
	var first map[string]string
	for name, got := range answers {
		if first == nil {
			first = got
			continue
		}
		for c, a := range got {
			if first[c] != a {
				t.Errorf("%s on %s: got %s; the other store answered %s", c, name, a, first[c])
			}
		}
	}
}

// TestNoEnumeration: a record an internal user may not see is answered
// exactly like a missing one, and the answer names nothing it did not send.
func TestNoEnumeration(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, map[string]any{"user_email": "alice@example.com"})
	e.newUser("bob", keys.RoleInternalUser, map[string]any{"user_email": "bob@example.com"})
	e.newUser("bob2", keys.RoleInternalUser, map[string]any{"user_email": "shared@example.com"})
	e.newUser("bob3", keys.RoleInternalUser, map[string]any{"user_email": "shared@example.com"})
	alice, _ := e.newKey(obj("user_id", "alice"))
	bobSecret, bobTok := e.newKey(obj("user_id", "bob"))
	ghostSecret, _ := keys.NewSecret()
	ghostTok := keys.Hash(ghostSecret)

	same := func(what string, a, b resp) {
		t.Helper()
		if a.status != b.status || a.raw != b.raw {
			t.Errorf("%s: existing record answered %d %s, missing one %d %s; want the same answer", what, a.status, a.raw, b.status, b.raw)
		}
		for _, leak := range []string{"bob", bobSecret[len(bobSecret)-4:], "matches"} {
			if strings.Contains(a.raw, leak) {
				t.Errorf("%s: answer %s names %q", what, a.raw, leak)
			}
		}
	}
	same("/user/update by another user's email",
		e.call(alice, "POST", "/user/update", obj("user_email", "bob@example.com", "user_alias", "x")),
		e.call(alice, "POST", "/user/update", obj("user_email", "nobody@example.com", "user_alias", "x")))
	same("/user/update by an email several users share",
		e.call(alice, "POST", "/user/update", obj("user_email", "shared@example.com", "user_alias", "x")),
		e.call(alice, "POST", "/user/update", obj("user_email", "nobody@example.com", "user_alias", "x")))
	for _, c := range []struct{ method, path, field string }{
		{"GET", "/key/info?key=", ""},
		{"POST", "/key/update", "key"},
		{"POST", "/key/block", "key"},
		{"POST", "/key/regenerate", "key"},
	} {
		call := func(tok string) resp {
			if c.method == "GET" {
				return e.call(alice, "GET", c.path+tok, nil)
			}
			return e.call(alice, "POST", c.path, obj(c.field, tok))
		}
		same(c.path+" of another user's key", call(bobTok), call(ghostTok))
	}
	same("/key/delete of another user's key",
		e.call(alice, "POST", "/key/delete", obj("keys", []string{bobTok})),
		e.call(alice, "POST", "/key/delete", obj("keys", []string{ghostTok})))
	a := e.call(alice, "GET", "/user/info?user_id=bob", nil)
	b := e.call(alice, "GET", "/user/info?user_id=nobody", nil)
	if a.status != b.status || strings.Replace(a.raw, "bob", "nobody", 1) != b.raw {
		t.Errorf("/user/info of another user: got %d %s; for a missing one %d %s; want the same answer", a.status, a.raw, b.status, b.raw)
	}
}

// TestMasterActorUnforgeable: no user can be called "master key", so
// created_by "master key" always means the master key.
func TestMasterActorUnforgeable(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"master key", "Master Key", "key sk-...abcd", "user alice", "anonymous"} {
		if r := e.call(testMaster, "POST", "/user/new", obj("user_id", id)); r.status != http.StatusBadRequest || r.errField("param") != "user_id" {
			t.Errorf("/user/new %q: got %d %s; want 400 naming user_id", id, r.status, r.raw)
		}
	}
	r := e.must(testMaster, "POST", "/key/generate", obj())
	if got, _ := r.body["created_by"].(string); got != "master key" {
		t.Errorf("created_by of a key the master key made: got %q; want %q", got, "master key")
	}
}

// TestKeyCapForNonAdmins: an internal user cannot grow its keys past
// MaxKeysPerUser; an admin is not capped.
func TestKeyCapForNonAdmins(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	alice, _ := e.newKey(obj("user_id", "alice"))
	for range DefaultMaxKeysPerUser - 1 {
		e.must(alice, "POST", "/key/generate", obj())
	}
	r := e.call(alice, "POST", "/key/generate", obj())
	if r.status != http.StatusForbidden || !strings.Contains(r.errField("message"), "max_keys_per_user") {
		t.Errorf("key %d of an internal user: got %d %s; want 403 naming keyway.max_keys_per_user", DefaultMaxKeysPerUser+1, r.status, r.raw)
	}
	e.must(testMaster, "POST", "/key/generate", obj("user_id", "alice"))
}

// TestGraceLimitIs400: the grace-secret limit is a 400 with a clear message.
func TestGraceLimitIs400(t *testing.T) {
	e := newEnv(t)
	s, _ := e.newKey(obj())
	for range keys.MaxGraceSecrets {
		s = e.must(testMaster, "POST", "/key/regenerate", obj("key", s, "grace_period", "1h")).str("key")
	}
	r := e.call(testMaster, "POST", "/key/regenerate", obj("key", s, "grace_period", "1h"))
	if r.status != http.StatusBadRequest || r.errField("param") != "grace_period" {
		t.Errorf("regenerate past the grace limit: got %d %s; want 400 naming grace_period", r.status, r.raw)
	}
	if r := e.call(testMaster, "POST", "/key/regenerate", obj("key", s)); r.status != http.StatusOK {
		t.Errorf("regenerate without grace at the limit: got %d %s; want 200", r.status, r.raw)
	}
}
