package keystest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// t0 has nanoseconds and a non-UTC zone on purpose: stores may drop both
// (see the package doc), and the suite must not depend on either surviving.
// It lies in the future so that grace periods built from it are unexpired:
// stores neither count nor carry over rotation records whose grace is over.
var t0 = time.Date(2125, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+1", 3600))

// at returns t0 plus n seconds, for CreatedAt values whose order is known.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func ptr[T any](v T) *T { return &v }

// names maps fixture tokens back to the names they were made from, so that
// failure messages say "k1" instead of 64 hex characters.
var names sync.Map

// token returns the stored token (SHA-256 hex, as keys.Hash) of the fixture
// secret called name.
func token(name string) string {
	tok := keys.Hash("sk-keystest-" + name)
	names.Store(tok, name)
	return tok
}

// label is the readable form of a token in messages.
func label(tok string) string {
	if n, ok := names.Load(tok); ok {
		return n.(string)
	}
	if len(tok) > 8 {
		return tok[:8]
	}
	return tok
}

func labels(toks []string) []string {
	out := make([]string, len(toks))
	for i, tok := range toks {
		out[i] = label(tok)
	}
	return out
}

func tokensOf(ks []*keys.Key) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.Token
	}
	return out
}

// metadata uses only values JSON can carry, nested, with a null, and with
// an integer written as an int: stores must return an equal JSON document.
func metadata(owner string) map[string]any {
	return map[string]any{
		"owner": owner,
		"n":     3,
		"ratio": 0.25,
		"on":    true,
		"none":  nil,
		"tags":  []any{"a", "b", 1.5},
		"quota": map[string]any{
			"daily":  10,
			"nested": map[string]any{"deep": []any{map[string]any{"x": "y"}}},
		},
	}
}

// limits sets every Limits field; SoftBudget and RPMLimit point at zero, and
// TPMLimit is above 2^53, so a store that passes numbers through float64
// fails.
func limits() keys.Limits {
	return keys.Limits{
		MaxBudget:           ptr(12.5),
		BudgetDuration:      "30d",
		SoftBudget:          ptr(0.0),
		TPMLimit:            ptr(int64(1<<53 + 1)),
		RPMLimit:            ptr(int64(0)),
		MaxParallelRequests: ptr(int64(4)),
	}
}

// fullUser returns a user with every field set. Each call returns new
// values, so two calls give independent but equal users.
func fullUser(id string) *keys.User {
	return &keys.User{
		UserID:    id,
		UserEmail: id + "@example.com",
		UserAlias: "Alias of " + id,
		UserRole:  keys.RoleInternalUser,
		Teams:     []string{"team-b", "team-a"},
		Models:    []string{"gpt-4o", "claude"},
		Metadata:  metadata(id),
		Blocked:   true,
		Spend:     0.1 + 0.2,
		Limits:    limits(),
		CreatedAt: at(0),
		UpdatedAt: at(1),
	}
}

// fullTeam returns a team with every field set, as fullUser.
func fullTeam(id string) *keys.Team {
	return &keys.Team{
		TeamID:                   id,
		TeamAlias:                "Alias of " + id,
		Models:                   []string{"gpt-4o"},
		Metadata:                 metadata(id),
		AllowedPassthroughRoutes: []string{"/v1/ocr", "/v1/chat"},
		Blocked:                  true,
		Spend:                    7.75,
		Limits:                   limits(),
		CreatedAt:                at(0),
		UpdatedAt:                at(2),
	}
}

// fullKey returns a current key with every field set except RotatedTo
// (which only RotateKey sets), as fullUser.
func fullKey(name string) *keys.Key {
	return &keys.Key{
		Token:                    token(name),
		TokenID:                  "tid-" + name,
		KeyName:                  keys.Abbrev("sk-keystest-" + name),
		KeyAlias:                 "alias-" + name,
		UserID:                   "alice",
		TeamID:                   "ml",
		Expires:                  ptr(at(86400)),
		Blocked:                  true,
		AllowedRoutes:            []string{"/v1/ocr", "/key/info"},
		AllowedPassthroughRoutes: []string{"/v1/ocr"},
		Models:                   []string{"gpt-4o"},
		Metadata:                 metadata(name),
		KeyType:                  "llm_api",
		Spend:                    1.0 / 3,
		Limits:                   limits(),
		CreatedBy:                "admin",
		UpdatedBy:                "admin2",
		CreatedAt:                at(0),
		UpdatedAt:                at(3),
	}
}

