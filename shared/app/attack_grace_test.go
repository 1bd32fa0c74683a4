package app

import (
	"strings"
	"testing"
)

// TestAttackGraceCachedOldSecretAfterOwnerBlock: a full gateway on bbolt
// with a long key cache. An old secret in its grace period is used (and so
// cached), its user (or team) is blocked and unblocked: the old secret
// must be refused at once, not served from the cache for key_cache_ttl.
func TestAttackGraceCachedOldSecretAfterOwnerBlock(t *testing.T) {
	up := newAIUpstream(t)
	cfg := strings.Replace(governanceConfig(up.URL), "key_cache_ttl: 0s", "key_cache_ttl: 60s", 1)
	gw := startGateway(t, cfg, nil).URL
	adminCall(t, gw, "POST", "/team/new", `{"team_id": "ml"}`)
	for _, by := range []string{"user", "team"} {
		uid := "u-" + by
		adminCall(t, gw, "POST", "/user/new", `{"user_id": "`+uid+`", "user_role": "internal_user", "auto_create_key": false}`)
		old := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "`+uid+`", "team_id": "ml"}`)["key"].(string)
		cur := adminCall(t, gw, "POST", "/key/regenerate", `{"key": "`+old+`", "grace_period": "1h"}`)["key"].(string)
		for _, s := range []string{old, cur} {
			if st, body := call(t, "GET", gw+"/key/info", s, ""); st != 200 {
				t.Fatalf("%s: before the block: %d %v", by, st, body)
			}
			if resp, body := do(t, "POST", gw+"/flat", s, `{}`); resp.StatusCode != 200 {
				t.Fatalf("%s: before the block, pass-through: %d %s", by, resp.StatusCode, body)
			}
		}
		path, id := "/user/update", `"user_id": "`+uid+`"`
		if by == "team" {
			path, id = "/team/update", `"team_id": "ml"`
		}
		adminCall(t, gw, "POST", path, `{`+id+`, "blocked": true}`)
		if st, _ := call(t, "GET", gw+"/key/info", old, ""); st == 200 {
			t.Errorf("%s: old secret during the block: 200", by)
		}
		adminCall(t, gw, "POST", path, `{`+id+`, "blocked": false}`)
		if st, _ := call(t, "GET", gw+"/key/info", old, ""); st != 401 {
			t.Errorf("%s: cached old secret after block+unblock, /key/info: %d; want 401", by, st)
		}
		if resp, _ := do(t, "POST", gw+"/flat", old, `{}`); resp.StatusCode != 401 {
			t.Errorf("%s: cached old secret after block+unblock, pass-through: %d; want 401", by, resp.StatusCode)
		}
		if st, _ := call(t, "GET", gw+"/key/info", cur, ""); st != 200 {
			t.Errorf("%s: current secret after unblock: %d; want 200", by, st)
		}
	}
}
