package admin

import (
	"fmt"
	"slices"
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

// listTokens returns the tokens of one /key/list answer and its counts.
func listTokens(t *testing.T, r resp) (toks []string, total, pages int) {
	t.Helper()
	for _, k := range r.body["keys"].([]any) {
		toks = append(toks, k.(string))
	}
	return toks, int(r.body["total_count"].(float64)), int(r.body["total_pages"].(float64))
}

// TestKeyListPagesCoverEveryKeyOnce: walking /key/list page by page (read
// from the store a page at a time) yields every key exactly once, with the
// same total on every page, for the master key and for an internal user
// (who sees its own keys only, and whose total counts only those); the
// filters that name one key (key_hash, key_alias) and organization_id
// answer in the same shape.
func TestKeyListPagesCoverEveryKeyOnce(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	e.newUser("bob", keys.RoleInternalUser, nil)
	aliceKey, aliceToken := e.newKey(obj("user_id", "alice"))
	var all, alices []string
	var bobSecret, bobToken string
	for i := range 23 {
		owner := []string{"alice", "bob", ""}[i%3]
		body := obj("key_alias", fmt.Sprintf("k%02d", i))
		if owner != "" {
			body["user_id"] = owner
		}
		if i == 4 {
			body["organization_id"] = "org-x"
		}
		secret, tok := e.newKey(body)
		all = append(all, tok)
		if owner == "alice" {
			alices = append(alices, tok)
		}
		if i == 1 {
			bobSecret, bobToken = secret, tok
		}
	}
	all, alices = append(all, aliceToken), append(alices, aliceToken)

	walk := func(secret, query string, want []string) {
		t.Helper()
		var seen []string
		for page := 1; page <= 10; page++ {
			toks, total, pages := listTokens(t, e.must(secret, "GET", fmt.Sprintf("/key/list?size=5&page=%d%s", page, query), nil))
			if total != len(want) || pages != (len(want)+4)/5 {
				t.Errorf("/key/list page %d%s: total_count %d, total_pages %d; want %d, %d", page, query, total, pages, len(want), (len(want)+4)/5)
			}
			if page > pages && len(toks) != 0 {
				t.Errorf("/key/list page %d past the last (%d): got %d keys; want none", page, pages, len(toks))
			}
			seen = append(seen, toks...)
		}
		slices.Sort(seen)
		w := slices.Sorted(slices.Values(want))
		if !slices.Equal(seen, w) {
			t.Errorf("/key/list%s, every page: got %d tokens; want each of the %d keys once", query, len(seen), len(want))
		}
	}
	walk(testMaster, "", all)
	walk(testMaster, "&user_id=alice", alices)
	walk(aliceKey, "", alices)
	walk(aliceKey, "&user_id=alice", alices)

	one := func(secret, query string, want []string) {
		t.Helper()
		toks, total, _ := listTokens(t, e.must(secret, "GET", "/key/list?"+query, nil))
		if !slices.Equal(toks, want) || total != len(want) {
			t.Errorf("/key/list?%s: got %d keys (total_count %d); want %d", query, len(toks), total, len(want))
		}
	}
	one(testMaster, "key_hash="+bobToken, []string{bobToken})
	one(testMaster, "key_hash="+bobSecret, []string{bobToken})
	one(testMaster, "key_alias=k01", []string{bobToken})
	one(testMaster, "key_alias=k01&user_id=alice", nil)
	one(testMaster, "key_hash=not-a-hash", nil)
	one(testMaster, "organization_id=org-x", []string{all[4]})
	// Another user's key, by hash or alias, is not there for alice.
	one(aliceKey, "key_hash="+bobToken, nil)
	one(aliceKey, "key_alias=k01", nil)
	one(aliceKey, "key_alias=k00", []string{alices[0]})
}

// TestUserListPagesCoverEveryUserOnce: /user/list read from the store a
// page at a time yields every user once, in id order, with the same total
// on every page; role and user_ids filters answer in the same shape.
func TestUserListPagesCoverEveryUserOnce(t *testing.T) {
	e := newEnv(t)
	var want []string
	for i := range 13 {
		id := fmt.Sprintf("u%02d", i)
		role := keys.RoleInternalUser
		if i%4 == 0 {
			role = keys.RoleProxyAdminViewer
		}
		e.newUser(id, role, nil)
		want = append(want, id)
	}
	var seen []string
	for page := 1; page <= 5; page++ {
		r := e.must(testMaster, "GET", fmt.Sprintf("/user/list?page_size=4&page=%d", page), nil)
		if r.body["total"] != float64(13) || r.body["total_pages"] != float64(4) || r.body["page"] != float64(page) {
			t.Errorf("/user/list page %d: total %v, total_pages %v, page %v; want 13, 4, %d", page, r.body["total"], r.body["total_pages"], r.body["page"], page)
		}
		for _, u := range r.body["users"].([]any) {
			seen = append(seen, u.(map[string]any)["user_id"].(string))
		}
	}
	if !slices.Equal(seen, want) {
		t.Errorf("/user/list, every page: got %v; want %v", seen, want)
	}
	r := e.must(testMaster, "GET", "/user/list?role=proxy_admin_viewer&page_size=2&page=2", nil)
	if r.body["total"] != float64(4) || len(r.body["users"].([]any)) != 2 {
		t.Errorf("/user/list?role=proxy_admin_viewer page 2: got %s; want 2 of 4", r.raw)
	}
	r = e.must(testMaster, "GET", "/user/list?user_ids=u05,u01,nobody,u01", nil)
	if r.body["total"] != float64(2) {
		t.Errorf("/user/list?user_ids=u05,u01,nobody,u01: got %s; want u01 and u05", r.raw)
	} else if us := r.body["users"].([]any); us[0].(map[string]any)["user_id"] != "u01" {
		t.Errorf("/user/list?user_ids: got %v first; want u01 (id order)", us[0].(map[string]any)["user_id"])
	}
	r = e.must(testMaster, "GET", "/user/list?user_ids=u05,u04,u01&role=proxy_admin_viewer", nil)
	if us, _ := r.body["users"].([]any); r.body["total"] != float64(1) || len(us) != 1 || us[0].(map[string]any)["user_id"] != "u04" {
		t.Errorf("/user/list?user_ids=u05,u04,u01&role=proxy_admin_viewer: got %s; want u04 alone", r.raw)
	}
}
