package admin

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

// callers, in the order of a policyRow's want.
var callers = []string{"master", "admin", "viewer", "alice", "val", "service"}

// fixture is a populated store: one user per role, two teams, one key per
// user and a service key (no user, in team t1). alice is in t1; bob is
// the "other" internal user whose records nobody but admins may touch.
type fixture struct {
	*env
	secret map[string]string // caller → its key
	token  map[string]string // caller or "bob" → its key's token
	n      int
}

func newFixture(t *testing.T) *fixture {
	e := newEnv(t)
	f := &fixture{env: e, secret: map[string]string{"master": testMaster}, token: map[string]string{}}
	e.must(testMaster, "POST", "/team/new", map[string]any{"team_id": "t1"})
	e.must(testMaster, "POST", "/team/new", map[string]any{"team_id": "t2"})
	e.newUser("admin", keys.RoleProxyAdmin, nil)
	e.newUser("viewer", keys.RoleProxyAdminViewer, nil)
	e.newUser("alice", keys.RoleInternalUser, map[string]any{"teams": []string{"t1"}})
	e.newUser("bob", keys.RoleInternalUser, nil)
	e.newUser("val", keys.RoleInternalUserViewer, nil)
	for _, u := range []string{"admin", "viewer", "alice", "bob", "val"} {
		f.secret[u], f.token[u] = e.newKey(map[string]any{"user_id": u})
	}
	f.secret["service"], f.token["service"] = e.newKey(map[string]any{"team_id": "t1"})
	return f
}

// own is the user a caller acts on as "its own"; the master key has none
// and acts on bob's.
func (f *fixture) own(caller string) string {
	switch caller {
	case "master", "service":
		return "bob"
	}
	return caller
}

// ownToken is the caller's own key (bob's for the master key).
func (f *fixture) ownToken(caller string) string {
	if caller == "master" {
		return f.token["bob"]
	}
	return f.token[caller]
}

// freshKey creates a disposable key for owner ("" for none).
func (f *fixture) freshKey(owner string) string {
	body := map[string]any{}
	if owner != "" {
		body["user_id"] = owner
	}
	_, tok := f.newKey(body)
	return tok
}

// freshOwnKey is a disposable key of the caller's own (a service key for
// the service caller).
func (f *fixture) freshOwnKey(caller string) string {
	if caller == "service" {
		return f.freshKey("")
	}
	return f.freshKey(f.own(caller))
}

func (f *fixture) fresh(prefix string) string { f.n++; return fmt.Sprintf("%s-%d", prefix, f.n) }

type policyRow struct {
	name   string
	method string
	path   func(f *fixture, caller string) string
	body   func(f *fixture, caller string) any
	want   [6]int // master, admin, viewer, alice (internal_user), val (internal_user_viewer), service key
}

func fixed(p string) func(*fixture, string) string { return func(*fixture, string) string { return p } }

func noBody(*fixture, string) any { return nil }

