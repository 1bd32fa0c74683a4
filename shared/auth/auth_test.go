package auth

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/boltstore"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/route"
)

const master = "sk-master-0123456789abcdefghij"

// fixture is a real bolt store with a user, a team and some keys.
type fixture struct {
	store   *boltstore.Store
	secrets map[string]string // name → plaintext
	now     time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{store: st, secrets: map[string]string{}, now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	for _, u := range []*keys.User{
		{UserID: "alice", UserRole: keys.RoleInternalUser},
		{UserID: "viewer", UserRole: keys.RoleInternalUserViewer},
		{UserID: "blocked-user", UserRole: keys.RoleInternalUser, Blocked: true},
		{UserID: "admin", UserRole: keys.RoleProxyAdmin},
	} {
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, tm := range []*keys.Team{
		{TeamID: "team-a"},
		{TeamID: "team-blocked", Blocked: true},
		{TeamID: "team-ocr-only", AllowedPassthroughRoutes: []string{"/v1/ocr"}},
	} {
		if err := st.CreateTeam(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	past := f.now.Add(-time.Minute)
	f.addKey(t, "alice", &keys.Key{UserID: "alice"})
	f.addKey(t, "viewer", &keys.Key{UserID: "viewer"})
	f.addKey(t, "admin", &keys.Key{UserID: "admin"})
	f.addKey(t, "team-only", &keys.Key{TeamID: "team-a"})
	f.addKey(t, "service", &keys.Key{})
	f.addKey(t, "expired", &keys.Key{UserID: "alice", Expires: &past})
	f.addKey(t, "blocked", &keys.Key{UserID: "alice", Blocked: true})
	f.addKey(t, "blocked-user", &keys.Key{UserID: "blocked-user"})
	f.addKey(t, "blocked-team", &keys.Key{TeamID: "team-blocked"})
	f.addKey(t, "team-ocr-only", &keys.Key{TeamID: "team-ocr-only"})
	f.addKey(t, "routes-ocr", &keys.Key{UserID: "alice", AllowedRoutes: []string{"/v1/ocr"}})
	f.addKey(t, "routes-group", &keys.Key{UserID: "alice", AllowedRoutes: []string{"llm_api_routes"}})
	f.addKey(t, "pt-chat", &keys.Key{UserID: "alice", AllowedPassthroughRoutes: []string{"/v1/chat"}})
	f.addKey(t, "routes-admin", &keys.Key{UserID: "alice", AllowedRoutes: []string{"/v1/ocr", "/key/info"}})
	return f
}

func (f *fixture) addKey(t *testing.T, name string, k *keys.Key) {
	t.Helper()
	secret, err := keys.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	k.Token = keys.Hash(secret)
	k.TokenID = k.Token
	k.KeyName = keys.Abbrev(secret)
	k.CreatedAt = f.now
	if err := f.store.CreateKey(context.Background(), k); err != nil {
		t.Fatalf("creating key %s: %v", name, err)
	}
	f.secrets[name] = secret
}

func (f *fixture) authenticator(cache *Cache) *Authenticator {
	a := NewAuthenticator(f.store, cache, nil)
	a.now = func() time.Time { return f.now }
	return a
}

func bearer(secret string) http.Header {
	h := http.Header{}
	if secret != "" {
		h.Set("Authorization", "Bearer "+secret)
	}
	return h
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	a := f.authenticator(nil)
	tests := []struct {
		name     string
		header   http.Header
		kind     Kind
		role     keys.Role
		status   int
		errType  string
		userID   string
		teamID   string
		withUser bool
	}{
		{name: "no credential is anonymous", header: http.Header{}, kind: Anonymous},
		{name: "master key", header: bearer(master), kind: Master, role: keys.RoleProxyAdmin},
		{name: "user key takes the user's role", header: bearer(f.secrets["alice"]), kind: VirtualKey, role: keys.RoleInternalUser, userID: "alice", withUser: true},
		{name: "admin user's key", header: bearer(f.secrets["admin"]), kind: VirtualKey, role: keys.RoleProxyAdmin, userID: "admin", withUser: true},
		{name: "team key without user", header: bearer(f.secrets["team-only"]), kind: VirtualKey, role: keys.RoleInternalUser, teamID: "team-a"},
		{name: "service key", header: bearer(f.secrets["service"]), kind: VirtualKey, role: keys.RoleInternalUser},
		{name: "unknown key", header: bearer("sk-not-a-real-key-0000000000000000"), status: 401, errType: apierr.TypeAuth},
		{name: "not an sk- key", header: bearer("hello"), status: 401, errType: apierr.TypeAuth},
		{name: "expired key", header: bearer(f.secrets["expired"]), status: 401, errType: apierr.TypeExpiredKey},
		{name: "x-api-key", header: http.Header{"X-Api-Key": {f.secrets["alice"]}}, kind: VirtualKey, role: keys.RoleInternalUser, userID: "alice", withUser: true},
		{name: "x-litellm-api-key wins over Authorization", header: http.Header{"X-Litellm-Api-Key": {f.secrets["alice"]}, "Authorization": {"Bearer sk-upstream-thing-that-is-not-ours"}}, kind: VirtualKey, role: keys.RoleInternalUser, userID: "alice", withUser: true},
		{name: "bare Authorization value", header: http.Header{"Authorization": {f.secrets["alice"]}}, kind: VirtualKey, role: keys.RoleInternalUser, userID: "alice", withUser: true},
		{name: "Basic auth is not a key", header: http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, kind: Anonymous},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), tc.header, master)
			if tc.status != 0 {
				if err == nil {
					t.Fatalf("got principal %+v; want error %d", p, tc.status)
				}
				if err.Status != tc.status || err.Type != tc.errType {
					t.Errorf("got %d %s; want %d %s", err.Status, err.Type, tc.status, tc.errType)
				}
				for _, s := range f.secrets {
					if strings.Contains(err.Message, s) {
						t.Errorf("error message %q contains a key", err.Message)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want a principal", err)
			}
			if p.Kind != tc.kind || p.Role != tc.role {
				t.Errorf("got kind %v role %q; want kind %v role %q", p.Kind, p.Role, tc.kind, tc.role)
			}
			if p.UserID() != tc.userID {
				t.Errorf("got user %q; want %q", p.UserID(), tc.userID)
			}
			if (p.User != nil) != tc.withUser {
				t.Errorf("got user record %v; want present=%v", p.User, tc.withUser)
			}
			if tc.teamID != "" && (p.Team == nil || p.Team.TeamID != tc.teamID) {
				t.Errorf("got team %+v; want %q", p.Team, tc.teamID)
			}
		})
	}
}

func TestAuthenticateStoreDownFailsClosed(t *testing.T) {
	f := newFixture(t)
	a := f.authenticator(nil)
	f.store.Close()
	p, err := a.Authenticate(context.Background(), bearer(f.secrets["alice"]), master)
	if err == nil || err.Status != http.StatusServiceUnavailable {
		t.Fatalf("got %+v, %v; want 503", p, err)
	}
	// The master key needs no store.
	if p, err := a.Authenticate(context.Background(), bearer(master), master); err != nil || p.Kind != Master {
		t.Errorf("master key with the store down: got %+v, %v; want Master", p, err)
	}
}

func TestRotationGracePeriod(t *testing.T) {
	f := newFixture(t)
	a := f.authenticator(nil)
	ctx := context.Background()
	old := f.secrets["alice"]
	cur, _ := f.store.GetKey(ctx, keys.Hash(old))

	newSecret, _ := keys.NewSecret()
	next := *cur
	next.Token = keys.Hash(newSecret)
	grace := f.now.Add(time.Hour)
	if err := f.store.RotateKey(ctx, cur.Token, &next, &grace); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{old, newSecret} {
		p, err := a.Authenticate(ctx, bearer(secret), master)
		if err != nil {
			t.Fatalf("within grace: %v", err)
		}
		if p.Key.Token != next.Token {
			t.Errorf("got key %s; want the current record %s", p.Key.Token[:8], next.Token[:8])
		}
	}
	f.now = grace.Add(time.Second)
	if _, err := a.Authenticate(ctx, bearer(old), master); err == nil || err.Status != 401 {
		t.Errorf("old secret after grace: got %v; want 401", err)
	}
	if _, err := a.Authenticate(ctx, bearer(newSecret), master); err != nil {
		t.Errorf("new secret after grace: %v", err)
	}
}

func TestCacheRevocationDelay(t *testing.T) {
	f := newFixture(t)
	ttl := 5 * time.Second
	a := f.authenticator(NewCache(ttl, 0))
	ctx := context.Background()
	secret := f.secrets["alice"]
	if _, err := a.Authenticate(ctx, bearer(secret), master); err != nil {
		t.Fatal(err)
	}
	// Deleted on "another instance": this one keeps the cached answer for at
	// most the TTL, then refuses.
	if err := f.store.DeleteKey(ctx, keys.Hash(secret)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, bearer(secret), master); err != nil {
		t.Errorf("within the cache TTL: got %v; want the cached principal", err)
	}
	f.now = f.now.Add(ttl)
	if _, err := a.Authenticate(ctx, bearer(secret), master); err == nil {
		t.Errorf("after the cache TTL: got a principal; want 401")
	}
}

func TestCacheInvalidateIsImmediate(t *testing.T) {
	f := newFixture(t)
	a := f.authenticator(NewCache(time.Hour, 0))
	ctx := context.Background()
	secret := f.secrets["alice"]
	if _, err := a.Authenticate(ctx, bearer(secret), master); err != nil {
		t.Fatal(err)
	}
	k, _ := f.store.GetKey(ctx, keys.Hash(secret))
	k.Blocked = true
	if err := f.store.UpdateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	a.Invalidate(k.Token)
	p, err := a.Authenticate(ctx, bearer(secret), master)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Key.Blocked {
		t.Errorf("after Invalidate: got an unblocked cached key; want the blocked record")
	}
}

func TestCacheNegativeEntries(t *testing.T) {
	f := newFixture(t)
	a := f.authenticator(NewCache(time.Minute, 0))
	ctx := context.Background()
	secret, _ := keys.NewSecret()
	if _, err := a.Authenticate(ctx, bearer(secret), master); err == nil {
		t.Fatal("unknown key authenticated")
	}
	// Create it behind the cache's back: the negative entry holds until
	// invalidated.
	k := &keys.Key{Token: keys.Hash(secret), TokenID: keys.Hash(secret), KeyName: keys.Abbrev(secret), UserID: "alice"}
	if err := f.store.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, bearer(secret), master); err == nil {
		t.Errorf("got a principal; want the cached negative answer")
	}
	a.Invalidate(k.Token)
	if _, err := a.Authenticate(ctx, bearer(secret), master); err != nil {
		t.Errorf("after Invalidate: %v", err)
	}
}

func TestCacheBounded(t *testing.T) {
	c := NewCache(time.Minute, 10)
	now := time.Now()
	for i := range 25 {
		c.put(strings.Repeat("x", i+1), &lookupResult{}, now, c.generation())
	}
	if n := len(c.entries); n > 10 {
		t.Errorf("cache holds %d entries; want at most 10", n)
	}
}

func TestAuthorize(t *testing.T) {
	f := newFixture(t)
	a := f.authenticator(nil)
	ocr := &config.Endpoint{Path: "/v1/ocr", IncludeSubpath: true, Auth: true, Target: &url.URL{Scheme: "https", Host: "up"}}
	chat := &config.Endpoint{Path: "/v1/chat", IncludeSubpath: true, Auth: true, Target: &url.URL{Scheme: "https", Host: "up"}}
	public := &config.Endpoint{Path: "/public", Auth: false, Target: &url.URL{Scheme: "https", Host: "up"}}
	table := route.New([]*config.Endpoint{ocr, chat, public})
	seed := "/v1/ocr/company/community/nemoretriever-ocr-v1/v1/infer"

	tests := []struct {
		who    string // key name in the fixture, "master" or "" (anonymous)
		path   string
		status int // 0 = admitted
	}{
		// The bug Keyway exists to fix: a normal user's valid key works.
		{"alice", seed, 0},
		{"master", seed, 0},
		{"", seed, 401},
		{"team-only", seed, 0}, // LiteLLM's "role=unknown": no user at all
		{"service", seed, 0},
		{"admin", seed, 0},
		{"viewer", seed, 403},
		{"blocked", seed, 403},
		{"blocked-user", seed, 403},
		{"blocked-team", seed, 403},
		{"routes-ocr", "/v1/ocr/x", 0},
		{"routes-ocr", "/v1/ocr", 0},
		{"routes-ocr", "/v1/chat/completions", 403},
		{"routes-group", "/v1/chat/completions", 0},
		{"pt-chat", "/v1/chat/completions", 0},
		{"pt-chat", seed, 403},
		{"team-ocr-only", seed, 0},
		{"team-ocr-only", "/v1/chat/x", 403},
		{"", "/public", 0},
		{"viewer", "/public", 0},
		{"", "/health", 0},
		{"", "/key/generate", 401},
		{"alice", "/key/generate", 0}, // the admin API decides per operation
		{"viewer", "/key/info", 0},
		{"blocked", "/key/info", 403},
		// allowed_routes restricts every route, admin ones included, so a
		// restricted key cannot mint itself an unrestricted one.
		{"routes-ocr", "/key/generate", 403},
		{"routes-group", "/key/generate", 403},
		{"routes-admin", "/key/info", 0},
		{"routes-admin", "/key/generate", 403},
		{"pt-chat", "/key/generate", 0}, // allowed_passthrough_routes covers pass-through routes only
		{"alice", "/nowhere", 404},
	}
	for _, tc := range tests {
		t.Run(tc.who+" "+tc.path, func(t *testing.T) {
			p := &Principal{Kind: Anonymous}
			switch tc.who {
			case "":
			case "master":
				p = &Principal{Kind: Master, Role: keys.RoleProxyAdmin}
			default:
				var err *apierr.Error
				p, err = a.Authenticate(context.Background(), bearer(f.secrets[tc.who]), master)
				if err != nil {
					t.Fatalf("authenticating %s: %v", tc.who, err)
				}
			}
			err, _ := Authorize(p, table.ClassifyPath(tc.path))
			got := 0
			if err != nil {
				got = err.Status
				if err.Message == "" {
					t.Errorf("denial without a reason")
				}
			}
			if got != tc.status {
				t.Errorf("got %d (%v); want %d", got, err, tc.status)
			}
		})
	}
}

func BenchmarkAuthenticateCached(b *testing.B) {
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "keys.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	secret, _ := keys.NewSecret()
	st.CreateKey(context.Background(), &keys.Key{Token: keys.Hash(secret), TokenID: keys.Hash(secret), KeyName: keys.Abbrev(secret)})
	a := NewAuthenticator(st, NewCache(time.Hour, 0), nil)
	h := bearer(secret)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), h, master); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateUncached(b *testing.B) {
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "keys.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	secret, _ := keys.NewSecret()
	st.CreateKey(context.Background(), &keys.Key{Token: keys.Hash(secret), TokenID: keys.Hash(secret), KeyName: keys.Abbrev(secret)})
	a := NewAuthenticator(st, nil, nil)
	h := bearer(secret)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(context.Background(), h, master); err != nil {
			b.Fatal(err)
		}
	}
}

