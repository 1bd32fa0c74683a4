package auth

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/reqlog"
	"github.com/keywaygw/keyway/shared/route"
)

// TestDenyReasons: every refusal names its reason, from the bounded
// reqlog.Deny* set, in the request's log entry (authentication) or beside
// the error (authorization); /metrics is for proxy admins only.
func TestDenyReasons(t *testing.T) {
	f := newFixture(t)
	a := f.authenticator(nil)
	ocr := &config.Endpoint{Path: "/v1/ocr", IncludeSubpath: true, Auth: true, Target: &url.URL{Scheme: "https", Host: "up"}}
	table := route.New([]*config.Endpoint{ocr})

	authn := []struct {
		name, secret, want string
	}{
		{"malformed", "not-a-key", reqlog.DenyBadKey},
		{"unknown", "sk-unknown-0123456789abcdef0123", reqlog.DenyBadKey},
		{"expired", f.secrets["expired"], reqlog.DenyExpired},
		{"valid", f.secrets["alice"], ""},
	}
	for _, tc := range authn {
		e := &reqlog.Entry{}
		a.Authenticate(reqlog.NewContext(context.Background(), e), bearer(tc.secret), master)
		if e.Denied != tc.want {
			t.Errorf("authenticate %s: Denied %q; want %q", tc.name, e.Denied, tc.want)
		}
	}

	down := NewAuthenticator(failingStore{}, nil, nil)
	e := &reqlog.Entry{}
	if _, err := down.Authenticate(reqlog.NewContext(context.Background(), e), bearer(f.secrets["alice"]), master); err == nil || err.Status != 503 {
		t.Fatalf("store down: %v; want 503", err)
	}
	if e.Denied != reqlog.DenyStore || e.StoreOp != StoreOpKeyLookup {
		t.Errorf("store down: Denied %q StoreOp %q; want %q %q", e.Denied, e.StoreOp, reqlog.DenyStore, StoreOpKeyLookup)
	}

	authz := []struct {
		who, path string
		status    int
		want      string
	}{
		{"", "/v1/ocr/x", 401, reqlog.DenyNoKey},
		{"blocked", "/v1/ocr/x", 403, reqlog.DenyBlocked},
		{"blocked-team", "/v1/ocr/x", 403, reqlog.DenyBlocked},
		{"viewer", "/v1/ocr/x", 403, reqlog.DenyRole},
		{"pt-chat", "/v1/ocr/x", 403, reqlog.DenyRoute},
		{"routes-ocr", "/key/generate", 403, reqlog.DenyRoute},
		{"alice", "/v1/ocr/x", 0, ""},
		{"", "/metrics", 401, reqlog.DenyNoKey},
		{"alice", "/metrics", 403, reqlog.DenyRole},
		{"service", "/metrics", 403, reqlog.DenyRole},
		{"viewer", "/metrics", 403, reqlog.DenyRole},
		{"admin", "/metrics", 0, ""},
		{"master", "/metrics", 0, ""},
	}
	for _, tc := range authz {
		p := &Principal{Kind: Anonymous}
		switch tc.who {
		case "":
		case "master":
			p = &Principal{Kind: Master, Role: keys.RoleProxyAdmin}
		default:
			var err error
			if p, err = principal(a, f.secrets[tc.who]); err != nil {
				t.Fatalf("%s: %v", tc.who, err)
			}
		}
		err, reason := Authorize(p, table.ClassifyPath(tc.path))
		status := 0
		if err != nil {
			status = err.Status
		}
		if status != tc.status || reason != tc.want {
			t.Errorf("%s on %s: %d %q; want %d %q", tc.who, tc.path, status, reason, tc.status, tc.want)
		}
	}
}

func principal(a *Authenticator, secret string) (*Principal, error) {
	p, err := a.Authenticate(context.Background(), bearer(secret), master)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// failingStore answers every read with an error, as a store that is down.
type failingStore struct{}

var errDown = errors.New("store down")

func (failingStore) GetKey(context.Context, string) (*keys.Key, error)   { return nil, errDown }
func (failingStore) GetUser(context.Context, string) (*keys.User, error) { return nil, errDown }
func (failingStore) GetTeam(context.Context, string) (*keys.Team, error) { return nil, errDown }
