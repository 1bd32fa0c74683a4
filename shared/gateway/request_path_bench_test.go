package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/keywaygw/keyway/shared/app"
	"github.com/keywaygw/keyway/shared/proxy"
)

// The request-path benchmarks (make bench, docs/performance.md) run the whole
// gateway handler that app.Build assembles — access log (JSON, to a
// discarding writer), classify, authenticate a virtual key from the cache,
// authorize, forward — in-process (ServeHTTP on a discarding ResponseWriter)
// against a real loopback upstream answering 1 KiB of JSON. Beside it, a
// bare httputil.ReverseProxy with the same transport does the same forward,
// so allocs/op and B/op compare what Keyway adds on the request path.

const benchMaster = "sk-bench-master-0123456789abcdef"

// benchPayload is 1 KiB of JSON.
var benchPayload = func() []byte {
	b := append([]byte(`{"data":"`), bytes.Repeat([]byte{'a'}, 1024-len(`{"data":""}`))...)
	return append(b, `"}`...)
}()

func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1024")
		w.Write(benchPayload)
	}))
	b.Cleanup(up.Close)
	return up
}

// benchWriter is a flushable ResponseWriter that drops the body.
type benchWriter struct {
	header http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *benchWriter) Flush()                      {}

// benchGateway builds the gateway as the binary does (app.Build from an
// environment: a file config with one auth: true endpoint, a bbolt store)
// and returns its handler with a virtual key made through the admin API.
func benchGateway(b *testing.B, upstreamURL string) (http.Handler, string) {
	b.Helper()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	err := os.WriteFile(cfg, []byte(`general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1
      target: `+upstreamURL+`
      auth: true
      include_subpath: true
      headers:
        Authorization: "Bearer upstream-secret"
`), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	env := map[string]string{
		app.EnvConfig:       cfg,
		app.EnvStore:        "bolt:" + filepath.Join(dir, "keys.db"),
		"KEYWAY_MASTER_KEY": benchMaster,
	}
	a, err := app.Build(context.Background(), app.Options{
		Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })

	admin := func(path, body string) map[string]any {
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewBufferString(body))
		r.Header.Set("Authorization", "Bearer "+benchMaster)
		w := httptest.NewRecorder()
		a.Handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			b.Fatal(err)
		}
		return out
	}
	admin("/user/new", `{"user_id":"bench-user","user_role":"internal_user"}`)
	key, _ := admin("/key/generate", `{"user_id":"bench-user"}`)["key"].(string)
	if key == "" {
		b.Fatal("no key from /key/generate")
	}
	return a.Handler, key
}

func benchRequest(key string) *http.Request {
	r := httptest.NewRequest("GET", "/v1/models/x?limit=10", nil)
	r.Header.Set("Authorization", "Bearer "+key)
	r.Header.Set("Accept", "application/json")
	return r
}

func serveBench(b *testing.B, h http.Handler, key string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		w := &benchWriter{header: make(http.Header)}
		h.ServeHTTP(w, benchRequest(key))
		if w.status != http.StatusOK || w.n != 1024 {
			b.Fatalf("got %d with %d bytes; want 200 with 1024", w.status, w.n)
		}
	}
}

// BenchmarkRequestPath is one pass-through request through the whole
// gateway handler, the key served from the auth cache.
func BenchmarkRequestPath(b *testing.B) {
	up := benchUpstream(b)
	h, key := benchGateway(b, up.URL)
	serveBench(b, h, key) // the first request fills the key cache
}

// BenchmarkRequestPathBareReverseProxy is the same forward by a bare
// httputil.ReverseProxy (Rewrite with SetURL) on the gateway's transport.
func BenchmarkRequestPathBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	target, err := url.Parse(up.URL)
	if err != nil {
		b.Fatal(err)
	}
	tr := proxy.NewTransport()
	b.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
	}
	serveBench(b, rp, "sk-unused")
}
