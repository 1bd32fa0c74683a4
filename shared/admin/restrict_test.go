package admin

import (
	"fmt"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// Keys an internal user's key makes, or changes, stay within that key's
// restrictions (security review: a restricted key minted itself an
// unrestricted key with /key/generate, or extended itself with
// /key/update duration).

// restrictedAlice sets up alice (internal_user, in teams ocr and open) and
// a key an admin restricted in every way: routes, team, limits, models and
// a one-hour expiry. It returns the key's secret and token, and its expiry.
func restrictedAlice(t *testing.T, e *env) (secret, token string, expires time.Time) {
	t.Helper()
	e.must(testMaster, "POST", "/team/new", obj("team_id", "ocr", "allowed_passthrough_routes", []string{"/v1/ocr"}))
	e.must(testMaster, "POST", "/team/new", obj("team_id", "open"))
	e.must(testMaster, "POST", "/team/new", obj("team_id", "elsewhere"))
	e.newUser("alice", keys.RoleInternalUser, obj("teams", []string{"ocr", "open"}))
	secret, token = e.newKey(obj("user_id", "alice", "team_id", "ocr", "duration", "1h",
		"allowed_routes", []string{"/v1/ocr", "/key/generate"}, "allowed_passthrough_routes", []string{"/v1/ocr"},
		"rpm_limit", 5, "tpm_limit", 100, "max_parallel_requests", 2, "max_budget", 10, "budget_duration", "30d",
		"models", []string{"m1"}))
	return secret, token, e.clock.now().Add(time.Hour)
}

// wantRestricted checks that the key with token tok, as stored and as
// rendered in r, carries every restriction of restrictedAlice's key, the
// team team and the expiry exp.
func wantRestricted(t *testing.T, e *env, what string, r resp, team string, exp time.Time) {
	t.Helper()
	for field, want := range map[string]string{
		"allowed_routes":             "[/v1/ocr /key/generate]",
		"allowed_passthrough_routes": "[/v1/ocr]",
		"models":                     "[m1]",
		"team_id":                    team,
		"user_id":                    "alice",
		"rpm_limit":                  "5",
		"tpm_limit":                  "100",
		"max_parallel_requests":      "2",
		"max_budget":                 "10",
		"budget_duration":            "30d",
		"expires":                    exp.UTC().Format(time.RFC3339),
	} {
		if got := fmt.Sprint(r.body[field]); got != want {
			t.Errorf("%s: %s: got %s; want %s", what, field, got, want)
		}
	}
	k, err := e.store.GetKey(t.Context(), r.str("token"))
	if err != nil {
		t.Fatalf("%s: stored key: %v", what, err)
	}
	if fmt.Sprint(k.AllowedRoutes, k.AllowedPassthroughRoutes, k.TeamID, k.RPMLimit != nil && *k.RPMLimit == 5, k.MaxBudget != nil && *k.MaxBudget == 10) !=
		fmt.Sprint([]string{"/v1/ocr", "/key/generate"}, []string{"/v1/ocr"}, team, true, true) ||
		k.Expires == nil || !k.Expires.Equal(exp) {
		t.Errorf("%s: stored key %+v; want the calling key's restrictions, team %s, expiry %s", what, k, team, exp)
	}
}

// TestRestrictedKeyMintsRestrictedKey: /key/generate by a restricted
// internal_user key gives a key with the same restrictions, the same team
// (unless it names another team it is in) and an expiry no later than its
// own.
func TestRestrictedKeyMintsRestrictedKey(t *testing.T) {
	e := newEnv(t)
	secret, _, exp := restrictedAlice(t, e)

	r := e.must(secret, "POST", "/key/generate", obj())
	wantRestricted(t, e, "generate {}", r, "ocr", exp)

	r = e.must(secret, "POST", "/key/generate", obj("duration", "30d", "key_alias", "long"))
	wantRestricted(t, e, "generate duration 30d (capped)", r, "ocr", exp)

	r = e.must(secret, "POST", "/key/generate", obj("duration", "10m"))
	wantRestricted(t, e, "generate duration 10m (shorter: kept)", r, "ocr", e.clock.now().Add(10*time.Minute))

	// Another team it is in: allowed by membership, restrictions kept.
	r = e.must(secret, "POST", "/key/generate", obj("team_id", "open"))
	wantRestricted(t, e, "generate team_id open", r, "open", exp)
	if r := e.call(secret, "POST", "/key/generate", obj("team_id", "elsewhere")); r.status != 403 || r.errField("param") != "team_id" {
		t.Errorf("generate for a team alice is not in: got %d %s; want 403 naming team_id", r.status, r.raw)
	}
	// A soft budget only warns: still the caller's to set.
	r = e.must(secret, "POST", "/key/generate", obj("soft_budget", 1))
	if r.body["soft_budget"] != float64(1) || r.body["rpm_limit"] != float64(5) {
		t.Errorf("generate soft_budget: got %s; want soft_budget 1 and the inherited rpm_limit 5", r.raw)
	}
	// And the restricted fields themselves stay admin-only.
	for _, f := range []string{"allowed_routes", "allowed_passthrough_routes", "rpm_limit", "max_budget"} {
		val := any([]string{})
		if f == "rpm_limit" || f == "max_budget" {
			val = 1000
		}
		if r := e.call(secret, "POST", "/key/generate", obj(f, val)); r.status != 403 || r.errField("param") != f {
			t.Errorf("generate with %s: got %d %s; want 403 naming it", f, r.status, r.raw)
		}
	}
}

// TestRestrictedKeyCannotExtendOrLoosenItself: /key/update and
// /key/regenerate by a restricted key cannot push any key of its user past
// its own expiry, nor drop a restriction.
func TestRestrictedKeyCannotExtendOrLoosenItself(t *testing.T) {
	e := newEnv(t)
	secret, tok, exp := restrictedAlice(t, e)
	ctx := t.Context()

	r := e.call(secret, "POST", "/key/update", obj("key", tok, "duration", "30d"))
	if r.status != 403 || r.errField("param") != "duration" {
		t.Errorf("update own key duration 30d: got %d %s; want 403 naming duration", r.status, r.raw)
	}
	if k, _ := e.store.GetKey(ctx, tok); k.Expires == nil || !k.Expires.Equal(exp) {
		t.Errorf("expiry after the refused update: got %v; want %s", k.Expires, exp)
	}
	for _, f := range []string{"allowed_routes", "allowed_passthrough_routes", "models", "rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget", "budget_duration"} {
		var val any = []string{}
		switch f {
		case "rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget":
			val = 1000000
		case "budget_duration":
			val = "1s"
		}
		if r := e.call(secret, "POST", "/key/update", obj("key", tok, f, val)); r.status != 403 || r.errField("param") != f {
			t.Errorf("update own key %s: got %d %s; want 403 naming it", f, r.status, r.raw)
		}
	}

	// A key it minted is bound the same way.
	minted := e.must(secret, "POST", "/key/generate", obj())
	if r := e.call(secret, "POST", "/key/update", obj("key", minted.str("token"), "duration", "30d")); r.status != 403 {
		t.Errorf("update minted key duration 30d: got %d %s; want 403", r.status, r.raw)
	}

	// Shorter is fine.
	e.clock.add(time.Minute)
	r = e.must(secret, "POST", "/key/update", obj("key", tok, "duration", "10m"))
	exp = e.clock.now().Add(10 * time.Minute)
	if r.str("expires") != exp.Format(time.RFC3339) {
		t.Errorf("update own key duration 10m: expires %q; want %s", r.str("expires"), exp.Format(time.RFC3339))
	}

	// Regenerate: no extension, and every field is kept.
	if r := e.call(secret, "POST", "/key/regenerate", obj("key", tok, "duration", "30d")); r.status != 403 || r.errField("param") != "duration" {
		t.Errorf("regenerate own key duration 30d: got %d %s; want 403 naming duration", r.status, r.raw)
	}
	if r := e.call(secret, "POST", "/key/regenerate", obj("key", tok, "allowed_routes", []string{})); r.status != 403 {
		t.Errorf("regenerate own key dropping allowed_routes: got %d %s; want 403", r.status, r.raw)
	}
	r = e.must(secret, "POST", "/key/regenerate", obj("key", tok))
	wantRestricted(t, e, "regenerate own key", r, "ocr", exp)
}

// TestRestrictedKeyCannotRegenerateWiderKey: a restricted key may not take
// a new secret for a key of its user that reaches further than itself.
func TestRestrictedKeyCannotRegenerateWiderKey(t *testing.T) {
	e := newEnv(t)
	secret, tok, exp := restrictedAlice(t, e)
	wide, wideTok := e.newKey(obj("user_id", "alice"))

	r := e.call(secret, "POST", "/key/regenerate", obj("key", wideTok))
	if r.status != 403 || r.errField("param") != "key" {
		t.Errorf("restricted key regenerating alice's unrestricted key: got %d %s; want 403", r.status, r.raw)
	}
	if r := e.call(wide, "GET", "/key/info", nil); r.status != 200 {
		t.Errorf("the unrestricted key after the refused regenerate: got %d; want 200 (unchanged)", r.status)
	}
	// One as narrow as itself (here: one it minted) it may.
	minted := e.must(secret, "POST", "/key/generate", obj())
	r = e.must(secret, "POST", "/key/regenerate", obj("key", minted.str("token")))
	wantRestricted(t, e, "regenerate minted key", r, "ocr", exp)
	// A key with the same restrictions in another team alice is in, too.
	other := e.must(secret, "POST", "/key/generate", obj("team_id", "open"))
	e.must(secret, "POST", "/key/regenerate", obj("key", other.str("token")))
	// The unrestricted key is not bound: it may regenerate the restricted one.
	e.must(wide, "POST", "/key/regenerate", obj("key", tok, "grace_period", "1h"))
}

// TestUnrestrictedInternalUserUnaffected: an internal_user whose key has no
// restrictions makes and extends keys as before.
func TestUnrestrictedInternalUserUnaffected(t *testing.T) {
	e := newEnv(t)
	e.must(testMaster, "POST", "/team/new", obj("team_id", "open"))
	e.newUser("alice", keys.RoleInternalUser, obj("teams", []string{"open"}))
	secret, tok := e.newKey(obj("user_id", "alice"))
	_, other := e.newKey(obj("user_id", "alice", "allowed_routes", []string{"/v1/ocr"}))

	r := e.must(secret, "POST", "/key/generate", obj())
	for _, f := range []string{"expires", "team_id", "rpm_limit", "max_budget"} {
		if r.body[f] != nil {
			t.Errorf("generate {}: %s = %v; want none", f, r.body[f])
		}
	}
	if fmt.Sprint(r.body["allowed_routes"], r.body["allowed_passthrough_routes"]) != "[] []" {
		t.Errorf("generate {}: routes %v %v; want none", r.body["allowed_routes"], r.body["allowed_passthrough_routes"])
	}
	r = e.must(secret, "POST", "/key/generate", obj("duration", "30d"))
	if want := e.clock.now().Add(30 * 24 * time.Hour).Format(time.RFC3339); r.str("expires") != want {
		t.Errorf("generate duration 30d: expires %q; want %s", r.str("expires"), want)
	}
	// (Regenerate first: once its own key expires, it is bound by that.)
	e.must(secret, "POST", "/key/regenerate", obj("key", other))
	e.must(secret, "POST", "/key/update", obj("key", tok, "duration", "30d"))
}

// TestAdminsAreNotBoundByTheirKey: an admin's (and the master key's) keys
// are made as asked, whatever restricts the admin's own key.
func TestAdminsAreNotBoundByTheirKey(t *testing.T) {
	e := newEnv(t)
	e.newUser("root", keys.RoleProxyAdmin, nil)
	e.newUser("alice", keys.RoleInternalUser, nil)
	admin, _ := e.newKey(obj("user_id", "root", "duration", "1h", "allowed_passthrough_routes", []string{"/v1/ocr"}, "rpm_limit", 1))
	for caller, secret := range map[string]string{"proxy_admin": admin, "master": testMaster} {
		r := e.must(secret, "POST", "/key/generate", obj("user_id", "alice", "duration", "30d"))
		if want := e.clock.now().Add(30 * 24 * time.Hour).Format(time.RFC3339); r.str("expires") != want {
			t.Errorf("%s: generate duration 30d: expires %q; want %s", caller, r.str("expires"), want)
		}
		if fmt.Sprint(r.body["allowed_passthrough_routes"]) != "[]" || r.body["rpm_limit"] != nil {
			t.Errorf("%s: generate: got %s; want no restrictions", caller, r.raw)
		}
		r = e.must(secret, "POST", "/key/generate", obj("user_id", "root"))
		if r.body["expires"] != nil || fmt.Sprint(r.body["allowed_passthrough_routes"]) != "[]" {
			t.Errorf("%s: generate for root: got %s; want no expiry, no restrictions", caller, r.raw)
		}
	}
}