// key returns a key with only what listing needs: a token, owners and a
// creation time.
func key(name, userID, teamID string, created time.Time) *keys.Key {
	return &keys.Key{
		Token:     token(name),
		TokenID:   "tid-" + name,
		UserID:    userID,
		TeamID:    teamID,
		CreatedAt: created,
		UpdatedAt: created,
	}
}

// successor is what an admin passes to RotateKey: old's fields under a new
// token, with the same TokenID.
func successor(old *keys.Key, name string) *keys.Key {
	next := *old
	next.Token = token(name)
	next.KeyName = keys.Abbrev("sk-keystest-" + name)
	next.UpdatedAt = old.UpdatedAt.Add(time.Hour)
	next.RotatedTo = ""
	next.Version = 0 // env fills in the stored key's
	return &next
}

func mustCreateUser(t *testing.T, s keys.Store, u *keys.User) {
	t.Helper()
	noErr(t, "CreateUser("+u.UserID+")", s.CreateUser(ctx(t), u))
}

func mustCreateTeam(t *testing.T, s keys.Store, tm *keys.Team) {
	t.Helper()
	noErr(t, "CreateTeam("+tm.TeamID+")", s.CreateTeam(ctx(t), tm))
}

// mustCreateKey creates k, first creating its user and team (mustOwners)
// when they have no record yet.
func mustCreateKey(t *testing.T, s keys.Store, k *keys.Key) {
	t.Helper()
	mustOwners(t, s, k)
	noErr(t, "CreateKey("+label(k.Token)+")", s.CreateKey(ctx(t), k))
}

// mustOwners creates a plain record for the user and the team k names, for
// each that has none yet: a store refuses a key whose user or team does not
// exist. Tests that compare users or teams create them with fullUser and
// fullTeam first; those are left as they are.
func mustOwners(t *testing.T, s keys.Store, k *keys.Key) {
	t.Helper()
	if id := k.UserID; id != "" {
		_, err := s.GetUser(ctx(t), id)
		if errors.Is(err, keys.ErrNotFound) {
			err = s.CreateUser(ctx(t), &keys.User{UserID: id, UserRole: keys.RoleInternalUser, CreatedAt: at(0), UpdatedAt: at(0)})
			if errors.Is(err, keys.ErrExists) {
				err = nil // created meanwhile
			}
		}
		noErr(t, "creating user "+id+" for key "+label(k.Token), err)
	}
	if id := k.TeamID; id != "" {
		_, err := s.GetTeam(ctx(t), id)
		if errors.Is(err, keys.ErrNotFound) {
			err = s.CreateTeam(ctx(t), &keys.Team{TeamID: id, CreatedAt: at(0), UpdatedAt: at(0)})
			if errors.Is(err, keys.ErrExists) {
				err = nil
			}
		}
		noErr(t, "creating team "+id+" for key "+label(k.Token), err)
	}
}

func mustGetKey(t *testing.T, s keys.Store, tok string) *keys.Key {
	t.Helper()
	k, err := s.GetKey(ctx(t), tok)
	noErr(t, "GetKey("+label(tok)+")", err)
	if k == nil {
		t.Fatalf("GetKey(%s): got nil key and nil error; want a key", label(tok))
	}
	return k
}

func mustRotate(t *testing.T, s keys.Store, old string, next *keys.Key, grace *time.Time) {
	t.Helper()
	noErr(t, "RotateKey("+label(old)+" -> "+label(next.Token)+")", s.RotateKey(ctx(t), old, next, grace))
}

func mustList(t *testing.T, s keys.Store, f keys.KeyFilter) []*keys.Key {
	t.Helper()
	ks, err := s.ListKeys(ctx(t), f)
	noErr(t, "ListKeys", err)
	return ks
}

// wantGone checks that GetKey no longer finds tok, so it cannot
// authenticate.
func wantGone(t *testing.T, s keys.Store, tok string) {
	t.Helper()
	k, err := s.GetKey(ctx(t), tok)
	if err == nil {
		t.Errorf("GetKey(%s): got key (rotated_to %q); want ErrNotFound", label(tok), label(k.RotatedTo))
		return
	}
	wantErr(t, "GetKey("+label(tok)+")", err, keys.ErrNotFound)
}
