package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const testMaster = "sk-test-master-key-0123456789abcdef"

// received is what the recording upstream saw.
type received struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

// recordingUpstream is a real HTTP server that records each request and
// answers 200 with a small JSON body.
type recordingUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, received{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":[{"text":"ok"}]}`))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *recordingUpstream) all() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.reqs...)
}

// gatewayUnderTest builds the app from an environment map, as main does, and
// serves it on a real loopback listener.
type gatewayUnderTest struct {
	URL  string
	app  *App
	logs *lockedWriter
}

// logText is everything logged so far.
func (g *gatewayUnderTest) logText() string {
	g.logs.mu.Lock()
	defer g.logs.mu.Unlock()
	return g.logs.w.String()
}

func startGateway(t *testing.T, configYAML string, env map[string]string) *gatewayUnderTest {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{
		EnvConfig: cfgPath,
		EnvStore:  "bolt:" + filepath.Join(dir, "keyway.db"),
	}
	for k, v := range env {
		full[k] = v
	}
	return startGatewayEnv(t, full)
}

// startGatewayEnv builds the app from env (plus the test master key unless
// env sets KEYWAY_MASTER_KEY) and serves it on a loopback listener.
func startGatewayEnv(t *testing.T, env map[string]string) *gatewayUnderTest {
	t.Helper()
	if _, ok := env["KEYWAY_MASTER_KEY"]; !ok {
		env["KEYWAY_MASTER_KEY"] = testMaster
	}
	logs := &lockedWriter{w: &bytes.Buffer{}}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	a, err := Build(context.Background(), Options{Getenv: func(k string) string { return env[k] }, Logger: logger})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() { srv.Close(); a.Close() })
	return &gatewayUnderTest{URL: srv.URL, app: a, logs: logs}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// call makes one request and decodes a JSON answer.
func call(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	resp, raw := do(t, method, url, key, body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("%s %s answered %d with non-JSON %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out
}

func seedConfig(upstreamURL string) string {
	return `
model_list:
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/OPENAI_API_KEY}
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/ocr
      target: ` + upstreamURL + `/v1/cv/nvidia/ocr
      include_subpath: true
      forward_headers: true
      auth: true
      headers:
        Authorization: "Bearer os.environ/NVDEV_API_KEY"
`
}

const seedBody = `{"input": [{"type": "image_url", "url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAAABJRU5ErkJggg=="}]}`

// TestSeedScenario is the bug report Keyway exists to fix (LiteLLM #23915):
// a normal user's valid key on an auth: true, include_subpath pass-through
// endpoint must reach the upstream, as the master key does.
func TestSeedScenario(t *testing.T) {
	up := newRecordingUpstream(t)
	const upstreamSecret = "nvapi-upstream-secret-value"
	gw := startGateway(t, seedConfig(up.URL), map[string]string{"NVDEV_API_KEY": upstreamSecret})
	route := gw.URL + "/v1/ocr/company/community/nemoretriever-ocr-v1/v1/infer"

	// 1. /user/new with the master key.
	status, body := call(t, "POST", gw.URL+"/user/new", testMaster,
		`{"user_id": "test-user-1", "user_email": "test@example.com", "user_role": "internal_user"}`)
	if status != 200 {
		t.Fatalf("/user/new: got %d %v; want 200", status, body)
	}
	// 2. /key/generate for that user.
	status, body = call(t, "POST", gw.URL+"/key/generate", testMaster, `{"user_id": "test-user-1"}`)
	if status != 200 {
		t.Fatalf("/key/generate: got %d %v; want 200", status, body)
	}
	key, _ := body["key"].(string)
	if !strings.HasPrefix(key, "sk-") {
		t.Fatalf("/key/generate returned key %q; want sk-…", key)
	}

	// 3. The user's key on the pass-through route reaches the upstream.
	status, body = call(t, "POST", route, key, seedBody)
	if status != 200 {
		t.Fatalf("user key on the pass-through route: got %d %v; want 200", status, body)
	}
	// 4. So does the master key.
	if status, body = call(t, "POST", route, testMaster, seedBody); status != 200 {
		t.Fatalf("master key on the pass-through route: got %d %v; want 200", status, body)
	}

	reqs := up.all()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests; want 2", len(reqs))
	}
	for i, r := range reqs {
		if want := "/v1/cv/nvidia/ocr/company/community/nemoretriever-ocr-v1/v1/infer"; r.Path != want {
			t.Errorf("request %d: upstream path %q; want %q", i, r.Path, want)
		}
		if string(r.Body) != seedBody {
			t.Errorf("request %d: upstream body %q; want it byte-exact", i, r.Body)
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+upstreamSecret {
			t.Errorf("request %d: upstream Authorization %q; want the configured upstream secret", i, got)
		}
		for name, values := range r.Header {
			for _, v := range values {
				if strings.Contains(v, key) || strings.Contains(v, testMaster) {
					t.Errorf("request %d: upstream header %s carries the caller's key", i, name)
				}
			}
		}
	}

	// No key, unknown key: 401 in the envelope, upstream not called.
	if status, body = call(t, "POST", route, "", seedBody); status != 401 {
		t.Errorf("no key: got %d; want 401", status)
	}
	status, body = call(t, "POST", route, "sk-not-a-real-key-0000000000000000", seedBody)
	if status != 401 {
		t.Errorf("unknown key: got %d; want 401", status)
	}
	envelope, _ := body["error"].(map[string]any)
	if envelope == nil || envelope["code"] != "401" || envelope["message"] == "" {
		t.Errorf("401 body %v; want the {\"error\": {…, \"code\": \"401\"}} envelope", body)
	}
	if n := len(up.all()); n != 2 {
		t.Errorf("upstream got %d requests after refused calls; want still 2", n)
	}

	// A normal user's key cannot mint keys for someone else: 403, the
	// same for every other user_id, existing or not.
	if status, _ = call(t, "POST", gw.URL+"/key/generate", key, `{"user_id": "someone-else"}`); status != 403 {
		t.Errorf("non-admin key minting a key for another user: got %d; want 403", status)
	}

	// Secrets never reach the logs.
	for _, s := range []string{key, testMaster, upstreamSecret} {
		if strings.Contains(gw.logText(), s) {
			t.Errorf("a secret (%s) appears in the logs", s[:6]+"…")
		}
	}
}

func TestBuildFailsOnUnresolvedSecretWithoutPrintingValues(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(seedConfig("http://127.0.0.1:1")), 0o600)
	env := map[string]string{EnvConfig: cfg, EnvStore: "bolt:" + filepath.Join(dir, "k.db"), "KEYWAY_MASTER_KEY": testMaster}
	_, err := Build(context.Background(), Options{Getenv: func(k string) string { return env[k] }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		t.Fatal("Build succeeded with os.environ/NVDEV_API_KEY unset")
	}
	if msg := err.Error(); !strings.Contains(msg, "NVDEV_API_KEY") || !strings.Contains(msg, "/v1/ocr") || strings.Contains(msg, testMaster) {
		t.Errorf("error %q; want it to name the endpoint and NVDEV_API_KEY and no secret value", msg)
	}
}
