package gateway_test

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

	"github.com/keywaygw/keyway/shared/app"
)

const master = "sk-gateway-test-master-0123456789"

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

type harness struct {
	url      string
	logs     *syncBuffer
	upstream *httptest.Server
	gotAuth  chan string
}

// newHarness runs the real gateway (app.Build: bolt store, file config)
// in front of a real upstream.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{logs: &syncBuffer{}, gotAuth: make(chan string, 16)}
	h.upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.gotAuth <- r.Header.Get("Authorization")
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(h.upstream.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/ocr
      target: `+h.upstream.URL+`
      include_subpath: true
      methods: [POST]
    - path: /public/echo
      target: `+h.upstream.URL+`
      auth: false
`), 0o600)
	env := map[string]string{
		"KEYWAY_CONFIG":     cfg,
		"KEYWAY_STORE":      "bolt:" + filepath.Join(dir, "k.db"),
		"KEYWAY_MASTER_KEY": master,
	}
	a, err := app.Build(context.Background(), app.Options{
		Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.NewJSONHandler(h.logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() { srv.Close(); a.Close() })
	h.url = srv.URL
	return h
}

func do(t *testing.T, method, url string, header http.Header) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(`{}`))
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &body)
	return resp, body
}

func TestGatewayMadeErrorsUseTheEnvelope(t *testing.T) {
	h := newHarness(t)
	bearer := http.Header{"Authorization": {"Bearer " + master}}
	tests := []struct {
		name, method, path string
		header             http.Header
		status             int
		allow              string
	}{
		{"unknown route", "GET", "/v2/nothing", bearer, 404, ""},
		{"unknown route without a key", "GET", "/nothing", nil, 404, ""},
		{"method not in methods", "GET", "/v1/ocr/x", bearer, 405, "POST"},
		{"no key on an auth endpoint", "POST", "/v1/ocr/x", nil, 401, ""},
		{"unknown health path", "GET", "/health/deep", nil, 404, ""},
		{"health takes GET", "POST", "/health", nil, 405, "GET, HEAD"},
		{"admin without a key", "POST", "/key/generate", nil, 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, h.url+tc.path, tc.header)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d; want %d", resp.StatusCode, tc.status)
			}
			e, _ := body["error"].(map[string]any)
			if e == nil || e["code"] != itoa(tc.status) || e["message"] == "" || e["type"] == "" {
				t.Errorf("body %v; want {\"error\": {message, type, param, code: %q}}", body, itoa(tc.status))
			}
			if _, ok := e["param"]; !ok {
				t.Errorf("envelope has no param field: %v", e)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q; want %q", got, tc.allow)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q; want application/json", ct)
			}
		})
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestHealth(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/health", "/health/liveliness", "/health/readiness"} {
		resp, body := do(t, "GET", h.url+path, nil)
		if resp.StatusCode != 200 || body["status"] != "healthy" {
			t.Errorf("GET %s: got %d %v; want 200 healthy", path, resp.StatusCode, body)
		}
	}
}

// TestPublicEndpointIgnoresCredentials: an auth: false endpoint serves
// anyone, a stray or malformed Authorization is not a 401 (LiteLLM #23909),
// and it is still not forwarded.
func TestPublicEndpointIgnoresCredentials(t *testing.T) {
	h := newHarness(t)
	for _, auth := range []string{"", "Bearer not-a-key", "Bearer " + master} {
		header := http.Header{}
		if auth != "" {
			header.Set("Authorization", auth)
		}
		resp, body := do(t, "POST", h.url+"/public/echo", header)
		if resp.StatusCode != 200 {
			t.Errorf("Authorization %q: got %d %v; want 200", auth, resp.StatusCode, body)
			continue
		}
		if got := <-h.gotAuth; got != "" {
			t.Errorf("Authorization %q reached the upstream as %q", auth, got)
		}
	}
}

func TestAccessLog(t *testing.T) {
	h := newHarness(t)
	resp, _ := do(t, "POST", h.url+"/v1/ocr/infer?api_key=secret-in-query", http.Header{
		"Authorization": {"Bearer " + master},
		"X-Request-Id":  {"client-id-123"},
	})
	<-h.gotAuth
	gwID := resp.Header.Get("X-Request-Id")
	if gwID == "" || gwID == "client-id-123" {
		t.Errorf("X-Request-Id %q; want Keyway's own id, never the caller's (it keys the request's charge)", gwID)
	}
	resp, _ = do(t, "GET", h.url+"/nothing", http.Header{"X-Request-Id": {"bad id with spaces and {braces}"}})
	if got := resp.Header.Get("X-Request-Id"); got == "" || strings.Contains(got, " ") {
		t.Errorf("X-Request-Id %q; want a fresh id replacing a malformed one", got)
	}

	var access []map[string]any
	for _, l := range h.logs.lines(t) {
		if l["msg"] == "request" {
			access = append(access, l)
		}
	}
	if len(access) != 2 {
		t.Fatalf("got %d access lines; want 2 (one per request)", len(access))
	}
	first := access[0]
	want := map[string]any{
		"request_id": gwID, "client_request_id": "client-id-123", "method": "POST", "route": "pass_through",
		"endpoint": "/v1/ocr", "status": float64(200), "upstream_status": float64(200),
		"bytes_in": float64(2), "principal": "master key",
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("access line %s = %v; want %v", k, first[k], v)
		}
	}
	if _, ok := first["duration_ms"]; !ok {
		t.Errorf("access line has no duration_ms: %v", first)
	}
	if n, _ := first["bytes_out"].(float64); n <= 0 {
		t.Errorf("access line bytes_out %v; want > 0", first["bytes_out"])
	}
	if access[1]["status"] != float64(404) || access[1]["route"] != "unknown" {
		t.Errorf("second access line %v; want a 404 on an unknown route", access[1])
	}
	all := func() string { h.logs.mu.Lock(); defer h.logs.mu.Unlock(); return h.logs.b.String() }()
	for _, secret := range []string{master, "secret-in-query"} {
		if strings.Contains(all, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

// serveApp builds the app (app.Build: bolt store, file config with the
// master key and the given pass-through_endpoints items), as under Lambda
// when lambda is set, logging JSON to logs, and serves it until the test
// ends. It returns the server's URL.
func serveApp(t *testing.T, endpoints string, lambda bool, logs io.Writer) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("general_settings:\n  master_key: "+master+"\n  pass_through_endpoints:\n"+endpoints), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEYWAY_CONFIG": cfg, "KEYWAY_STORE": "bolt:" + filepath.Join(dir, "k.db")}
	a, err := app.Build(context.Background(), app.Options{
		Getenv: func(k string) string { return env[k] },
		Lambda: lambda,
		Logger: slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(srv.Close)
	return srv.URL
}
