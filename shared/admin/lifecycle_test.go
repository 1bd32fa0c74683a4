package admin

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// TestSeedScenarioAdminSteps is steps 1–2 of the seed scenario: the master
// key creates an internal user and a key for it, and the key is usable.
func TestSeedScenarioAdminSteps(t *testing.T) {
	e := newEnv(t)
	r := e.must(testMaster, "POST", "/user/new", obj("user_id", "test-user-1", "user_email", "test@example.com", "user_role", "internal_user"))
	if r.str("user_id") != "test-user-1" || r.str("user_role") != "internal_user" || r.str("user_email") != "test@example.com" {
		t.Errorf("/user/new: got %s; want the user's fields", r.raw)
	}
	if !strings.HasPrefix(r.str("key"), "sk-") {
		t.Errorf("/user/new key: got %q; want a new key (auto_create_key defaults to true)", r.str("key"))
	}
	r = e.must(testMaster, "POST", "/key/generate", obj("user_id", "test-user-1"))
	secret := r.str("key")
	if r := e.call(secret, "GET", "/key/info", nil); r.status != 200 || r.body["info"].(map[string]any)["user_id"] != "test-user-1" {
		t.Errorf("the new key's /key/info: got %d %s; want 200 with user_id test-user-1", r.status, r.raw)
	}
}

// TestGenerateResponse checks LiteLLM's GenerateKeyResponse fields and that
// the plaintext appears only in key, once.
func TestGenerateResponse(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	r := e.must(testMaster, "POST", "/key/generate", obj("user_id", "alice", "key_alias", "main", "duration", "30d",
		"tags", []string{"ocr"}, "metadata", obj("env", "test"), "rpm_limit", 10))
	secret := r.str("key")
	tok := keys.Hash(secret)
	for name, want := range map[string]any{
		"key_name": keys.Abbrev(secret), "token": tok, "token_id": tok, "key_alias": "main", "user_id": "alice", "duration": "30d",
		"expires": e.clock.now().Add(30 * 24 * time.Hour).Format(time.RFC3339),
	} {
		if got := r.body[name]; got != want {
			t.Errorf("%s: got %v; want %v", name, got, want)
		}
	}
	if n := strings.Count(r.raw, secret); n != 1 {
		t.Errorf("plaintext in the generate response: got %d times; want exactly once (in key)", n)
	}
	if len(secret) < len("sk-")+22 {
		t.Errorf("secret length: got %d; want at least 128 random bits", len(secret))
	}
	if tags, _ := r.body["tags"].([]any); len(tags) != 1 || tags[0] != "ocr" {
		t.Errorf("tags: got %v; want [ocr] at the top level", r.body["tags"])
	}
	md := r.body["metadata"].(map[string]any)
	if _, leaked := md[extrasKey]; leaked || md["env"] != "test" {
		t.Errorf("metadata: got %v; want the caller's metadata only", md)
	}
	// Nothing after creation shows the secret.
	for _, path := range []string{"/key/info?key=" + tok, "/key/info?key=" + secret, "/key/list?return_full_object=true", "/key/list", "/user/info?user_id=alice"} {
		r := e.must(testMaster, "GET", path, nil)
		if strings.Contains(r.raw, secret) {
			t.Errorf("GET %s: got the plaintext key in the response; want only token and key_name", strings.Replace(path, secret, "<secret>", 1))
		}
		if !strings.Contains(r.raw, tok) {
			t.Errorf("GET %s: got no token; want the key listed by its hash", strings.Replace(path, secret, "<secret>", 1))
		}
	}
	r = e.must(testMaster, "GET", "/key/info?key="+secret, nil)
	info := r.body["info"].(map[string]any)
	if r.str("key") != tok || info["key_name"] != keys.Abbrev(secret) || info["rpm_limit"] != float64(10) {
		t.Errorf("/key/info: got %s; want key=token and the stored fields", r.raw)
	}
	if tags, _ := info["tags"].([]any); len(tags) != 1 {
		t.Errorf("/key/info tags: got %v; want the stored extra field back", info["tags"])
	}
}

