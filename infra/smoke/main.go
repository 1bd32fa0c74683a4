// Command smoke is Keyway's post-deploy check (`make smoke`): against any
// running gateway — `make run` or a deployed stack's ApiUrl — it creates a
// temporary user and key, checks that a pass-through endpoint refuses a call
// without a key and admits the key (and streams SSE, when asked), deletes
// the key and checks that it is refused, and deletes everything it created
// even when a step fails or it is interrupted. It prints one line per check
// and "N passed, M failed"; it exits 1 when anything failed.
//
// Settings come from the environment (what `make smoke VAR=…` passes), so
// the master key never appears in a process list; flags override them:
//
//	BASE_URL        gateway URL, stage included (default http://127.0.0.1:4000)
//	MASTER_KEY      master key (default: the dev key file `make run` keeps)
//	SMOKE_PATH      an auth: true endpoint path (default /v1/ocr/smoke, for make run)
//	SMOKE_SSE_PATH  optional: a path answering text/event-stream
//	SMOKE_METHOD    method for both paths (default POST, body {})
//	SMOKE_REVOKE_WAIT  how long to wait for a deleted key to be refused
//	                   everywhere (other instances cache keys; default 30s)
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// devMasterKeyFile is app.DevMasterKeyFile, the key `make run` generates.
const devMasterKeyFile = ".keyway-dev-master-key"

type settings struct {
	BaseURL, MasterKey, Path, SSEPath, Method string
	RevokeWait                                time.Duration
	Client                                    *http.Client
}

func main() {
	s := settings{
		BaseURL:   envOr("BASE_URL", "http://127.0.0.1:4000"),
		MasterKey: os.Getenv("MASTER_KEY"),
		Path:      envOr("SMOKE_PATH", "/v1/ocr/smoke"),
		SSEPath:   os.Getenv("SMOKE_SSE_PATH"),
		Method:    envOr("SMOKE_METHOD", http.MethodPost),
	}
	wait := envOr("SMOKE_REVOKE_WAIT", "30s")
	flag.StringVar(&s.BaseURL, "base-url", s.BaseURL, "gateway URL (BASE_URL)")
	flag.StringVar(&s.Path, "path", s.Path, "an auth: true endpoint path (SMOKE_PATH)")
	flag.StringVar(&s.SSEPath, "sse-path", s.SSEPath, "a path answering text/event-stream (SMOKE_SSE_PATH)")
	flag.StringVar(&s.Method, "method", s.Method, "method for the endpoint calls (SMOKE_METHOD)")
	flag.StringVar(&wait, "revoke-wait", wait, "how long a deleted key may still be admitted (SMOKE_REVOKE_WAIT)")
	flag.Parse()
	var err error
	if s.RevokeWait, err = time.ParseDuration(wait); err != nil {
		fail("revoke-wait %q: %v", wait, err)
	}
	if s.MasterKey == "" {
		data, err := os.ReadFile(devMasterKeyFile)
		if err != nil {
			fail("MASTER_KEY is not set and there is no %s (make run creates it): %v", devMasterKeyFile, err)
		}
		s.MasterKey = strings.TrimSpace(string(data))
	}
	if s.Path == "" || s.Path[0] != '/' {
		fail("SMOKE_PATH %q: want a path starting with /", s.Path)
	}
	if s.SSEPath != "" && s.SSEPath[0] != '/' {
		fail("SMOKE_SSE_PATH %q: want a path starting with /", s.SSEPath)
	}
	s.BaseURL = strings.TrimSuffix(s.BaseURL, "/")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	passed, failed := run(ctx, s, os.Stdout)
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		stop()
		os.Exit(1)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "smoke: "+format+"\n", args...)
	os.Exit(2)
}

// smoke is one run: its checks and what it must clean up.
type smoke struct {
	s      settings
	out    io.Writer
	passed int
	failed int
	userID string // created user, "" once deleted
	key    string // created key's secret, "" once deleted
	client *http.Client
}

// run performs every check and the cleanup; it returns the counts.
func run(ctx context.Context, s settings, out io.Writer) (passed, failed int) {
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	sm := &smoke{s: s, out: out, client: client}
	func() {
		defer sm.cleanup()
		sm.steps(ctx)
	}()
	return sm.passed, sm.failed
}

func (sm *smoke) check(name string, err error) bool {
	if err != nil {
		sm.failed++
		fmt.Fprintf(sm.out, "FAIL %s: %v\n", name, err)
		return false
	}
	sm.passed++
	fmt.Fprintf(sm.out, "ok   %s\n", name)
	return true
}