func obj(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

const (
	ok  = http.StatusOK
	bad = http.StatusBadRequest
	no  = http.StatusForbidden
	// hid: the caller may use the route but not on this record, which is
	// answered exactly as a missing record (no enumeration).
	hid = http.StatusNotFound
)

var policyRows = []policyRow{
	{"user/new", "POST", fixed("/user/new"), func(f *fixture, _ string) any {
		return obj("user_id", f.fresh("u"), "auto_create_key", false)
	}, [6]int{ok, ok, no, no, no, no}},
	{"user/info self", "GET", fixed("/user/info"), noBody,
		[6]int{bad, ok, ok, ok, ok, no}},
	{"user/info own", "GET", func(f *fixture, c string) string { return "/user/info?user_id=" + f.own(c) }, noBody,
		[6]int{ok, ok, ok, ok, ok, no}},
	{"user/info other", "GET", fixed("/user/info?user_id=bob"), noBody,
		[6]int{ok, ok, ok, hid, hid, no}},
	{"user/update own alias", "POST", fixed("/user/update"), func(f *fixture, c string) any {
		return obj("user_id", f.own(c), "user_alias", "renamed")
	}, [6]int{ok, ok, no, ok, no, no}},
	{"user/update own budget", "POST", fixed("/user/update"), func(f *fixture, c string) any {
		return obj("user_id", f.own(c), "max_budget", 1000)
	}, [6]int{ok, ok, no, no, no, no}},
	{"user/update own role", "POST", fixed("/user/update"), func(f *fixture, c string) any {
		// Each caller "sets" the role it already has: still admin-only.
		role := map[string]keys.Role{"admin": keys.RoleProxyAdmin, "viewer": keys.RoleProxyAdminViewer, "val": keys.RoleInternalUserViewer}[c]
		if role == "" {
			role = keys.RoleInternalUser
		}
		return obj("user_id", f.own(c), "user_role", string(role))
	}, [6]int{ok, ok, no, no, no, no}},
	{"user/update other", "POST", fixed("/user/update"), func(f *fixture, c string) any {
		return obj("user_id", "bob", "user_alias", "bobby")
	}, [6]int{ok, ok, no, hid, no, no}},
	{"user/delete", "POST", fixed("/user/delete"), func(f *fixture, c string) any {
		id := f.fresh("doomed")
		f.newUser(id, keys.RoleInternalUser, nil)
		return obj("user_ids", []string{id})
	}, [6]int{ok, ok, no, no, no, no}},
	{"user/list", "GET", fixed("/user/list"), noBody,
		[6]int{ok, ok, ok, no, no, no}},

	{"key/generate", "POST", fixed("/key/generate"), func(*fixture, string) any { return obj() },
		[6]int{ok, ok, no, ok, no, no}},
	{"key/generate own user_id", "POST", fixed("/key/generate"), func(f *fixture, c string) any {
		return obj("user_id", f.own(c))
	}, [6]int{ok, ok, no, ok, no, no}},
	{"key/generate other user_id", "POST", fixed("/key/generate"), func(*fixture, string) any {
		return obj("user_id", "bob")
	}, [6]int{ok, ok, no, no, no, no}},
	{"key/generate team it is in", "POST", fixed("/key/generate"), func(*fixture, string) any {
		return obj("team_id", "t1")
	}, [6]int{ok, ok, no, ok, no, no}},
	{"key/generate team it is not in", "POST", fixed("/key/generate"), func(*fixture, string) any {
		return obj("team_id", "t2")
	}, [6]int{ok, ok, no, no, no, no}},
	{"key/generate with rpm_limit", "POST", fixed("/key/generate"), func(*fixture, string) any {
		return obj("rpm_limit", 5)
	}, [6]int{ok, ok, no, no, no, no}},
	{"key/generate with allowed_routes", "POST", fixed("/key/generate"), func(*fixture, string) any {
		return obj("allowed_routes", []string{"/v1"})
	}, [6]int{ok, ok, no, no, no, no}},
	{"key/info self", "GET", fixed("/key/info"), noBody,
		[6]int{bad, ok, ok, ok, ok, ok}},
	{"key/info own", "GET", func(f *fixture, c string) string { return "/key/info?key=" + f.ownToken(c) }, noBody,
		[6]int{ok, ok, ok, ok, ok, ok}},
	{"key/info other", "GET", func(f *fixture, c string) string { return "/key/info?key=" + f.token["bob"] }, noBody,
		[6]int{ok, ok, ok, hid, hid, hid}},
	{"key/update own", "POST", fixed("/key/update"), func(f *fixture, c string) any {
		return obj("key", f.freshOwnKey(c), "metadata", obj("note", "x"))
	}, [6]int{ok, ok, no, ok, no, no}},
	{"key/update own max_budget", "POST", fixed("/key/update"), func(f *fixture, c string) any {
		return obj("key", f.freshOwnKey(c), "max_budget", 50)
	}, [6]int{ok, ok, no, no, no, no}},
	{"key/update other", "POST", fixed("/key/update"), func(f *fixture, c string) any {
		return obj("key", f.freshKey("bob"), "metadata", obj("note", "x"))
	}, [6]int{ok, ok, no, hid, no, no}},
	{"key/delete own", "POST", fixed("/key/delete"), func(f *fixture, c string) any {
		return obj("keys", []string{f.freshOwnKey(c)})
	}, [6]int{ok, ok, no, ok, no, no}},
	{"key/delete other", "POST", fixed("/key/delete"), func(f *fixture, c string) any {
		return obj("keys", []string{f.freshKey("bob")})
	}, [6]int{ok, ok, no, hid, no, no}},
	{"key/list", "GET", fixed("/key/list"), noBody,
		[6]int{ok, ok, ok, ok, ok, no}},
	{"key/list other user", "GET", fixed("/key/list?user_id=bob"), noBody,
		[6]int{ok, ok, ok, hid, hid, no}},
	{"key/regenerate own", "POST", fixed("/key/regenerate"), func(f *fixture, c string) any {
		return obj("key", f.freshOwnKey(c))
	}, [6]int{ok, ok, no, ok, no, no}},
	{"key/regenerate other", "POST", fixed("/key/regenerate"), func(f *fixture, c string) any {
		return obj("key", f.freshKey("bob"))
	}, [6]int{ok, ok, no, hid, no, no}},
	{"key/{key}/regenerate own", "POST", func(f *fixture, c string) string {
		return "/key/" + f.freshOwnKey(c) + "/regenerate"
	}, noBody, [6]int{ok, ok, no, ok, no, no}},
	{"key/{key}/regenerate other", "POST", func(f *fixture, c string) string {
		return "/key/" + f.freshKey("bob") + "/regenerate"
	}, noBody, [6]int{ok, ok, no, hid, no, no}},
	{"key/block own", "POST", fixed("/key/block"), func(f *fixture, c string) any {
		return obj("key", f.freshOwnKey(c))
	}, [6]int{ok, ok, no, ok, no, no}},
	{"key/block other", "POST", fixed("/key/block"), func(f *fixture, c string) any {
		return obj("key", f.freshKey("bob"))
	}, [6]int{ok, ok, no, hid, no, no}},
	{"key/unblock own", "POST", fixed("/key/unblock"), func(f *fixture, c string) any {
		tok := f.freshOwnKey(c)
		f.must(testMaster, "POST", "/key/block", obj("key", tok))
		return obj("key", tok)
	}, [6]int{ok, ok, no, no, no, no}},
	{"key/update own blocked=false", "POST", fixed("/key/update"), func(f *fixture, c string) any {
		tok := f.freshOwnKey(c)
		f.must(testMaster, "POST", "/key/block", obj("key", tok))
		return obj("key", tok, "blocked", false)
	}, [6]int{ok, ok, no, no, no, no}},

	{"team/new", "POST", fixed("/team/new"), func(f *fixture, _ string) any {
		return obj("team_id", f.fresh("team"))
	}, [6]int{ok, ok, no, no, no, no}},
	{"team/info member", "GET", fixed("/team/info?team_id=t1"), noBody,
		[6]int{ok, ok, ok, ok, no, no}},
	{"team/info not member", "GET", fixed("/team/info?team_id=t2"), noBody,
		[6]int{ok, ok, ok, no, no, no}},
	{"team/update", "POST", fixed("/team/update"), func(*fixture, string) any {
		return obj("team_id", "t1", "team_alias", "first")
	}, [6]int{ok, ok, no, no, no, no}},
	{"team/delete", "POST", fixed("/team/delete"), func(f *fixture, _ string) any {
		id := f.fresh("doomed-team")
		f.must(testMaster, "POST", "/team/new", obj("team_id", id))
		return obj("team_ids", []string{id})
	}, [6]int{ok, ok, no, no, no, no}},
	{"spend/logs", "GET", fixed("/spend/logs"), noBody,
		[6]int{ok, ok, ok, ok, ok, ok}},
	{"global/spend/report", "GET", fixed("/global/spend/report?group_by=team"), noBody,
		[6]int{ok, ok, ok, no, no, no}},
	{"spend/daily by key", "GET", fixed("/spend/daily?group_by=key"), noBody,
		[6]int{ok, ok, ok, ok, ok, no}},
	{"spend/daily by team", "GET", fixed("/spend/daily?group_by=team"), noBody,
		[6]int{ok, ok, ok, no, no, no}},
	{"team/list", "GET", fixed("/team/list"), noBody,
		[6]int{ok, ok, ok, ok, ok, no}},
	// Everyone reads the endpoints; non-admins without targets (config_test.go).
	{"config/pass_through_endpoint", "GET", fixed("/config/pass_through_endpoint"), noBody,
		[6]int{ok, ok, ok, ok, ok, ok}},
}

// TestPolicy is each role × each admin route, on own and other's records.
func TestPolicy(t *testing.T) {
	f := newFixture(t)
	routes := map[string]bool{}
	for _, row := range policyRows {
		for i, caller := range callers {
			t.Run(row.name+"/"+caller, func(t *testing.T) {
				f.env.t = t
				path := row.path(f, caller)
				body := row.body(f, caller)
				r := f.call(f.secret[caller], row.method, path, body)
				if r.status != row.want[i] {
					t.Fatalf("%s %s as %s: got status %d (%s); want %d", row.method, path, caller, r.status, r.raw, row.want[i])
				}
				if r.status == http.StatusForbidden {
					if got := r.errField("type"); got != "permission_denied" {
						t.Errorf("error type: got %q; want permission_denied", got)
					}
					if r.errField("message") == "" || r.errField("code") != "403" {
						t.Errorf("403 envelope: got %s; want a message and code \"403\"", r.raw)
					}
				}
			})
		}
		routes[policy[opFor(row.method, row.path(f, "admin"))].route] = true
	}
	for o := op(0); o < numOps; o++ {
		if !routes[policy[o].route] {
			t.Errorf("route %s: got no policy rows; want every route covered", policy[o].route)
		}
	}
}

// opFor finds the operation a request path serves (for the coverage check).
func opFor(method, path string) op {
	h := New(Options{}).(*handler)
	p := path
	if i := indexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if rt, ok := h.routes[p]; ok {
		return rt.op
	}
	return opKeyRegenerate
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// TestPolicyTableComplete checks that every operation has a row and that
// viewers can never write.
func TestPolicyTableComplete(t *testing.T) {
	for o := op(0); o < numOps; o++ {
		rl := policy[o]
		if rl.route == "" {
			t.Errorf("op %d: got no policy row; want one", o)
		}
		if rl.scope[classAdmin] != all {
			t.Errorf("%s: got admin scope %d; want all", rl.route, rl.scope[classAdmin])
		}
		if rl.write && (rl.scope[classAdminViewer] != deny || rl.scope[classUserViewer] != deny) {
			t.Errorf("%s: got a viewer allowed to write; want deny", rl.route)
		}
	}
}

// TestInternalUserListsOnlyOwnKeys checks scoping inside a listing.
func TestInternalUserListsOnlyOwnKeys(t *testing.T) {
	f := newFixture(t)
	r := f.must(f.secret["alice"], "GET", "/key/list?return_full_object=true", nil)
	list, _ := r.body["keys"].([]any)
	if len(list) == 0 {
		t.Fatalf("alice's /key/list: got no keys; want her own (%s)", r.raw)
	}
	for _, k := range list {
		if uid := k.(map[string]any)["user_id"]; uid != "alice" {
			t.Errorf("alice's /key/list: got a key of user %v; want only alice's", uid)
		}
	}
	r = f.must(f.secret["viewer"], "GET", "/key/list", nil)
	if got := int(r.body["total_count"].(float64)); got != 6 {
		t.Errorf("viewer's /key/list total_count: got %d; want 6 (every key)", got)
	}
	// A team member sees the team but only its own keys in it.
	r = f.must(f.secret["alice"], "GET", "/team/info?team_id=t1", nil)
	if ks, _ := r.body["keys"].([]any); len(ks) != 0 {
		t.Errorf("alice's /team/info keys: got %d; want 0 (the service key in t1 is not hers)", len(ks))
	}
	r = f.must(f.secret["alice"], "GET", "/team/list", nil)
	if len(r.list) != 1 || r.list[0].(map[string]any)["team_id"] != "t1" {
		t.Errorf("alice's /team/list: got %s; want only t1", r.raw)
	}
}
