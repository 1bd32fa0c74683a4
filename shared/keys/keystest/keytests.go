package keystest

import (
	"testing"

	"github.com/keywaygw/keyway/shared/keys"
)

func keyTests() []test {
	return []test{
		{"a created key reads back with every field", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			same(t, "GetKey(k1)", mustGetKey(t, s, token("k1")), fullKey("k1"))
		}},
		{"a key with only a token reads back with no expiry and no limits", func(t *testing.T, s keys.Store) {
			mk := func() *keys.Key { return &keys.Key{Token: token("bare"), CreatedAt: at(0)} }
			mustCreateKey(t, s, mk())
			same(t, "GetKey(bare)", mustGetKey(t, s, token("bare")), mk())
		}},
		{"creating a key with a taken token fails with ErrExists and keeps the first", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			second := key("k1", "bob", "", at(5))
			mustOwners(t, s, second)
			wantErr(t, "second CreateKey(k1)", s.CreateKey(ctx(t), second), keys.ErrExists)
			same(t, "GetKey(k1) after the refused create", mustGetKey(t, s, token("k1")), fullKey("k1"))
		}},
		{"creating a key with a taken alias fails with ErrExists and stores nothing", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			k2 := key("k2", "bob", "", at(5))
			k2.KeyAlias = fullKey("k1").KeyAlias
			mustOwners(t, s, k2)
			wantErr(t, "CreateKey(k2) with k1's alias", s.CreateKey(ctx(t), k2), keys.ErrExists)
			wantGone(t, s, token("k2"))
			got, err := s.GetKeyByAlias(ctx(t), k2.KeyAlias)
			noErr(t, "GetKeyByAlias", err)
			sameTokens(t, "GetKeyByAlias after the refused create", []string{got.Token}, []string{token("k1")})
			sameTokens(t, "ListKeys(bob)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "bob"})), nil)
		}},
		{"keys without an alias never conflict over it", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, key("k1", "", "", at(1)))
			mustCreateKey(t, s, key("k2", "", "", at(2)))
			sameTokens(t, "ListKeys", tokensOf(mustList(t, s, keys.KeyFilter{})), []string{token("k1"), token("k2")})
		}},
		{"getting a missing key fails with ErrNotFound", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			_, err := s.GetKey(ctx(t), token("missing"))
			wantErr(t, "GetKey(missing)", err, keys.ErrNotFound)
		}},
		{"a key is found by its alias", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustCreateKey(t, s, fullKey("k2"))
			got, err := s.GetKeyByAlias(ctx(t), "alias-k2")
			noErr(t, "GetKeyByAlias(alias-k2)", err)
			same(t, "GetKeyByAlias(alias-k2)", got, fullKey("k2"))
		}},
		{"looking up an unknown or empty alias fails with ErrNotFound", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, key("noalias", "", "", at(1)))
			mustCreateKey(t, s, fullKey("k1"))
			for _, alias := range []string{"", "alias-nobody", "ALIAS-K1"} {
				_, err := s.GetKeyByAlias(ctx(t), alias)
				wantErr(t, "GetKeyByAlias("+alias+")", err, keys.ErrNotFound)
			}
		}},
		{"updating a key replaces every field", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mk := func() *keys.Key {
				return &keys.Key{
					Token:     token("k1"),
					TokenID:   "tid-k1",
					KeyName:   "renamed",
					KeyAlias:  "new-alias",
					UserID:    "bob",
					Models:    []string{"m"},
					Metadata:  map[string]any{"k": "v"},
					Limits:    keys.Limits{MaxParallelRequests: ptr(int64(0))},
					CreatedAt: at(0),
					UpdatedAt: at(9),
				}
			}
			mustOwners(t, s, mk())
			noErr(t, "UpdateKey(k1)", s.UpdateKey(ctx(t), mk()))
			same(t, "GetKey(k1) after update", mustGetKey(t, s, token("k1")), mk())
		}},
		{"updating a missing key fails with ErrNotFound and creates nothing", func(t *testing.T, s keys.Store) {
			mustOwners(t, s, fullKey("ghost"))
			wantErr(t, "UpdateKey(ghost)", s.UpdateKey(ctx(t), fullKey("ghost")), keys.ErrNotFound)
			wantGone(t, s, token("ghost"))
			_, err := s.GetKeyByAlias(ctx(t), "alias-ghost")
			wantErr(t, "GetKeyByAlias(alias-ghost) after the refused update", err, keys.ErrNotFound)
		}},
		{"updating a key to an alias in use fails with ErrExists and changes nothing", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustCreateKey(t, s, fullKey("k2"))
			k2 := fullKey("k2")
			k2.KeyAlias = "alias-k1"
			k2.KeyName = "changed"
			wantErr(t, "UpdateKey(k2) to k1's alias", s.UpdateKey(ctx(t), k2), keys.ErrExists)
			same(t, "GetKey(k2) after the refused update", mustGetKey(t, s, token("k2")), fullKey("k2"))
			for alias, owner := range map[string]string{"alias-k1": "k1", "alias-k2": "k2"} {
				got, err := s.GetKeyByAlias(ctx(t), alias)
				noErr(t, "GetKeyByAlias("+alias+")", err)
				sameTokens(t, "GetKeyByAlias("+alias+")", []string{got.Token}, []string{token(owner)})
			}
		}},
		{"updating a key may keep its own alias", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			k1 := fullKey("k1")
			k1.Blocked = false
			noErr(t, "UpdateKey(k1) with its own alias", s.UpdateKey(ctx(t), k1))
			got, err := s.GetKeyByAlias(ctx(t), "alias-k1")
			noErr(t, "GetKeyByAlias(alias-k1)", err)
			if got.Blocked {
				t.Errorf("GetKeyByAlias(alias-k1).Blocked: got true; want false")
			}
		}},
		{"an alias freed by an update can be used again", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			k1 := fullKey("k1")
			k1.KeyAlias = ""
			noErr(t, "UpdateKey(k1) dropping its alias", s.UpdateKey(ctx(t), k1))
			_, err := s.GetKeyByAlias(ctx(t), "alias-k1")
			wantErr(t, "GetKeyByAlias(alias-k1) after the update", err, keys.ErrNotFound)
			k2 := key("k2", "", "", at(1))
			k2.KeyAlias = "alias-k1"
			mustCreateKey(t, s, k2)
			// And an alias changed away from is freed as well.
			k2.KeyAlias = "renamed"
			noErr(t, "UpdateKey(k2) to a new alias", s.UpdateKey(ctx(t), k2))
			k3 := key("k3", "", "", at(2))
			k3.KeyAlias = "alias-k1"
			mustCreateKey(t, s, k3)
			got, err := s.GetKeyByAlias(ctx(t), "alias-k1")
			noErr(t, "GetKeyByAlias(alias-k1)", err)
			sameTokens(t, "GetKeyByAlias(alias-k1)", []string{got.Token}, []string{token("k3")})
		}},
		{"an alias freed by deleting its key can be used again", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			noErr(t, "DeleteKey(k1)", s.DeleteKey(ctx(t), token("k1")))
			k2 := key("k2", "", "", at(1))
			k2.KeyAlias = "alias-k1"
			mustCreateKey(t, s, k2)
			got, err := s.GetKeyByAlias(ctx(t), "alias-k1")
			noErr(t, "GetKeyByAlias(alias-k1)", err)
			sameTokens(t, "GetKeyByAlias(alias-k1)", []string{got.Token}, []string{token("k2")})
		}},
		{"updating a key's user and team moves it between listings", func(t *testing.T, s keys.Store) {
			k := key("k1", "alice", "ml", at(1))
			mustCreateKey(t, s, k)
			k.UserID, k.TeamID = "bob", "ops"
			mustOwners(t, s, k)
			noErr(t, "UpdateKey(k1)", s.UpdateKey(ctx(t), k))
			for _, c := range []struct {
				f    keys.KeyFilter
				want []string
			}{
				{keys.KeyFilter{UserID: "alice"}, nil},
				{keys.KeyFilter{TeamID: "ml"}, nil},
				{keys.KeyFilter{UserID: "bob"}, []string{token("k1")}},
				{keys.KeyFilter{TeamID: "ops"}, []string{token("k1")}},
				{keys.KeyFilter{UserID: "bob", TeamID: "ops"}, []string{token("k1")}},
			} {
				sameTokens(t, filterName(c.f), tokensOf(mustList(t, s, c.f)), c.want)
			}
			// Clearing the owners makes it a service key.
			k.UserID, k.TeamID = "", ""
			noErr(t, "UpdateKey(k1) clearing owners", s.UpdateKey(ctx(t), k))
			sameTokens(t, "ListKeys(user bob)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "bob"})), nil)
			sameTokens(t, "ListKeys(team ops)", tokensOf(mustList(t, s, keys.KeyFilter{TeamID: "ops"})), nil)
			sameTokens(t, "ListKeys(all)", tokensOf(mustList(t, s, keys.KeyFilter{})), []string{token("k1")})
		}},
		{"a deleted key is gone from gets, alias lookups and lists", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustCreateKey(t, s, fullKey("k2"))
			noErr(t, "DeleteKey(k1)", s.DeleteKey(ctx(t), token("k1")))
			wantGone(t, s, token("k1"))
			_, err := s.GetKeyByAlias(ctx(t), "alias-k1")
			wantErr(t, "GetKeyByAlias(alias-k1)", err, keys.ErrNotFound)
			for _, f := range []keys.KeyFilter{{}, {UserID: "alice"}, {TeamID: "ml"}, {UserID: "alice", TeamID: "ml"}} {
				sameTokens(t, filterName(f), tokensOf(mustList(t, s, f)), []string{token("k2")})
			}
		}},
		{"deleting a missing key fails with ErrNotFound", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			wantErr(t, "DeleteKey(missing)", s.DeleteKey(ctx(t), token("missing")), keys.ErrNotFound)
			noErr(t, "DeleteKey(k1)", s.DeleteKey(ctx(t), token("k1")))
			wantErr(t, "second DeleteKey(k1)", s.DeleteKey(ctx(t), token("k1")), keys.ErrNotFound)
		}},
	}
}
