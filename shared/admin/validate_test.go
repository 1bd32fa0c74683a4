package admin

import (
	"strconv"
	"strings"
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

// TestBadRequests is one bad request per row, across the routes: each is
// answered in the error envelope with the field named in param and in the
// message, never with a 5xx.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	e.must(testMaster, "POST", "/team/new", obj("team_id", "t1"))
	e.newUser("alice", keys.RoleInternalUser, nil)
	_, tok := e.newKey(obj("user_id", "alice", "key_alias", "dup"))

	big := `{"metadata": {"pad": "` + strings.Repeat("x", MaxBodyBytes) + `"}}`
	rows := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		param  string
	}{
		{"malformed JSON", "POST", "/key/generate", `{"key_alias":`, 400, "body"},
		{"trailing garbage", "POST", "/key/generate", `{"key_alias":"a"} x`, 400, "body"},
		{"array body", "POST", "/key/generate", `[]`, 400, "body"},
		{"string body", "POST", "/user/new", `"alice"`, 400, "body"},
		{"body too large", "POST", "/key/generate", big, 413, "body"},
		{"negative max_budget", "POST", "/key/generate", obj("max_budget", -1), 400, "max_budget"},
		{"string max_budget", "POST", "/key/generate", obj("max_budget", "10"), 400, "max_budget"},
		{"huge max_budget", "POST", "/key/generate", `{"max_budget": 1e400}`, 400, "max_budget"},
		{"fractional rpm_limit", "POST", "/key/generate", obj("rpm_limit", 1.5), 400, "rpm_limit"},
		{"negative tpm_limit", "POST", "/key/generate", obj("tpm_limit", -5), 400, "tpm_limit"},
		{"string max_parallel_requests", "POST", "/key/generate", obj("max_parallel_requests", "a"), 400, "max_parallel_requests"},
		{"bad duration unit", "POST", "/key/generate", obj("duration", "30x"), 400, "duration"},
		{"zero duration", "POST", "/key/generate", obj("duration", "0s"), 400, "duration"},
		{"numeric duration", "POST", "/key/generate", obj("duration", 30), 400, "duration"},
		{"absurd duration", "POST", "/key/generate", obj("duration", "9999999999w"), 400, "duration"},
		{"bad budget_duration", "POST", "/key/generate", obj("budget_duration", "forever"), 400, "budget_duration"},
		{"models not a list", "POST", "/key/generate", obj("models", "gpt-4"), 400, "models"},
		{"route without slash", "POST", "/key/generate", obj("allowed_routes", []string{"v1/ocr"}), 400, "allowed_routes[0]"},
		{"route group that is not pass-through", "POST", "/key/generate", obj("allowed_routes", []string{"/v1/ocr", "info_routes"}), 400, "allowed_routes[1]"},
		{"route group in allowed_passthrough_routes", "POST", "/key/generate", obj("allowed_passthrough_routes", []string{"llm_api_routes"}), 400, "allowed_passthrough_routes[0]"},
		{"routes not a list", "POST", "/key/generate", obj("allowed_passthrough_routes", "/v1"), 400, "allowed_passthrough_routes"},
		{"metadata not an object", "POST", "/key/generate", obj("metadata", []any{}), 400, "metadata"},
		{"reserved metadata entry", "POST", "/key/generate", obj("metadata", obj(extrasKey, obj())), 400, "metadata"},
		{"unknown key_type", "POST", "/key/generate", obj("key_type", "superuser"), 400, "key_type"},
		{"blocked not a bool", "POST", "/key/generate", obj("blocked", "yes"), 400, "blocked"},
		{"custom key without sk-", "POST", "/key/generate", obj("key", "abcdefghijklmnopqrstuvwxyz0123"), 400, "key"},
		{"custom key too short", "POST", "/key/generate", obj("key", "sk-short"), 400, "key"},
		{"custom key with space", "POST", "/key/generate", obj("key", "sk-abcdefghij klmnopqrstuvwxyz"), 400, "key"},
		{"unknown field (typo)", "POST", "/key/generate", obj("key_alis", "x"), 400, "key_alis"},
		{"unknown user_id", "POST", "/key/generate", obj("user_id", "ghost"), 400, "user_id"},
		{"unknown team_id", "POST", "/key/generate", obj("team_id", "ghost"), 400, "team_id"},
		{"empty user_id", "POST", "/key/generate", obj("user_id", ""), 400, "user_id"},
		{"duplicate key_alias", "POST", "/key/generate", obj("key_alias", "dup"), 400, "key_alias"},
		{"unknown user_role", "POST", "/user/new", obj("user_role", "superadmin"), 400, "user_role"},
		{"duplicate user_id", "POST", "/user/new", obj("user_id", "alice"), 400, "user_id"},
		{"unknown team in teams", "POST", "/user/new", obj("teams", []string{"nope"}), 400, "teams[0]"},
		{"key field without a key", "POST", "/user/new", obj("auto_create_key", false, "duration", "1d"), 400, "duration"},
		{"numeric user_email", "POST", "/user/new", obj("user_email", 5), 400, "user_email"},
		{"control char in user_id", "POST", "/user/new", obj("user_id", "a\x00b"), 400, "user_id"},
		{"update without user_id", "POST", "/user/update", obj(), 400, "user_id"},
		{"negative soft_budget", "POST", "/user/update", obj("user_id", "alice", "soft_budget", -1), 400, "soft_budget"},
		{"delete without user_ids", "POST", "/user/delete", obj(), 400, "user_ids"},
		{"user_ids not a list", "POST", "/user/delete", obj("user_ids", "alice"), 400, "user_ids"},
		{"empty id in user_ids", "POST", "/user/delete", obj("user_ids", []string{""}), 400, "user_ids[0]"},
		{"page 0", "GET", "/user/list?page=0", nil, 400, "page"},
		{"page_size too big", "GET", "/user/list?page_size=1000", nil, 400, "page_size"},
		{"unknown role filter", "GET", "/user/list?role=god", nil, 400, "role"},
		{"unknown query parameter", "GET", "/user/info?userid=alice", nil, 400, "userid"},
		{"key/info with a non-key", "GET", "/key/info?key=notakey", nil, 400, "key"},
		{"update without key", "POST", "/key/update", obj(), 400, "key"},
		{"negative spend", "POST", "/key/update", obj("key", tok, "spend", -3), 400, "spend"},
		{"update to unknown team", "POST", "/key/update", obj("key", tok, "team_id", "ghost"), 400, "team_id"},
		{"delete without keys", "POST", "/key/delete", obj(), 400, "keys"},
		{"keys not strings", "POST", "/key/delete", obj("keys", []any{1}), 400, "keys"},
		{"size 0", "GET", "/key/list?size=0", nil, 400, "size"},
		{"bad bool", "GET", "/key/list?return_full_object=maybe", nil, 400, "return_full_object"},
		{"regenerate without key", "POST", "/key/regenerate", obj(), 400, "key"},
		{"bad grace_period", "POST", "/key/regenerate", obj("key", tok, "grace_period", "soon"), 400, "grace_period"},
		{"short new_key", "POST", "/key/regenerate", obj("key", tok, "new_key", "sk-x"), 400, "new_key"},
		{"new_master_key", "POST", "/key/regenerate", obj("key", tok, "new_master_key", "sk-abcdefghijklmnopqrstuvwxyz"), 400, "new_master_key"},
		{"block without key", "POST", "/key/block", obj(), 400, "key"},
		{"block with a number", "POST", "/key/block", obj("key", 123), 400, "key"},
		{"duplicate team_id", "POST", "/team/new", obj("team_id", "t1"), 400, "team_id"},
		{"unknown member role", "POST", "/team/new", obj("members_with_roles", []any{obj("role", "owner", "user_id", "alice")}), 400, "members_with_roles[0].role"},
		{"unknown member", "POST", "/team/new", obj("members_with_roles", []any{obj("user_id", "ghost")}), 400, "members_with_roles[0].user_id"},
		{"negative team tpm_limit", "POST", "/team/new", obj("tpm_limit", -1), 400, "tpm_limit"},
		{"team update without team_id", "POST", "/team/update", obj("team_alias", "x"), 400, "team_id"},
		{"team info without team_id", "GET", "/team/info", nil, 400, "team_id"},
		{"empty team_ids", "POST", "/team/delete", obj("team_ids", []string{}), 400, "team_ids"},
	}
	if len(rows) < 30 {
		t.Fatalf("got %d bad-request rows; want at least 30", len(rows))
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			e.t = t
			r := e.call(testMaster, row.method, row.path, row.body)
			if r.status != row.status {
				t.Fatalf("%s %s: got status %d (%s); want %d", row.method, row.path, r.status, r.raw, row.status)
			}
			if got := r.errField("param"); got != row.param {
				t.Errorf("param: got %q; want %q (%s)", got, row.param, r.raw)
			}
			if msg := r.errField("message"); !strings.Contains(msg, row.param) {
				t.Errorf("message: got %q; want it to name %q", msg, row.param)
			}
			if got := r.errField("code"); got != strconv.Itoa(row.status) {
				t.Errorf("code: got %q; want %q", got, strconv.Itoa(row.status))
			}
			t.Logf("%d %s", r.status, r.errField("message"))
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q; want application/json", ct)
			}
		})
	}
	// Nothing a bad request named was created.
	if _, err := e.store.GetUser(t.Context(), "ghost"); err == nil {
		t.Errorf("user ghost: got created; want no side effects from bad requests")
	}
}

