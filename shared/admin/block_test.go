package admin

import (
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

// TestBlockingUserOrTeamEndsGrace: blocking a key's user, or its team, ends
// the grace of the key's old secrets for good, as blocking the key does:
// after unblocking, the current secret works and the old ones do not.
// Another user's grace secret is untouched.
func TestBlockingUserOrTeamEndsGrace(t *testing.T) {
	for _, by := range []string{"user", "team"} {
		t.Run(by, func(t *testing.T) {
			e := newEnv(t)
			e.must(testMaster, "POST", "/team/new", obj("team_id", "ml"))
			e.newUser("u1", keys.RoleInternalUser, nil)
			e.newUser("u2", keys.RoleInternalUser, nil)
			first, _ := e.newKey(obj("user_id", "u1", "team_id", "ml"))
			second := e.must(testMaster, "POST", "/key/regenerate", obj("key", first, "grace_period", "1h")).str("key")
			current := e.must(testMaster, "POST", "/key/regenerate", obj("key", second, "grace_period", "1h")).str("key")
			bystander, _ := e.newKey(obj("user_id", "u2"))
			bystanderNew := e.must(testMaster, "POST", "/key/regenerate", obj("key", bystander, "grace_period", "1h")).str("key")
			for _, s := range []string{first, second, current, bystander, bystanderNew} {
				if r := e.call(s, "GET", "/key/info", nil); r.status != 200 {
					t.Fatalf("before the block: a secret answers %d; want 200", r.status)
				}
			}

			update, id := "/user/update", obj("user_id", "u1")
			if by == "team" {
				update, id = "/team/update", obj("team_id", "ml")
			}
			id["blocked"] = true
			e.must(testMaster, "POST", update, id)
			id["blocked"] = false
			e.must(testMaster, "POST", update, id)

			for i, old := range []string{first, second} {
				if r := e.call(old, "GET", "/key/info", nil); r.status != 401 {
					t.Errorf("old secret %d after its %s was blocked and unblocked: %d; want 401", i+1, by, r.status)
				}
			}
			if r := e.call(current, "GET", "/key/info", nil); r.status != 200 {
				t.Errorf("current secret after unblocking: %d; want 200", r.status)
			}
			if r := e.call(bystander, "GET", "/key/info", nil); r.status != 200 {
				t.Errorf("another user's grace secret: %d; want 200 (its grace is not this block's)", r.status)
			}
		})
	}
}
