package admin

import (
	"net/http"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// TestAttackOldSecretShortensCurrentKeyExpiry shows that an old secret in
// its regenerate grace period can revoke the key's current secret: it may
// not block or delete its own key, but /key/update with a short
// duration is accepted (checkExpiry only refuses durations *past* the grace
// end), so the key — and with it the current secret — expires a second
// later. docs/admin-api.md: an old secret "may not /key/delete or /key/block
// its own key (that would revoke the current secret)". Whoever leaked the
// old secret (the reason for regenerating) locks out the rightful holder.
func TestAttackOldSecretShortensCurrentKeyExpiry(t *testing.T) {
	e := newEnv(t)
	e.newUser("u1", keys.RoleInternalUser, nil)
	old, _ := e.newKey(obj("user_id", "u1"))
	cur := e.must(testMaster, "POST", "/key/regenerate", obj("key", old, "grace_period", "1h")).str("key")

	r := e.call(old, "POST", "/key/update", obj("key", cur, "duration", "1s"))
	if r.status != http.StatusForbidden {
		t.Errorf("old secret shortening its own key's expiry: got %d %s; want 403", r.status, r.raw)
	}
	e.clock.add(2 * time.Second)
	if a := e.call(cur, "GET", "/key/info", nil); a.status != http.StatusOK {
		t.Errorf("the current secret after the old one set duration=1s: got %d; want 200 (the old secret revoked the current one)", a.status)
	}
}

// TestAttackOldSecretBlocksOwnUser shows that an old secret can lock out the
// holder of the current secret through the user record: /user/update
// {blocked: true} on its own user is accepted (checkFields refuses only
// blocked=false, and the old key-route guard did not apply), and a
// blocked user's keys — the current secret included — are refused by the
// gateway (auth.authorize: "the key's user is blocked") until an admin
// unblocks. Same rule as above: an old secret must not revoke the current
// secret.
func TestAttackOldSecretBlocksOwnUser(t *testing.T) {
	e := newEnv(t)
	e.newUser("u1", keys.RoleInternalUser, nil)
	old, _ := e.newKey(obj("user_id", "u1"))
	e.must(testMaster, "POST", "/key/regenerate", obj("key", old, "grace_period", "1h"))

	r := e.call(old, "POST", "/user/update", obj("user_id", "u1", "blocked", true))
	u, err := e.store.GetUser(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	if r.status == http.StatusOK || u.Blocked {
		t.Errorf("old secret /user/update blocked=true on its own user: got %d, user blocked=%v; want 403 and the user untouched (the current secret is now refused by the gateway)", r.status, u.Blocked)
	}
}

// TestAttackOldSecretMovesKeyToBlockedTeam shows a third way an old secret
// can take the key from the current secret's holder: /key/update moving the
// key to another team the user is in (canTeam passes) — for example a
// blocked team — which the current secret then inherits. Here team "jail"
// is blocked by an admin; the old secret moves its key there.
func TestAttackOldSecretMovesKeyToBlockedTeam(t *testing.T) {
	e := newEnv(t)
	e.must(testMaster, "POST", "/team/new", obj("team_id", "jail"))
	e.must(testMaster, "POST", "/team/update", obj("team_id", "jail", "blocked", true))
	e.newUser("u1", keys.RoleInternalUser, obj("teams", []string{"jail"}))
	old, tok := e.newKey(obj("user_id", "u1"))
	e.must(testMaster, "POST", "/key/regenerate", obj("key", old, "grace_period", "1h"))

	r := e.call(old, "POST", "/key/update", obj("key", tok, "team_id", "jail"))
	if r.status == http.StatusOK {
		t.Errorf("old secret moved its own key into blocked team %q (200 %s): the current secret is now refused as a member of a blocked team; want 403", "jail", r.raw)
	}
}

// TestAttackKeyAliasEnumeration shows that /key/update and /key/delete by
// key_alias tell an internal_user whether another user's key has that alias:
// a missing alias answers 404 `key with key_alias "x" not found` (param
// key_alias / key_aliases[0]) from storeErr, while an alias that exists but
// belongs to someone else answers 404 `key not found` (param key /
// key_aliases[0]) from canKey. docs/security.md promises a record the caller
// may not see answers exactly like a missing one.
func TestAttackKeyAliasEnumeration(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	e.newUser("bob", keys.RoleInternalUser, nil)
	alice, _ := e.newKey(obj("user_id", "alice"))
	e.newKey(obj("user_id", "bob", "key_alias", "bob-prod"))

	for _, c := range []struct {
		path         string
		exists, nope map[string]any
	}{
		{"/key/update", obj("key_alias", "bob-prod", "metadata", obj("x", 1)), obj("key_alias", "no-such-alias", "metadata", obj("x", 1))},
		{"/key/delete", obj("key_aliases", []string{"bob-prod"}), obj("key_aliases", []string{"no-such-alias"})},
	} {
		a := e.call(alice, "POST", c.path, c.exists)
		b := e.call(alice, "POST", c.path, c.nope)
		if a.status != b.status || a.errField("message") != b.errField("message") && !sameBut(a.errField("message"), b.errField("message"), "bob-prod", "no-such-alias") || a.errField("param") != b.errField("param") {
			t.Errorf("%s: another user's alias answers %d %s; a missing alias answers %d %s; want the same answer", c.path, a.status, a.raw, b.status, b.raw)
		}
	}
}

// sameBut reports whether a with x replaced by y equals b.
func sameBut(a, b, x, y string) bool {
	return len(a) > 0 && replaceAll(a, x, y) == b
}

func replaceAll(s, x, y string) string {
	out := ""
	for {
		i := indexOf(s, x)
		if i < 0 {
			return out + s
		}
		out += s[:i] + y
		s = s[i+len(x):]
	}
}

func indexOf(s, x string) int {
	for i := 0; i+len(x) <= len(s); i++ {
		if s[i:i+len(x)] == x {
			return i
		}
	}
	return -1
}

// TestAttackInvisibleCharactersInIDs shows that ids that render exactly like
// an existing one are accepted beside it, despite docs/admin-api.md
// ("Bounds": ids have "no invisible ones (zero-width spaces and joiners,
// bidirectional controls, the BOM, other format characters) — `ali\u200bce`
// cannot sit beside `alice`"). visibleID only rejects category Cf, spaces
// and a few Hangul fillers; invisible *nonspacing marks* (Mn) and
// variation selectors outside U+FE00..FE0F pass: U+034F COMBINING GRAPHEME
// JOINER, U+17B4 KHMER VOWEL INHERENT AQ, U+180B MONGOLIAN FREE VARIATION
// SELECTOR ONE, U+E0100 VARIATION SELECTOR-17. And ids are not normalized,
// so "alicé" (NFC, U+00E9) and "alice\u0301" (NFD) are two different users
// that look the same. An internal user or an admin reading /user/list,
// audit logs or /team/info members cannot tell them apart.
func TestAttackInvisibleCharactersInIDs(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	e.newUser("alic\u00e9", keys.RoleInternalUser, nil)
	e.newKey(obj("user_id", "alice", "key_alias", "alice"))
	e.newKey(obj("user_id", "alice", "key_alias", "alic\u00e9"))
	for _, id := range []string{
		"ali\u034fce",     // combining grapheme joiner
		"ali\u17b4ce",     // Khmer vowel inherent AQ (invisible)
		"ali\u180bce",     // Mongolian free variation selector
		"ali\U000E0100ce", // variation selector-17
		"alice\u0301",     // NFD of "alicé", which exists
	} {
		for _, field := range []string{"user_id", "key_alias"} {
			var r resp
			if field == "user_id" {
				r = e.call(testMaster, "POST", "/user/new", obj("user_id", id, "auto_create_key", false))
			} else {
				r = e.call(testMaster, "POST", "/key/generate", obj("user_id", "alice", "key_alias", id))
			}
			if r.status != http.StatusBadRequest || r.errField("param") != field {
				t.Errorf("%s %+q (renders like an existing id): got %d %s; want 400 naming %s", field, id, r.status, r.raw, field)
			}
		}
	}
}

// TestAttackAdminOldSecretRevokesCurrent: a guard against an old secret
// revoking its key's current secret that covered /key/delete and
// /key/block alone (now: authorize refuses every write from an old secret)
// was not enough. An old secret of a proxy_admin's key
// (still admin during its grace period) can delete the key by other routes:
// /user/delete of its own user (deletes every key the user owns, the
// current secret with them) or /team/delete of the key's team (deletes the
// team's keys); or disable it with /key/update {user_id: another user}
// (moves the key away, so the current secret now acts as that user) — all
// 200. docs/admin-api.md: an old secret "may not /key/delete or /key/block
// its own key (that would revoke the current secret)".
func TestAttackAdminOldSecretRevokesCurrent(t *testing.T) {
	for _, c := range []struct {
		name string
		path string
		body func(tok string) map[string]any
	}{
		{"delete its own user", "/user/delete", func(string) map[string]any { return obj("user_ids", []string{"boss"}) }},
		{"delete its key's team", "/team/delete", func(string) map[string]any { return obj("team_ids", []string{"ops"}) }},
		{"move its key to another user", "/key/update", func(tok string) map[string]any { return obj("key", tok, "user_id", "nobody") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.must(testMaster, "POST", "/team/new", obj("team_id", "ops"))
			e.newUser("boss", keys.RoleProxyAdmin, obj("teams", []string{"ops"}))
			e.newUser("nobody", keys.RoleInternalUserViewer, nil)
			old, tok := e.newKey(obj("user_id", "boss", "team_id", "ops"))
			cur := e.must(testMaster, "POST", "/key/regenerate", obj("key", old, "grace_period", "1h")).str("key")

			r := e.call(old, "POST", c.path, c.body(tok))
			after := e.call(cur, "GET", "/user/list", nil)
			if r.status == http.StatusOK && after.status != http.StatusOK {
				t.Errorf("old secret may %s (200); the current secret then gets %d on /user/list (was proxy_admin): the old secret revoked it; want 403", c.name, after.status)
			} else if r.status == http.StatusOK {
				t.Errorf("old secret may %s: got 200; want 403", c.name)
			}
		})
	}
}

// TestAttackOldSecretLaundersThroughMintedKey: a guard that only kept an
// old secret from /key/delete or /key/block of its own key was bypassed
// in two calls: the old secret may /key/generate (documented: the new key
// expires at the grace end), and the minted key is not an old secret, so it
// may block or delete any key of the same user — the rotated key included,
// and with it the current secret. The leaked old secret thereby locks out
// the holder of the new one, which is what the rule exists to prevent.
func TestAttackOldSecretLaundersThroughMintedKey(t *testing.T) {
	for _, path := range []string{"/key/block", "/key/delete"} {
		t.Run(path, func(t *testing.T) {
			e := newEnv(t)
			e.newUser("u1", keys.RoleInternalUser, nil)
			old, tok := e.newKey(obj("user_id", "u1"))
			cur := e.must(testMaster, "POST", "/key/regenerate", obj("key", old, "grace_period", "1h")).str("key")

			gen := e.call(old, "POST", "/key/generate", obj())
			if gen.status == http.StatusForbidden {
				return // an old secret mints nothing: no key to launder through
			}
			minted := gen.str("key")
			body := obj("key", tok)
			if path == "/key/delete" {
				body = obj("keys", []string{tok})
			}
			r := e.call(minted, "POST", path, body)
			if a := e.call(cur, "GET", "/key/info", nil); r.status == http.StatusOK && a.status != http.StatusOK {
				t.Errorf("a key minted by the old secret %s the rotated key (200); the current secret then gets %d: the old secret revoked it in two steps", path, a.status)
			}
		})
	}
}

// TestAttackEmailSquatting shows that an internal user may set its own
// user_email to any value, another user's included (user_email is not
// unique and not verified), and /user/update names users by user_email.
// Once alice copies bob's email, an admin's /user/update by that email no
// longer reaches bob (400 "matches 2 users"); had bob's record no email, or
// had bob changed his, the admin's change (a budget, a role) would land on
// alice. An internal user must not be able to make itself the target of
// admin writes meant for someone else.
func TestAttackEmailSquatting(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	e.newUser("bob", keys.RoleInternalUser, obj("user_email", "bob@corp.example"))
	alice, _ := e.newKey(obj("user_id", "alice"))

	e.call(alice, "POST", "/user/update", obj("user_id", "alice", "user_email", "bob@corp.example"))
	r := e.call(testMaster, "POST", "/user/update", obj("user_email", "bob@corp.example", "user_alias", "Bob"))
	if r.status != http.StatusOK || r.str("user_id") != "bob" {
		t.Errorf("admin /user/update by bob's email after alice copied it: got %d %s; want 200 on bob (alice's copy should have been refused)", r.status, r.raw)
	}
}