// TestDurations checks LiteLLM's duration units against the handler clock.
func TestDurations(t *testing.T) {
	e := newEnv(t)
	now := e.clock.now()
	for _, row := range []struct {
		in   string
		want time.Time
	}{
		{"30s", now.Add(30 * time.Second)},
		{"45", now.Add(45 * time.Second)},
		{"30m", now.Add(30 * time.Minute)},
		{"24h", now.Add(24 * time.Hour)},
		{"30d", now.AddDate(0, 0, 30)},
		{"1w", now.AddDate(0, 0, 7)},
		{"1mo", now.AddDate(0, 1, 0)},
	} {
		r := e.must(testMaster, "POST", "/key/generate", obj("duration", row.in))
		if got := r.str("expires"); got != row.want.Format(time.RFC3339) {
			t.Errorf("duration %q: got expires %s; want %s", row.in, got, row.want.Format(time.RFC3339))
		}
	}
	if r := e.must(testMaster, "POST", "/key/generate", obj()); r.body["expires"] != nil {
		t.Errorf("no duration: got expires %v; want null (never)", r.body["expires"])
	}
}

// TestConcurrentGenerate: 100 parallel /key/generate calls make 100
// distinct keys, all stored and all working.
func TestConcurrentGenerate(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	const n = 100
	secrets := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.call(testMaster, "POST", "/key/generate", obj("user_id", "alice"))
			if r.status != 200 {
				errs <- fmt.Errorf("generate %d: got %d %s; want 200", i, r.status, r.raw)
				return
			}
			secrets[i] = r.str("key")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[string]bool{}
	for _, s := range secrets {
		if s == "" || seen[s] {
			t.Fatalf("keys: got an empty or repeated key; want %d distinct keys", n)
		}
		seen[s] = true
	}
	stored, err := e.store.ListKeys(t.Context(), keys.KeyFilter{UserID: "alice"})
	if err != nil || len(stored) != n {
		t.Fatalf("stored keys: got %d (err %v); want %d", len(stored), err, n)
	}
	for _, s := range secrets {
		if r := e.call(s, "GET", "/key/info", nil); r.status != 200 {
			t.Fatalf("using a generated key: got %d; want 200", r.status)
		}
	}
}

// TestRegenerate: without grace the old secret stops at once; with grace
// it keeps working until the grace period ends; token_id never changes.
func TestRegenerate(t *testing.T) {
	for _, grace := range []string{"", "1h"} {
		t.Run("grace="+grace, func(t *testing.T) {
			e := newEnv(t)
			e.newUser("alice", keys.RoleInternalUser, nil)
			old, oldTok := e.newKey(obj("user_id", "alice", "key_alias", "main"))
			body := obj("key", old)
			if grace != "" {
				body["grace_period"] = grace
			}
			e.resetPurged()
			// alice regenerates her own key with her own key.
			r := e.must(old, "POST", "/key/regenerate", body)
			secret := r.str("key")
			newTok := keys.Hash(secret)
			if secret == old || r.str("token") != newTok || r.str("token_id") != oldTok || r.str("key_alias") != "main" {
				t.Fatalf("regenerate: got %s; want a new key with token_id %s and the alias kept", r.raw, oldTok)
			}
			if !e.purgedToken(oldTok) {
				t.Errorf("invalidate: got no call for the old token; want it dropped from the cache")
			}
			if r := e.call(secret, "GET", "/key/info", nil); r.status != 200 || r.body["info"].(map[string]any)["token_id"] != oldTok {
				t.Errorf("new key: got %d %s; want 200 with the same token_id", r.status, r.raw)
			}
			rec, err := e.store.GetKey(t.Context(), oldTok)
			if grace == "" {
				if !errors.Is(err, keys.ErrNotFound) {
					t.Errorf("old token without grace: got record %+v, err %v; want ErrNotFound", rec, err)
				}
				if r := e.call(old, "GET", "/key/info", nil); r.status != 401 {
					t.Errorf("old key without grace: got %d; want 401", r.status)
				}
				return
			}
			if err != nil || rec.RotatedTo != newTok || rec.Expires == nil || !rec.Expires.Equal(e.clock.now().Add(time.Hour)) {
				t.Fatalf("old token with grace: got %+v, err %v; want a rotation record to the new token until +1h", rec, err)
			}
			r = e.call(old, "GET", "/key/info", nil)
			if r.status != 200 || r.str("key") != newTok {
				t.Errorf("old key within grace: got %d %s; want 200 showing the current key", r.status, r.raw)
			}
			if r := e.must(testMaster, "GET", "/key/info?key="+old, nil); r.str("key") != newTok {
				t.Errorf("/key/info of the old key within grace: got %s; want the current key", r.str("key"))
			}
			if r := e.must(testMaster, "GET", "/key/list", nil); r.body["total_count"] != float64(1) {
				t.Errorf("/key/list after regenerate: got %v keys; want 1 (rotation records are not listed)", r.body["total_count"])
			}
			e.clock.add(time.Hour + time.Second)
			if r := e.call(old, "GET", "/key/info", nil); r.status != 401 {
				t.Errorf("old key after grace: got %d; want 401", r.status)
			}
			if r := e.call(testMaster, "GET", "/key/info?key="+old, nil); r.status != 404 {
				t.Errorf("/key/info of the old key after grace: got %d; want 404", r.status)
			}
			if r := e.call(secret, "GET", "/key/info", nil); r.status != 200 {
				t.Errorf("new key after grace: got %d; want 200", r.status)
			}
		})
	}
}