// TestRoutingErrors covers unknown admin paths (404) and wrong methods
// (405 with Allow), both in the envelope.
func TestRoutingErrors(t *testing.T) {
	e := newEnv(t)
	rows := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/key/nope", 404, ""},
		{"GET", "/user", 404, ""},
		{"GET", "/team/new/extra", 404, ""},
		{"GET", "/key/generate", 405, "POST"},
		{"DELETE", "/key/delete", 405, "POST"},
		{"POST", "/key/info", 405, "GET"},
		{"PUT", "/user/list", 405, "GET"},
		{"GET", "/key/abc/regenerate", 405, "POST"},
	}
	for _, row := range rows {
		r := e.call(testMaster, row.method, row.path, nil)
		if r.status != row.status {
			t.Errorf("%s %s: got %d (%s); want %d", row.method, row.path, r.status, r.raw, row.status)
			continue
		}
		if r.errField("code") != strconv.Itoa(row.status) {
			t.Errorf("%s %s: got envelope %s; want code %d", row.method, row.path, r.raw, row.status)
		}
		if got := r.header.Get("Allow"); got != row.allow {
			t.Errorf("%s %s Allow: got %q; want %q", row.method, row.path, got, row.allow)
		}
	}
	// A trailing slash is the same route.
	if r := e.call(testMaster, "GET", "/user/list/", nil); r.status != 200 {
		t.Errorf("GET /user/list/: got %d; want 200", r.status)
	}
}

