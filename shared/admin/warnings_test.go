package admin

import (
	"strings"
	"testing"
)

// TestUnenforcedFieldsWarn: a write that sets a field Keyway stores without
// enforcing answers with keyway_warnings naming it; enforced fields do not.
func TestUnenforcedFieldsWarn(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		path, body string
		want       []string // field names warned about, in order
	}{
		{"/key/generate", `{"models": ["gpt-4o"], "tags": ["a"], "rpm_limit": 5}`, []string{"models", "tags"}},
		{"/key/generate", `{"max_budget": 1, "budget_duration": "1d", "allowed_routes": ["/v1"]}`, nil},
		{"/key/generate", `{"models": [], "tags": null}`, nil},
		{"/user/new", `{"user_id": "w1", "spend": 5}`, []string{"spend"}},
		{"/team/new", `{"team_id": "w1", "models": ["x"]}`, []string{"models"}},
		{"/key/generate", `{"key_type": "read_only"}`, []string{"key_type"}},
		{"/team/new", `{"team_id": "w2", "members_with_roles": [{"role": "admin", "user_id": "w1"}]}`, []string{"members_with_roles"}},
	}
	for _, tt := range tests {
		r := e.call(testMaster, "POST", tt.path, tt.body)
		if r.status != 200 {
			t.Fatalf("%s %s: %d %s", tt.path, tt.body, r.status, r.raw)
		}
		got, _ := r.body[WarningsField].([]any)
		var names []string
		for _, w := range got {
			names = append(names, strings.Fields(w.(string))[0])
		}
		if strings.Join(names, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s %s: warned about %v; want %v", tt.path, tt.body, names, tt.want)
		}
	}
}

// TestSpendCannotBeSet: spend in a request warns and changes nothing; the
// spend shown is the ledger's.
func TestSpendCannotBeSet(t *testing.T) {
	e := newEnv(t)
	secret, _ := e.newKey(map[string]any{})
	r := e.call(testMaster, "POST", "/key/update", map[string]any{"key": secret, "spend": 5})
	if r.status != 200 || r.body["spend"] != 0.0 || r.body[WarningsField] == nil {
		t.Fatalf("/key/update spend 5: %d %s; want 200, spend 0 and a warning", r.status, r.raw)
	}
	info := e.call(testMaster, "GET", "/key/info?key="+secret, nil)
	if got := info.body["info"].(map[string]any)["spend"]; got != 0.0 {
		t.Errorf("/key/info spend after setting 5: %v; want 0", got)
	}
}