// TestRegeneratePathFormAndNewKey covers POST /key/{key}/regenerate and a
// caller-chosen new_key.
func TestRegeneratePathFormAndNewKey(t *testing.T) {
	e := newEnv(t)
	_, tok := e.newKey(obj())
	newKey := "sk-" + strings.Repeat("n", 30)
	r := e.must(testMaster, "POST", "/key/"+tok+"/regenerate", obj("new_key", newKey))
	if r.str("key") != newKey || r.str("token_id") != tok {
		t.Fatalf("path-form regenerate: got %s; want key=new_key and the same token_id", r.raw)
	}
	if r := e.call(newKey, "GET", "/key/info", nil); r.status != 200 {
		t.Errorf("new_key: got %d; want 200", r.status)
	}
}

// TestDeleteUserDeletesKeys: /user/delete removes the user's keys too.
func TestDeleteUserDeletesKeys(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	e.newUser("bob", keys.RoleInternalUser, nil)
	a1, t1 := e.newKey(obj("user_id", "alice"))
	_, t2 := e.newKey(obj("user_id", "alice"))
	// A regenerated key leaves a rotation record; it must go too.
	r := e.must(testMaster, "POST", "/key/regenerate", obj("key", a1, "grace_period", "1h"))
	t3 := keys.Hash(r.str("key"))
	b, _ := e.newKey(obj("user_id", "bob"))
	e.resetPurged()
	r = e.must(testMaster, "POST", "/user/delete", obj("user_ids", []string{"alice"}))
	deleted := fmt.Sprint(r.body["deleted_keys"])
	for _, tok := range []string{t1, t2, t3} {
		if _, err := e.store.GetKey(t.Context(), tok); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("alice's key %s…: got err %v; want ErrNotFound", tok[:8], err)
		}
		if !strings.Contains(deleted, tok) {
			t.Errorf("deleted_keys: got %s; want it to list %s…", deleted, tok[:8])
		}
	}
	if !e.purgedAll() || !e.purgedToken(t2) {
		t.Errorf("invalidate: got %v; want the deleted tokens and a full purge", e.purged)
	}
	if r := e.call(a1, "GET", "/key/info", nil); r.status != 401 {
		t.Errorf("alice's old key after /user/delete: got %d; want 401", r.status)
	}
	if r := e.call(b, "GET", "/key/info", nil); r.status != 200 {
		t.Errorf("bob's key: got %d; want 200 (untouched)", r.status)
	}
	if r := e.call(testMaster, "GET", "/user/info?user_id=alice", nil); r.status != 404 {
		t.Errorf("/user/info of a deleted user: got %d; want 404", r.status)
	}
}