// TestCustomKey: a custom key value must be long enough; a good one works.
func TestCustomKey(t *testing.T) {
	e := newEnv(t)
	short := "sk-" + strings.Repeat("a", keys.MinCustomKeyLen-len("sk-")-1)
	r := e.call(testMaster, "POST", "/key/generate", obj("key", short))
	if r.status != 400 || r.errField("param") != "key" {
		t.Fatalf("custom key of %d characters: got %d %s; want 400 naming key", len(short), r.status, r.raw)
	}
	if strings.Contains(r.raw, short) {
		t.Errorf("error body: got the submitted key echoed; want it never repeated")
	}
	good := "sk-" + strings.Repeat("b", keys.MinCustomKeyLen-len("sk-"))
	r = e.must(testMaster, "POST", "/key/generate", obj("key", good))
	if r.str("key") != good || r.str("token") != keys.Hash(good) || r.str("key_name") != keys.Abbrev(good) {
		t.Errorf("custom key response: got key/token/key_name %q/%q/%q; want the value, its hash and its abbreviation", r.str("key"), r.str("token"), r.str("key_name"))
	}
	if r := e.call(good, "GET", "/key/info", nil); r.status != 200 {
		t.Errorf("using the custom key: got %d; want 200", r.status)
	}
	r = e.call(testMaster, "POST", "/key/generate", obj("key", good))
	if r.status != 400 || r.errField("param") != "key" {
		t.Errorf("reusing a custom key: got %d %s; want 400 naming key", r.status, r.raw)
	}
}
