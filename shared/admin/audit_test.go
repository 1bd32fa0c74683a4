package admin

import (
	"strings"
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

// TestAudit: every mutation writes one "admin audit" line with actor,
// action and target id, and no log line ever holds a secret (a generated
// key, a custom key, a rejected key, or the master key).
func TestAudit(t *testing.T) {
	e := newEnv(t)
	var secrets []string
	keep := func(r resp) resp {
		if s := r.str("key"); strings.HasPrefix(s, "sk-") {
			secrets = append(secrets, s)
		}
		return r
	}

	keep(e.must(testMaster, "POST", "/team/new", obj("team_id", "t1")))
	u := keep(e.must(testMaster, "POST", "/user/new", obj("user_id", "alice", "teams", []string{"t1"})))
	alice := u.str("key")
	custom := "sk-" + strings.Repeat("c", 40)
	g := keep(e.must(alice, "POST", "/key/generate", obj("key", custom, "key_alias", "mine")))
	keep(e.must(alice, "POST", "/key/update", obj("key", custom, "metadata", obj("a", 1))))
	keep(e.must(alice, "POST", "/key/block", obj("key", custom)))
	keep(e.must(testMaster, "POST", "/key/unblock", obj("key", custom)))
	rg := keep(e.must(testMaster, "POST", "/key/regenerate", obj("key", custom, "grace_period", "10m")))
	keep(e.must(testMaster, "POST", "/key/delete", obj("keys", []string{rg.str("key")})))
	keep(e.must(testMaster, "POST", "/user/update", obj("user_id", "alice", "user_alias", "Al")))
	keep(e.must(testMaster, "POST", "/team/update", obj("team_id", "t1", "team_alias", "one")))
	// Failures with secrets in the request must not log them either.
	rejected := "sk-" + strings.Repeat("r", 30)
	e.call(alice, "POST", "/key/generate", obj("key", rejected, "max_budget", 10))
	e.call(testMaster, "POST", "/key/update", obj("key", rejected))
	e.call(testMaster, "GET", "/key/info?key="+rejected, nil)
	keep(e.must(testMaster, "POST", "/team/delete", obj("team_ids", []string{"t1"})))
	keep(e.must(testMaster, "POST", "/user/delete", obj("user_ids", []string{"alice"})))

	want := []struct{ actor, action, target string }{
		{"master key", "team.new", "t1"},
		{"master key", "user.new", "alice"},
		{"master key", "key.generate", keys.Abbrev(alice)},
		{"user alice", "key.generate", keys.Abbrev(custom)},
		{"user alice", "key.update", keys.Abbrev(custom)},
		{"user alice", "key.block", keys.Abbrev(custom)},
		{"master key", "key.unblock", keys.Abbrev(custom)},
		{"master key", "key.regenerate", keys.Abbrev(rg.str("key"))},
		{"master key", "key.delete", keys.Abbrev(rg.str("key"))},
		{"master key", "user.update", "alice"},
		{"master key", "team.update", "t1"},
		{"master key", "team.delete", "t1"},
		{"master key", "user.delete", "alice"},
	}
	lines := e.auditLines()
	if len(lines) != len(want) {
		t.Errorf("audit lines: got %d; want %d:\n%s", len(lines), len(want), e.logs.String())
	}
	for i := range min(len(lines), len(want)) {
		l, w := lines[i], want[i]
		if l["actor"] != w.actor || l["action"] != w.action || l["target"] != w.target {
			t.Errorf("audit line %d: got actor=%v action=%v target=%v; want %q %q %q", i, l["actor"], l["action"], l["target"], w.actor, w.action, w.target)
		}
		if l["level"] != "INFO" {
			t.Errorf("audit line %d level: got %v; want INFO", i, l["level"])
		}
	}
	if _, ok := lines[3]["token_prefix"]; !ok {
		t.Errorf("key audit line: got %v; want a token_prefix", lines[3])
	}
	if g.str("key") != custom {
		t.Fatalf("custom key: got %q back; want the custom value", g.str("key"))
	}
	logs := e.logs.String()
	for _, s := range append(secrets, testMaster, rejected, custom) {
		if strings.Contains(logs, s) {
			t.Errorf("logs: got secret %s in a log line; want only key_name forms", keys.Abbrev(s))
		}
	}
	if len(secrets) < 3 {
		t.Errorf("secrets checked: got %d; want the created keys", len(secrets))
	}
}

// TestReadsAreNotAudited: reads write no audit line.
func TestReadsAreNotAudited(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/key/list", "/user/list", "/team/list"} {
		e.must(testMaster, "GET", p, nil)
	}
	if n := len(e.auditLines()); n != 0 {
		t.Errorf("audit lines after reads: got %d; want 0", n)
	}
}

// TestInvalidation: user and team changes purge the whole cache; key
// changes purge the key's token.
func TestInvalidation(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	_, tok := e.newKey(obj("user_id", "alice"))
	for _, c := range []struct {
		path string
		body map[string]any
		all  bool
	}{
		{"/user/update", obj("user_id", "alice", "blocked", true), true},
		{"/team/new", obj("team_id", "t"), false},
		{"/team/update", obj("team_id", "t", "blocked", true), true},
		{"/key/block", obj("key", tok), false},
		{"/key/update", obj("key", tok, "blocked", false), false},
	} {
		e.resetPurged()
		e.must(testMaster, "POST", c.path, c.body)
		if got := e.purgedAll(); got != c.all {
			t.Errorf("%s: got full purge %v; want %v", c.path, got, c.all)
		}
		if !c.all && c.path != "/team/new" && !e.purgedToken(tok) {
			t.Errorf("%s: got no purge of the key's token; want one", c.path)
		}
	}
}

// TestErrorsNeverEchoSecrets: error messages (which the gateway's access
// log records) never repeat a key, even when the key is in the path or used
// as a field name.
func TestErrorsNeverEchoSecrets(t *testing.T) {
	e := newEnv(t)
	secret, _ := e.newKey(obj())
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/key/" + secret + "/regenerate", nil},
		{"POST", "/key/" + secret + "/regenerat", nil},
		{"POST", "/key/generate", obj(secret, true)},
		{"GET", "/key/info?" + secret + "=1", nil},
		{"POST", "/key/update", obj("key", secret+"x")},
		{"POST", "/key/delete", obj("keys", []string{secret + "x"})},
	} {
		r := e.call(testMaster, c.method, c.path, c.body)
		if r.status < 400 {
			t.Errorf("%s %s: got %d; want an error", c.method, keys.Abbrev(secret), r.status)
		}
		if strings.Contains(r.raw, secret) {
			t.Errorf("%s …%s: got the key in the error body %s; want it redacted", c.method, c.path[len(c.path)-5:], strings.ReplaceAll(r.raw, secret, "<secret>"))
		}
	}
	if strings.Contains(e.logs.String(), secret) {
		t.Errorf("logs: got the key; want it never logged")
	}
}
