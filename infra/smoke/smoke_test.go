package main

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
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/app"
)

const master = "sk-smoke-test-master-0123456789"

// gateway runs the real gateway (app.Build, bolt store) in front of an
// upstream that answers JSON, and SSE on paths ending in /stream.
func gateway(t *testing.T) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				io.WriteString(w, "data: {\"n\":"+string(rune('0'+i))+"}\n\n")
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte(`
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/ocr
      target: `+up.URL+`
      include_subpath: true
`), 0o600)
	env := map[string]string{
		"KEYWAY_CONFIG":     cfg,
		"KEYWAY_STORE":      "bolt:" + filepath.Join(dir, "k.db"),
		"KEYWAY_MASTER_KEY": master,
	}
	a, err := app.Build(context.Background(), app.Options{
		Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	t.Cleanup(func() { srv.Close(); a.Close() })
	return srv.URL
}

// leftovers lists every user and key in the gateway's store.
func leftovers(t *testing.T, base string) (users, keys int) {
	t.Helper()
	get := func(path string, out any) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+master)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		json.NewDecoder(resp.Body).Decode(out)
	}
	var u struct {
		Users []any `json:"users"`
	}
	var k struct {
		Keys []any `json:"keys"`
	}
	get("/user/list?page_size=100", &u)
	get("/key/list?size=100", &k)
	return len(u.Users), len(k.Keys)
}

func TestSmokePassesAndLeavesNothing(t *testing.T) {
	base := gateway(t)
	// Someone else's user and key: the smoke must leave them alone (and
	// this shows leftovers counts what is there).
	req, _ := http.NewRequest("POST", base+"/key/generate", strings.NewReader(`{"key_alias":"keep-me"}`))
	req.Header.Set("Authorization", "Bearer "+master)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("creating a bystander key: %v %v", resp, err)
	}
	if u, k := leftovers(t, base); u != 0 || k != 1 {
		t.Fatalf("before: %d users, %d keys; want 0 and 1", u, k)
	}
	var out bytes.Buffer
	passed, failed := run(t.Context(), settings{
		BaseURL: base, MasterKey: master, Path: "/v1/ocr/smoke", SSEPath: "/v1/ocr/stream",
		Method: "POST", RevokeWait: 5 * time.Second,
	}, &out)
	t.Log("\n" + out.String())
	if failed != 0 || passed != 10 {
		t.Errorf("%d passed, %d failed; want 10 passed, 0 failed", passed, failed)
	}
	if strings.Contains(out.String(), master) {
		t.Errorf("output shows the master key")
	}
	if u, k := leftovers(t, base); u != 0 || k != 1 {
		t.Errorf("after: %d users and %d keys; want 0 and 1 (the bystander)", u, k)
	}
}

// TestSmokeCleansUpAfterAFailure points the check at a path that is not an
// auth: true endpoint: steps fail, and everything is still deleted.
func TestSmokeCleansUpAfterAFailure(t *testing.T) {
	base := gateway(t)
	var out bytes.Buffer
	_, failed := run(t.Context(), settings{
		BaseURL: base, MasterKey: master, Path: "/not/configured", SSEPath: "/v1/ocr/not-sse",
		Method: "POST", RevokeWait: time.Second,
	}, &out)
	t.Log("\n" + out.String())
	if failed == 0 {
		t.Errorf("no failure reported against a wrong path")
	}
	if !strings.Contains(out.String(), "ok   delete the temporary user") {
		t.Errorf("the user was not cleaned up")
	}
	if u, k := leftovers(t, base); u != 0 || k != 0 {
		t.Errorf("left %d users and %d keys behind; want none", u, k)
	}
}

// TestDevMasterKeyFileIsTheApps: smoke reads the dev master key where `make
// run` (app.DevMasterKeyFile) writes it; the command keeps its own copy of
// the name so as not to link the gateway.
func TestDevMasterKeyFileIsTheApps(t *testing.T) {
	if devMasterKeyFile != app.DevMasterKeyFile {
		t.Errorf("devMasterKeyFile %q; want app.DevMasterKeyFile %q", devMasterKeyFile, app.DevMasterKeyFile)
	}
}