func (sm *smoke) steps(ctx context.Context) {
	s := sm.s
	sm.check("GET /health answers 200", sm.expect(ctx, http.MethodGet, "/health", "", nil, 200))

	id := "keyway-smoke-" + randomHex(6)
	// Recorded before the call: if the run is cut while /user/new is in
	// flight, cleanup still deletes the user (and any key it got).
	sm.userID = id
	var user map[string]any
	err := sm.call(ctx, http.MethodPost, "/user/new", s.MasterKey,
		map[string]any{"user_id": id, "user_role": "internal_user"}, 200, &user)
	if !sm.check("create a temporary user "+id, err) {
		return
	}

	var gen map[string]any
	err = sm.call(ctx, http.MethodPost, "/key/generate", s.MasterKey,
		map[string]any{"user_id": id, "key_alias": id}, 200, &gen)
	if err == nil {
		sm.key, _ = gen["key"].(string)
		if !strings.HasPrefix(sm.key, "sk-") {
			err = fmt.Errorf("no key in the answer")
		}
	}
	if !sm.check("create a temporary key for it", err) {
		return
	}

	sm.check(s.Method+" "+s.Path+" without a key is 401", sm.expect(ctx, s.Method, s.Path, "", nil, 401))
	sm.check(s.Method+" "+s.Path+" with the key is 200", sm.expect(ctx, s.Method, s.Path, sm.key, map[string]any{}, 200))
	if s.SSEPath != "" {
		sm.check(s.Method+" "+s.SSEPath+" streams server-sent events", sm.sse(ctx))
	}

	err = sm.call(ctx, http.MethodPost, "/key/delete", s.MasterKey, map[string]any{"keys": []string{sm.key}}, 200, nil)
	if sm.check("delete the key", err) {
		deleted := sm.key
		sm.key = ""
		sm.check("the deleted key is refused (401)", sm.refused(ctx, deleted))
	}
}

// refused calls the endpoint with a deleted key until it is 401: another
// instance may admit it from its key cache for up to key_cache_ttl.
func (sm *smoke) refused(ctx context.Context, key string) error {
	deadline := time.Now().Add(sm.s.RevokeWait)
	for {
		err := sm.expect(ctx, sm.s.Method, sm.s.Path, key, map[string]any{}, 401)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// cleanup deletes what the run created, whatever happened before; it uses a
// fresh context so an interrupt still cleans up.
func (sm *smoke) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if sm.key != "" {
		err := sm.call(ctx, http.MethodPost, "/key/delete", sm.s.MasterKey, map[string]any{"keys": []string{sm.key}}, 200, nil)
		if sm.check("cleanup: delete the key", err) {
			sm.key = ""
		}
	}
	if sm.userID != "" {
		id := sm.userID
		err := sm.call(ctx, http.MethodPost, "/user/delete", sm.s.MasterKey, map[string]any{"user_ids": []string{id}}, 200, nil)
		if err != nil && sm.expect(ctx, http.MethodGet, "/user/info?user_id="+id, sm.s.MasterKey, nil, 404) == nil {
			err = nil // never created (the run was cut, or /user/new failed): nothing to delete
		}
		if sm.check("delete the temporary user", err) {
			sm.userID = ""
			sm.check("nothing left behind (user and its keys are gone)",
				sm.expect(ctx, http.MethodGet, "/user/info?user_id="+id, sm.s.MasterKey, nil, 404))
		}
	}
}

// expect makes one call and checks its status.
func (sm *smoke) expect(ctx context.Context, method, path, key string, body any, want int) error {
	return sm.call(ctx, method, path, key, body, want, nil)
}

// call sends method path with key (none if ""), a JSON body (none if nil),
// checks the status and decodes the answer into out (if not nil).
func (sm *smoke) call(ctx context.Context, method, path, key string, body any, want int, out any) error {
	resp, err := sm.do(ctx, method, path, key, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("got %d, want %d: %s", resp.StatusCode, want, short(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("answer is not JSON: %v: %s", err, short(raw))
		}
	}
	return nil
}

func (sm *smoke) do(ctx context.Context, method, path, key string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, sm.s.BaseURL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := sm.client.Do(req)
	if err != nil {
		return nil, err // the URL holds no secret; the key is only in a header
	}
	return resp, nil
}

// sse checks that the SSE path answers 200 text/event-stream and delivers
// at least one event.
func (sm *smoke) sse(ctx context.Context) error {
	resp, err := sm.do(ctx, sm.s.Method, sm.s.SSEPath, sm.key, map[string]any{})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("got %d, want 200: %s", resp.StatusCode, short(raw))
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return fmt.Errorf("Content-Type %q, want text/event-stream", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			return nil
		}
	}
	return fmt.Errorf("the stream ended without a data: event (%v)", sc.Err())
}

func short(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
