package keystest

import (
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// wantRotationRecord checks that tok is a rotation record pointing at to
// and expiring at until.
func wantRotationRecord(t *testing.T, s keys.Store, tok, to string, until time.Time) {
	t.Helper()
	r := mustGetKey(t, s, tok)
	if r.Token != tok {
		t.Errorf("GetKey(%s).Token: got %s; want %s", label(tok), label(r.Token), label(tok))
	}
	if r.RotatedTo != to {
		t.Errorf("GetKey(%s).RotatedTo: got %q; want %s", label(tok), label(r.RotatedTo), label(to))
	}
	if r.Expires == nil {
		t.Errorf("GetKey(%s).Expires: got nil; want %s", label(tok), until.Format(time.RFC3339Nano))
	} else {
		same(t, "GetKey("+label(tok)+").Expires", *r.Expires, until)
	}
}

func wantAliasAt(t *testing.T, s keys.Store, alias, tok string) {
	t.Helper()
	got, err := s.GetKeyByAlias(ctx(t), alias)
	noErr(t, "GetKeyByAlias("+alias+")", err)
	sameTokens(t, "GetKeyByAlias("+alias+")", []string{got.Token}, []string{tok})
}

func rotateTests() []test {
	return []test{
		{"rotating without grace moves the key to the new token and removes the old one", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustRotate(t, s, token("k1"), successor(fullKey("k1"), "k1b"), nil)
			wantGone(t, s, token("k1"))
			got := mustGetKey(t, s, token("k1b"))
			same(t, "GetKey(k1b)", got, successor(fullKey("k1"), "k1b"))
			if got.TokenID != "tid-k1" {
				t.Errorf("GetKey(k1b).TokenID: got %q; want %q", got.TokenID, "tid-k1")
			}
			wantAliasAt(t, s, "alias-k1", token("k1b"))
			sameTokens(t, "ListKeys(user alice)", tokensOf(mustList(t, s, keys.KeyFilter{UserID: "alice"})), []string{token("k1b")})
		}},
		{"rotating with grace leaves the old token as a rotation record", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			grace := at(7200)
			mustRotate(t, s, token("k1"), successor(fullKey("k1"), "k1b"), &grace)
			wantRotationRecord(t, s, token("k1"), token("k1b"), grace)
			same(t, "GetKey(k1b)", mustGetKey(t, s, token("k1b")), successor(fullKey("k1"), "k1b"))
			wantAliasAt(t, s, "alias-k1", token("k1b"))
		}},
		{"the alias moves with the key and is freed when the key is deleted", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustRotate(t, s, token("k1"), successor(fullKey("k1"), "k1b"), ptr(at(60)))
			taker := key("taker", "", "", at(1))
			taker.KeyAlias = "alias-k1"
			wantErr(t, "CreateKey with the rotated key's alias", s.CreateKey(ctx(t), taker), keys.ErrExists)
			noErr(t, "DeleteKey(k1b)", s.DeleteKey(ctx(t), token("k1b")))
			mustCreateKey(t, s, taker)
			wantAliasAt(t, s, "alias-k1", token("taker"))
		}},
		{"rotating may change the alias", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			next := successor(fullKey("k1"), "k1b")
			next.KeyAlias = "fresh"
			mustRotate(t, s, token("k1"), next, ptr(at(60)))
			wantAliasAt(t, s, "fresh", token("k1b"))
			_, err := s.GetKeyByAlias(ctx(t), "alias-k1")
			wantErr(t, "GetKeyByAlias(alias-k1) after rotating to a new alias", err, keys.ErrNotFound)
		}},
		{"rotating a missing key fails with ErrNotFound and stores nothing", func(t *testing.T, s keys.Store) {
			mustOwners(t, s, fullKey("ghost"))
			err := s.RotateKey(ctx(t), token("ghost"), successor(fullKey("ghost"), "ghost2"), ptr(at(60)))
			wantErr(t, "RotateKey(ghost)", err, keys.ErrNotFound)
			wantGone(t, s, token("ghost2"))
			wantGone(t, s, token("ghost"))
		}},
		{"rotating to a token that exists fails with ErrExists and changes nothing", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustCreateKey(t, s, fullKey("k2"))
			mustCreateKey(t, s, fullKey("k3"))
			mustRotate(t, s, token("k3"), successor(fullKey("k3"), "k3b"), ptr(at(60)))
			// Onto a current key, onto a rotation record, and onto itself.
			for _, target := range []string{"k2", "k3", "k1"} {
				next := successor(fullKey("k1"), target)
				for _, grace := range []*time.Time{nil, ptr(at(60))} {
					err := s.RotateKey(ctx(t), token("k1"), next, grace)
					wantErr(t, "RotateKey(k1 -> "+target+")", err, keys.ErrExists)
				}
			}
			same(t, "GetKey(k1)", mustGetKey(t, s, token("k1")), fullKey("k1"))
			same(t, "GetKey(k2)", mustGetKey(t, s, token("k2")), fullKey("k2"))
			wantRotationRecord(t, s, token("k3"), token("k3b"), at(60))
			wantAliasAt(t, s, "alias-k1", token("k1"))
			sameTokenSet(t, "ListKeys(all)", tokensOf(mustList(t, s, keys.KeyFilter{})),
				[]string{token("k1"), token("k2"), token("k3b")})
		}},
		{"rotating to an alias another key uses fails with ErrExists and changes nothing", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustCreateKey(t, s, fullKey("k2"))
			next := successor(fullKey("k1"), "k1b")
			next.KeyAlias = "alias-k2"
			wantErr(t, "RotateKey(k1) to k2's alias", s.RotateKey(ctx(t), token("k1"), next, ptr(at(60))), keys.ErrExists)
			wantGone(t, s, token("k1b"))
			same(t, "GetKey(k1)", mustGetKey(t, s, token("k1")), fullKey("k1"))
			wantAliasAt(t, s, "alias-k1", token("k1"))
			wantAliasAt(t, s, "alias-k2", token("k2"))
		}},
		{"a rotation record cannot be rotated or updated", func(t *testing.T, s keys.Store) {
			// Otherwise a grace secret could be turned back into a full
			// key that outlives its grace period.
			mustCreateKey(t, s, fullKey("k1"))
			mustRotate(t, s, token("k1"), successor(fullKey("k1"), "k1b"), ptr(at(60)))
			err := s.RotateKey(ctx(t), token("k1"), successor(fullKey("k1"), "k1c"), nil)
			wantErr(t, "RotateKey(k1) of a rotation record", err, keys.ErrNotFound)
			wantGone(t, s, token("k1c"))
			revived := fullKey("k1")
			revived.KeyAlias = ""
			revived.Expires = nil
			wantErr(t, "UpdateKey(k1) of a rotation record", s.UpdateKey(ctx(t), revived), keys.ErrNotFound)
			wantRotationRecord(t, s, token("k1"), token("k1b"), at(60))
		}},
		{"rotating again with grace re-points earlier rotation records at the newest token", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("a"))
			mustRotate(t, s, token("a"), successor(fullKey("a"), "b"), ptr(at(100)))
			mustRotate(t, s, token("b"), successor(fullKey("a"), "c"), ptr(at(200)))
			// Each old secret reaches the current record in one hop and
			// keeps its own expiry.
			wantRotationRecord(t, s, token("a"), token("c"), at(100))
			wantRotationRecord(t, s, token("b"), token("c"), at(200))
			sameTokens(t, "ListKeys(all)", tokensOf(mustList(t, s, keys.KeyFilter{})), []string{token("c")})
			noErr(t, "DeleteKey(c)", s.DeleteKey(ctx(t), token("c")))
			for _, n := range []string{"a", "b", "c"} {
				wantGone(t, s, token(n))
			}
		}},
		{"rotating again without grace removes earlier rotation records", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("a"))
			mustRotate(t, s, token("a"), successor(fullKey("a"), "b"), ptr(at(100)))
			mustRotate(t, s, token("b"), successor(fullKey("a"), "c"), nil)
			wantGone(t, s, token("a"))
			wantGone(t, s, token("b"))
			same(t, "GetKey(c)", mustGetKey(t, s, token("c")), successor(fullKey("a"), "c"))
		}},
		{"deleting a key removes rotation records pointing at it", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustCreateKey(t, s, fullKey("k2"))
			mustRotate(t, s, token("k1"), successor(fullKey("k1"), "k1b"), ptr(at(60)))
			mustRotate(t, s, token("k2"), successor(fullKey("k2"), "k2b"), ptr(at(60)))
			noErr(t, "DeleteKey(k1b)", s.DeleteKey(ctx(t), token("k1b")))
			wantGone(t, s, token("k1b"))
			wantGone(t, s, token("k1"))
			wantRotationRecord(t, s, token("k2"), token("k2b"), at(60))
		}},
		{"ending grace removes every old secret and leaves the key as it was", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("a"))
			mustCreateKey(t, s, fullKey("other"))
			mustRotate(t, s, token("a"), successor(fullKey("a"), "b"), ptr(at(100)))
			mustRotate(t, s, token("b"), successor(fullKey("a"), "c"), ptr(at(200)))
			mustRotate(t, s, token("other"), successor(fullKey("other"), "other2"), ptr(at(100)))
			ended, err := s.EndGrace(ctx(t), token("c"))
			noErr(t, "EndGrace(c)", err)
			sameTokenSet(t, "EndGrace(c)", ended, []string{token("a"), token("b")})
			wantGone(t, s, token("a"))
			wantGone(t, s, token("b"))
			same(t, "GetKey(c)", mustGetKey(t, s, token("c")), successor(fullKey("a"), "c"))
			wantRotationRecord(t, s, token("other"), token("other2"), at(100))
			// Again: nothing left to end. Rotating with grace afterwards
			// works as before, and deleting still finds the new record.
			ended, err = s.EndGrace(ctx(t), token("c"))
			noErr(t, "EndGrace(c) again", err)
			sameTokens(t, "EndGrace(c) again", ended, nil)
			mustRotate(t, s, token("c"), successor(fullKey("a"), "d"), ptr(at(300)))
			wantRotationRecord(t, s, token("c"), token("d"), at(300))
			noErr(t, "DeleteKey(d)", s.DeleteKey(ctx(t), token("d")))
			wantGone(t, s, token("c"))
		}},
		{"ending grace needs a current key", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("a"))
			mustRotate(t, s, token("a"), successor(fullKey("a"), "b"), ptr(at(100)))
			_, err := s.EndGrace(ctx(t), token("a"))
			wantErr(t, "EndGrace of a rotation record", err, keys.ErrNotFound)
			_, err = s.EndGrace(ctx(t), token("missing"))
			wantErr(t, "EndGrace of a missing key", err, keys.ErrNotFound)
			wantRotationRecord(t, s, token("a"), token("b"), at(100))
		}},
		{"deleting a rotation record ends the grace period and leaves the key", func(t *testing.T, s keys.Store) {
			mustCreateKey(t, s, fullKey("k1"))
			mustRotate(t, s, token("k1"), successor(fullKey("k1"), "k1b"), ptr(at(60)))
			noErr(t, "DeleteKey(k1) of the rotation record", s.DeleteKey(ctx(t), token("k1")))
			wantGone(t, s, token("k1"))
			same(t, "GetKey(k1b)", mustGetKey(t, s, token("k1b")), successor(fullKey("k1"), "k1b"))
			wantAliasAt(t, s, "alias-k1", token("k1b"))
			noErr(t, "DeleteKey(k1b)", s.DeleteKey(ctx(t), token("k1b")))
		}},
	}
}