// TestKeyLifecycle: update, block, unblock, delete by alias, with cache
// invalidation each time.
func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	e.must(testMaster, "POST", "/team/new", obj("team_id", "ocr"))
	secret, tok := e.newKey(obj("key_alias", "svc"))
	e.resetPurged()
	r := e.must(testMaster, "POST", "/key/update", obj("key_alias", "svc", "team_id", "ocr", "allowed_routes", []string{"/v1/ocr"}, "max_budget", 5))
	if r.str("team_id") != "ocr" || r.body["max_budget"] != float64(5) || r.str("key") != tok {
		t.Errorf("update by alias: got %s; want team_id, max_budget set and key = token", r.raw)
	}
	if !e.purgedToken(tok) {
		t.Errorf("update: got no invalidation of the key; want one")
	}
	r = e.must(testMaster, "POST", "/key/update", obj("key", tok, "key_alias", "svc2"))
	if r.str("key_alias") != "svc2" {
		t.Errorf("rename alias: got %q; want svc2", r.str("key_alias"))
	}
	e.must(testMaster, "POST", "/key/block", obj("key", secret))
	if r := e.call(secret, "GET", "/key/info", nil); r.status != 401 {
		t.Errorf("blocked key: got %d; want refused", r.status)
	}
	e.must(testMaster, "POST", "/key/unblock", obj("key", tok))
	if r := e.call(secret, "GET", "/key/info", nil); r.status != 200 {
		t.Errorf("unblocked key: got %d; want 200", r.status)
	}
	r = e.must(testMaster, "POST", "/key/delete", obj("key_aliases", []string{"svc2"}))
	if fmt.Sprint(r.body["deleted_keys"]) != "[svc2]" {
		t.Errorf("deleted_keys: got %v; want [svc2]", r.body["deleted_keys"])
	}
	if r := e.call(testMaster, "POST", "/key/delete", obj("keys", []string{tok})); r.status != 404 || r.errField("param") != "keys[0]" {
		t.Errorf("deleting it again: got %d %s; want 404 naming keys[0]", r.status, r.raw)
	}
}

// TestTeamDelete removes the team, its keys and its membership on users.
func TestTeamDelete(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	e.must(testMaster, "POST", "/team/new", obj("team_id", "t1", "members_with_roles", []any{obj("role", "admin", "user_id", "alice")}))
	if r := e.must(testMaster, "GET", "/user/info?user_id=alice", nil); fmt.Sprint(r.body["user_info"].(map[string]any)["teams"]) != "[t1]" {
		t.Fatalf("alice's teams after /team/new members_with_roles: got %v; want [t1]", r.body["user_info"])
	}
	secret, _ := e.newKey(obj("user_id", "alice", "team_id", "t1"))
	other, _ := e.newKey(obj("user_id", "alice"))
	e.must(testMaster, "POST", "/team/delete", obj("team_ids", []string{"t1"}))
	if r := e.call(secret, "GET", "/key/info", nil); r.status != 401 {
		t.Errorf("team key after /team/delete: got %d; want 401", r.status)
	}
	if r := e.call(other, "GET", "/key/info", nil); r.status != 200 {
		t.Errorf("alice's other key: got %d; want 200", r.status)
	}
	if r := e.must(testMaster, "GET", "/user/info?user_id=alice", nil); fmt.Sprint(r.body["user_info"].(map[string]any)["teams"]) != "[]" {
		t.Errorf("alice's teams after /team/delete: got %v; want []", r.body["user_info"])
	}
}

// TestLists checks the listing shapes and pagination.
func TestLists(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		e.newUser(fmt.Sprintf("u%d", i), keys.RoleInternalUser, nil)
		e.newKey(obj("user_id", fmt.Sprintf("u%d", i)))
	}
	r := e.must(testMaster, "GET", "/key/list?page=2&size=2", nil)
	if r.body["total_count"] != float64(3) || r.body["current_page"] != float64(2) || r.body["total_pages"] != float64(2) {
		t.Errorf("/key/list page 2: got %s; want total_count 3, current_page 2, total_pages 2", r.raw)
	}
	if ks := r.body["keys"].([]any); len(ks) != 1 || !keys.IsHash(ks[0].(string)) {
		t.Errorf("/key/list keys: got %v; want one token", ks)
	}
	r = e.must(testMaster, "GET", "/key/list?user_id=u1", nil)
	if r.body["total_count"] != float64(1) {
		t.Errorf("/key/list?user_id=u1: got %v; want 1", r.body["total_count"])
	}
	r = e.must(testMaster, "GET", "/user/list?page_size=2", nil)
	if r.body["total"] != float64(3) || len(r.body["users"].([]any)) != 2 || r.body["total_pages"] != float64(2) {
		t.Errorf("/user/list: got %s; want total 3, 2 users, 2 pages", r.raw)
	}
	r = e.must(testMaster, "GET", "/user/list?user_ids=u0,u2", nil)
	if r.body["total"] != float64(2) {
		t.Errorf("/user/list?user_ids=u0,u2: got %v; want 2", r.body["total"])
	}
}

