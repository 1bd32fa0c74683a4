package admin

import (
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

// TestAttackKeyListHostileParams: page and size values outside their
// ranges are 400s, the extremes that are allowed answer 200 with an empty
// page, and nothing is a 5xx.
func TestAttackKeyListHostileParams(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		e.newKey(obj())
	}
	for _, c := range []struct {
		query string
		want  int
	}{
		{"page=0", 400}, {"page=-1", 400}, {"page=abc", 400}, {"page=1.5", 400}, {"page=", 400},
		{"size=0", 400}, {"size=101", 400}, {"size=-5", 400}, {"size=abc", 400},
		{"page=9223372036854775807", 400}, {"page=99999999999999999999", 400},
		{"page=2147483648&size=100", 200}, {"page=2147483647&size=100", 200},
		{"page=1&page=2", 0}, {"size=1&size=100", 0},
		{"user_id=", 400}, {"team_id=", 400}, {"key_hash=", 0}, {"key_alias=", 400},
		{"key_hash=" + url.QueryEscape("sk-"), 200}, {"organization_id=x&size=100&page=2147483648", 200},
	} {
		r := e.call(testMaster, "GET", "/key/list?"+c.query, nil)
		if r.status >= 500 || c.want != 0 && r.status != c.want {
			t.Errorf("/key/list?%s: status %d (%s); want %d", c.query, r.status, r.raw, c.want)
		}
		if r.status == 200 && c.want == 200 {
			if toks, total, _ := listTokens(t, r); len(toks) != 0 && total != 3 {
				t.Errorf("/key/list?%s: %d keys, total %d", c.query, len(toks), total)
			}
		}
	}
}

// TestAttackKeyListPrefixUsers: users whose ids extend one another ("a",
// "a#b", "a#0", "a#") see only their own keys, in every filter, and the
// master's user_id filter selects exactly one user.
func TestAttackKeyListPrefixUsers(t *testing.T) {
	e := newEnv(t)
	ids := []string{"a", "a#b", "a#0", "a#", "a#2026"}
	e.must(testMaster, "POST", "/team/new", obj("team_id", "t#1"))
	e.must(testMaster, "POST", "/team/new", obj("team_id", "t"))
	secrets := map[string]string{}
	owned := map[string][]string{}
	for _, id := range ids {
		e.newUser(id, keys.RoleInternalUser, nil)
		for i := range 3 {
			body := obj("user_id", id)
			if i > 0 {
				body["team_id"] = []string{"t", "t#1"}[i%2]
			}
			s, tok := e.newKey(body)
			secrets[id] = s
			owned[id] = append(owned[id], tok)
		}
	}
	all := func(secret, query string) ([]string, int) {
		var got []string
		total := -1
		for page := 1; page < 20; page++ {
			toks, tot, _ := listTokens(t, e.must(secret, "GET", fmt.Sprintf("/key/list?size=2&page=%d%s", page, query), nil))
			if total != -1 && tot != total {
				t.Errorf("/key/list%s: total %d then %d", query, total, tot)
			}
			total = tot
			if len(toks) == 0 {
				break
			}
			got = append(got, toks...)
		}
		return got, total
	}
	for _, id := range ids {
		want := slices.Sorted(slices.Values(owned[id]))
		for _, q := range []string{"", "&user_id=" + url.QueryEscape(id)} {
			got, total := all(secrets[id], q)
			if slices.Sort(got); !slices.Equal(got, want) || total != len(want) {
				t.Errorf("%s's /key/list%s: %d keys total %d; want its %d", id, q, len(got), total, len(want))
			}
		}
		got, total := all(testMaster, "&user_id="+url.QueryEscape(id))
		if slices.Sort(got); !slices.Equal(got, want) || total != len(want) {
			t.Errorf("master /key/list?user_id=%s: %d keys total %d; want %d", id, len(got), total, len(want))
		}
		for _, other := range ids {
			if other == id {
				continue
			}
			r := e.call(secrets[id], "GET", "/key/list?user_id="+url.QueryEscape(other), nil)
			if r.status == 200 {
				if toks, _, _ := listTokens(t, r); len(toks) != 0 {
					t.Errorf("%s listed %s's keys", id, other)
				}
			}
		}
		// With a team: only own keys of that team.
		got, total = all(secrets[id], "&team_id="+url.QueryEscape("t#1"))
		if len(got) != 1 || total != 1 || !slices.Contains(owned[id], got[0]) {
			t.Errorf("%s's /key/list?team_id=t#1: %d keys total %d; want its 1", id, len(got), total)
		}
	}
	got, total := all(testMaster, "&team_id=t")
	if len(got) != len(ids) || total != len(ids) {
		t.Errorf("master team t: %d keys total %d; want %d", len(got), total, len(ids))
	}
}

// TestAttackKeyListWhileWriting: paging while keys are created and deleted
// never fails, never repeats a key within a page, and every page's keys
// belong to the filter.
func TestAttackKeyListWhileWriting(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice", keys.RoleInternalUser, nil)
	aliceKey, _ := e.newKey(obj("user_id", "alice"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer func() { close(stop); wg.Wait() }() // on a Fatalf too
	for w := range 2 {
		loop(&wg, stop, func(i int) {
			if t.Failed() {
				<-stop // one error is enough
				return
			}
			r, err := e.try(testMaster, "POST", "/key/generate", obj("user_id", "alice"))
			if err != nil || r.status != 200 {
				t.Errorf("generate: %v %d", err, r.status)
				return
			}
			if i%2 == w {
				tok, _ := r.body["token"].(string)
				if r, err := e.try(testMaster, "POST", "/key/delete", obj("keys", []string{tok})); err != nil || r.status != 200 {
					t.Errorf("delete: %v %d %s", err, r.status, r.raw)
				}
			}
		})
	}
	for range 40 {
		for _, secret := range []string{testMaster, aliceKey} {
			for page := 1; page <= 3; page++ {
				r, err := e.try(secret, "GET", fmt.Sprintf("/key/list?size=3&page=%d&user_id=alice&return_full_object=true", page), nil)
				if err != nil || r.status != 200 {
					t.Fatalf("list: %v %d %s", err, r.status, r.raw)
				}
				seen := map[string]bool{}
				for _, k := range r.body["keys"].([]any) {
					m := k.(map[string]any)
					tok, _ := m["token"].(string)
					if seen[tok] {
						t.Errorf("page %d lists %s twice", page, tok)
					}
					seen[tok] = true
					if m["user_id"] != "alice" {
						t.Errorf("page %d lists a key of %v", page, m["user_id"])
					}
				}
			}
		}
	}
}