// pausingReader is the real bolt store with a gate in GetKey, to hold a
// lookup in flight while a revocation happens.
type pausingReader struct {
	KeyReader
	reading chan struct{} // receives when GetKey has read the key
	resume  chan struct{} // GetKey returns when this is closed
}

func (p *pausingReader) GetKey(ctx context.Context, token string) (*keys.Key, error) {
	k, err := p.KeyReader.GetKey(ctx, token)
	p.reading <- struct{}{}
	<-p.resume
	return k, err
}

// TestInvalidateWinsOverAnInFlightLookup: a lookup that read a key before
// it was deleted must not put it back in the cache after the admin API's
// invalidation; otherwise the deleted key would work for a whole TTL.
func TestInvalidateWinsOverAnInFlightLookup(t *testing.T) {
	f := newFixture(t)
	secret := f.secrets["alice"]
	gate := &pausingReader{KeyReader: f.store, reading: make(chan struct{}), resume: make(chan struct{})}
	a := NewAuthenticator(gate, NewCache(time.Hour, 0), nil)
	a.now = func() time.Time { return f.now }
	ctx := context.Background()

	done := make(chan *apierr.Error)
	go func() {
		_, err := a.Authenticate(ctx, bearer(secret), master)
		done <- err
	}()
	<-gate.reading // the in-flight lookup has read the live key
	if err := f.store.DeleteKey(ctx, keys.Hash(secret)); err != nil {
		t.Fatal(err)
	}
	a.Invalidate(keys.Hash(secret))
	close(gate.resume)
	if err := <-done; err != nil {
		t.Fatalf("in-flight lookup: %v", err)
	}

	go func() { <-gate.reading }() // the next lookup must read the store again
	if _, err := a.Authenticate(ctx, bearer(secret), master); err == nil {
		t.Errorf("deleted key authenticated after its invalidation: the racing lookup re-cached it")
	}
}