// TestStoreFailureIs503: a store that fails answers 503, fail closed.
func TestStoreFailureIs503(t *testing.T) {
	e := newEnv(t)
	e.store.Close()
	for _, c := range []struct{ method, path string }{{"POST", "/key/generate"}, {"GET", "/key/list"}, {"GET", "/user/list"}} {
		r := e.call(testMaster, c.method, c.path, obj())
		if r.status != 503 || r.errField("type") != "service_unavailable" {
			t.Errorf("%s %s on a closed store: got %d %s; want 503", c.method, c.path, r.status, r.raw)
		}
	}
	if !strings.Contains(e.logs.String(), "admin store error") {
		t.Errorf("logs: got no store error line; want one")
	}
}

// TestLiteLLMClientShapes sends what LiteLLM's Python client sends: older
// clients put api_key in /key/generate (ignored, never stored), delete
// sends null for the list it does not use.
func TestLiteLLMClientShapes(t *testing.T) {
	e := newEnv(t)
	r := e.must(testMaster, "POST", "/key/generate", obj("api_key", testMaster, "key_alias", "cli", "budget_id", "b1", "aliases", obj("a", "b")))
	if strings.Contains(r.raw, testMaster) {
		t.Errorf("generate response: got the api_key value echoed; want it ignored")
	}
	k, err := e.store.GetKey(t.Context(), r.str("token"))
	if err != nil {
		t.Fatalf("GetKey: %v", err)
	}
	if strings.Contains(fmt.Sprint(k), testMaster) || strings.Contains(e.logs.String(), testMaster) {
		t.Errorf("stored key or logs: got the api_key value; want it never stored")
	}
	if r.str("budget_id") != "b1" {
		t.Errorf("budget_id: got %v; want b1 kept", r.body["budget_id"])
	}
	r = e.must(testMaster, "POST", "/key/delete", `{"keys": null, "key_aliases": ["cli"]}`)
	if fmt.Sprint(r.body["deleted_keys"]) != "[cli]" {
		t.Errorf("delete by alias with keys null: got %s; want deleted_keys [cli]", r.raw)
	}
	teams := e.must(testMaster, "GET", "/team/list", nil)
	if teams.list == nil {
		t.Errorf("/team/list: got %s; want a JSON array, as LiteLLM", teams.raw)
	}
}

// TestRegenerateTwiceWithGrace: every old secret still in its grace period
// reaches the newest key.
func TestRegenerateTwiceWithGrace(t *testing.T) {
	e := newEnv(t)
	s1, tok1 := e.newKey(obj())
	s2 := e.must(testMaster, "POST", "/key/regenerate", obj("key", s1, "grace_period", "1h")).str("key")
	r := e.must(testMaster, "POST", "/key/regenerate", obj("key", s2, "grace_period", "2h"))
	newest := r.str("token")
	for i, s := range []string{s1, s2} {
		r := e.call(s, "GET", "/key/info", nil)
		if r.status != 200 || r.str("key") != newest || r.body["info"].(map[string]any)["token_id"] != tok1 {
			t.Errorf("secret %d within grace: got %d %s; want the newest key with the first token_id", i+1, r.status, r.raw)
		}
	}
	// Deleting the key ends every grace period.
	e.must(testMaster, "POST", "/key/delete", obj("keys", []string{newest}))
	for i, s := range []string{s1, s2, r.str("key")} {
		if r := e.call(s, "GET", "/key/info", nil); r.status != 401 {
			t.Errorf("secret %d after delete: got %d; want 401", i+1, r.status)
		}
	}
}

// TestAllowedRoutesAcceptsPassThroughGroups: LiteLLM scripts restrict keys
// with route-group names; the ones covering pass-through endpoints are kept
// as given (auth.Authorize admits every pass-through route for them).
func TestAllowedRoutesAcceptsPassThroughGroups(t *testing.T) {
	e := newEnv(t)
	r := e.must(testMaster, "POST", "/key/generate", obj("allowed_routes", []string{"llm_api_routes", "/v1/ocr"}))
	got, _ := r.body["allowed_routes"].([]any)
	if len(got) != 2 || got[0] != "llm_api_routes" || got[1] != "/v1/ocr" {
		t.Errorf("allowed_routes: got %v; want [llm_api_routes /v1/ocr]", r.body["allowed_routes"])
	}
}
