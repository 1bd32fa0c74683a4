package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/boltstore"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/ledger"
)

// testMaster is the master key the test gateway accepts.
const testMaster = "sk-master-key-for-admin-tests-0123456789"

// env is an admin API behind a real HTTP server, on a real bolt store,
// with a stand-in for the gateway's authentication in front of it.
type env struct {
	t      *testing.T
	store  keys.Store
	srv    *httptest.Server
	admin  http.Handler // the admin API srv serves, behind authenticate
	logs   *syncBuffer
	clock  *clock
	mu     sync.Mutex
	purged [][]string // every Invalidate call's tokens (empty = everything)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newEnv(t *testing.T) *env { t.Helper(); return newEnvWith(t, nil) }

// newEnvWith is newEnv with the admin API's store wrapped by wrap (nil: not
// wrapped), to interleave other writes with the handler's. e.store stays
// the bolt store itself.
func newEnvWith(t *testing.T, wrap func(keys.Store) keys.Store) *env {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keyway.db"))
	if err != nil {
		t.Fatalf("boltstore.Open: got error %v; want nil", err)
	}
	return newEnvOn(t, st, wrap)
}

// newEnvOn is newEnvWith on the store st (closed when the test ends).
func newEnvOn(t *testing.T, st keys.Store, wrap func(keys.Store) keys.Store) *env {
	t.Helper()
	e := &env{t: t, store: st, logs: &syncBuffer{}, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}}
	var hs keys.Store = st
	if wrap != nil {
		hs = wrap(st)
	}
	led, _ := st.(ledger.Store) // both stores keep the ledger too
	e.admin = New(Options{
		Store:  hs,
		Ledger: led,
		Invalidate: func(tokens ...string) {
			e.mu.Lock()
			e.purged = append(e.purged, tokens)
			e.mu.Unlock()
		},
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
		Now:    e.clock.now,
	})
	e.srv = httptest.NewServer(e.authenticate(e.admin))
	t.Cleanup(func() {
		e.srv.Close()
		st.Close()
	})
	return e
}

// authenticate stands in for the gateway: it authenticates the caller's
// key as the gateway does (master key → proxy_admin; a key with a user →
// that user's role; without → internal_user), rejects unknown, expired
// and blocked keys with 401, and hands the principal to the admin API.
func (e *env) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, _ := auth.Credential(r.Header)
		p, ok := e.principal(r.Context(), secret)
		if !ok {
			http.Error(w, `{"error":{"message":"Authentication Error","code":"401"}}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
	})
}

func (e *env) principal(ctx context.Context, secret string) (*auth.Principal, bool) {
	if secret == "" {
		return nil, false
	}
	if secret == testMaster {
		return &auth.Principal{Kind: auth.Master, Role: keys.RoleProxyAdmin}, true
	}
	k, err := e.store.GetKey(ctx, keys.Hash(secret))
	if err != nil {
		return nil, false
	}
	now := e.clock.now()
	old := false
	if k.RotatedTo != "" {
		if k.Expired(now) {
			return nil, false
		}
		graceEnd := k.Expires
		if k, err = e.store.GetKey(ctx, k.RotatedTo); err != nil {
			return nil, false
		}
		if k.Expires == nil || graceEnd.Before(*k.Expires) {
			k.Expires = graceEnd // as auth does
		}
		old = true
	}
	if k.Expired(now) || k.Blocked {
		return nil, false
	}
	p := &auth.Principal{Kind: auth.VirtualKey, Key: k, Role: keys.RoleInternalUser, OldSecret: old}
	if k.UserID != "" {
		if u, err := e.store.GetUser(ctx, k.UserID); err == nil {
			p.User, p.Role = u, u.UserRole
		}
	}
	if k.TeamID != "" {
		if t, err := e.store.GetTeam(ctx, k.TeamID); err == nil {
			p.Team = t
		}
	}
	return p, true
}

// resp is one admin API answer.
type resp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any // nil unless the body is a JSON object
	list   []any          // set when the body is a JSON array
}

// errParam and errMsg read the apierr envelope.
func (r resp) errField(name string) string {
	eo, _ := r.body["error"].(map[string]any)
	s, _ := eo[name].(string)
	return s
}

func (r resp) str(name string) string { s, _ := r.body[name].(string); return s }

// call sends one request as the caller holding secret. body is JSON-encoded
// unless it is a string (sent as is) or nil (no body).
func (e *env) call(secret, method, path string, body any) resp {
	e.t.Helper()
	r, err := e.try(secret, method, path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// try is call for goroutines other than the test's: it returns failures
// instead of ending the test.
func (e *env) try(secret, method, path string, body any) (resp, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return resp{}, fmt.Errorf("encoding request body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		return resp{}, fmt.Errorf("NewRequest: %v", err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		return resp{}, fmt.Errorf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(raw)}
	json.Unmarshal(raw, &out.body)
	if out.body == nil {
		json.Unmarshal(raw, &out.list)
	}
	return out, nil
}

// must calls and fails the test unless the answer is 200.
func (e *env) must(secret, method, path string, body any) resp {
	e.t.Helper()
	r := e.call(secret, method, path, body)
	if r.status != http.StatusOK {
		e.t.Fatalf("%s %s: got status %d (%s); want 200", method, path, r.status, r.raw)
	}
	return r
}

// newUser creates a user through the API (no key).
func (e *env) newUser(id string, role keys.Role, extra map[string]any) {
	e.t.Helper()
	body := map[string]any{"user_id": id, "user_role": string(role), "auto_create_key": false}
	for k, v := range extra {
		body[k] = v
	}
	e.must(testMaster, "POST", "/user/new", body)
}

// newKey generates a key through the API as the master key and returns
// its secret and token.
func (e *env) newKey(body map[string]any) (secret, token string) {
	e.t.Helper()
	r := e.must(testMaster, "POST", "/key/generate", body)
	return r.str("key"), r.str("token")
}

func (e *env) purgedAll() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.purged {
		if len(p) == 0 {
			return true
		}
	}
	return false
}

func (e *env) purgedToken(tok string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.purged {
		for _, t := range p {
			if t == tok {
				return true
			}
		}
	}
	return false
}

func (e *env) resetPurged() { e.mu.Lock(); e.purged = nil; e.mu.Unlock() }

// auditLines returns the decoded "admin audit" log lines.
func (e *env) auditLines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "admin audit" {
			out = append(out, m)
		}
	}
	return out
}
