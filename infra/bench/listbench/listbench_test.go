// Package listbench holds make bench's listing benchmark (issue 13,
// docs/performance.md "Listing keys"): GET /key/list?size=10 through the
// whole gateway handler, in-process, on the bbolt store, with 100 keys and
// with 10,000. Listings are paged in the store (keys.Store.ListKeyPage), so
// the two should cost about the same; the target is 10,000 keys within 2×
// of 100 keys. Each size is measured for the default answer (tokens) and
// for return_full_object=true (records with their spend from the ledger).
//
//	go test -run '^$' -bench . ./infra/bench/listbench
package listbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keywaygw/keyway/shared/app"
)

const master = "sk-bench-master-0123456789abcdef"

// gateway builds the handler as the binary does, on a bbolt store with n
// keys created through /key/generate (spread over 10 users and none).
func gateway(b *testing.B, n int) http.Handler {
	b.Helper()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	config := "general_settings:\n  master_key: os.environ/KEYWAY_MASTER_KEY\nkeyway:\n  max_keys_per_user: 0\n"
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	env := map[string]string{app.EnvConfig: cfg, app.EnvStore: "bolt:" + filepath.Join(dir, "keys.db"), "KEYWAY_MASTER_KEY": master}
	a, err := app.Build(context.Background(), app.Options{
		Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	h := a.Handler
	for u := range 10 {
		call(b, h, http.MethodPost, "/user/new", fmt.Sprintf(`{"user_id":"user-%d","auto_create_key":false}`, u))
	}
	for i := range n {
		body := `{}`
		if i%11 != 10 {
			body = fmt.Sprintf(`{"user_id":"user-%d"}`, i%11)
		}
		call(b, h, http.MethodPost, "/key/generate", body)
	}
	return h
}

// call serves one admin request as the master key and fails on non-200.
func call(b *testing.B, h http.Handler, method, path, body string) []byte {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+master)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

func BenchmarkKeyList(b *testing.B) {
	for _, n := range []int{100, 10000} {
		h := gateway(b, n)
		for _, q := range []struct{ name, query string }{
			{"tokens", ""},
			{"full", "&return_full_object=true"},
		} {
			b.Run(fmt.Sprintf("keys=%d/%s", n, q.name), func(b *testing.B) {
				// Page 1 and a page in the middle: the cost must not grow
				// with the keys either before or after the page.
				paths := []string{"/key/list?size=10" + q.query, fmt.Sprintf("/key/list?size=10&page=%d%s", n/20, q.query)}
				var out struct {
					Keys  []json.RawMessage `json:"keys"`
					Total int               `json:"total_count"`
				}
				if err := json.Unmarshal(call(b, h, http.MethodGet, paths[0], ""), &out); err != nil || len(out.Keys) != 10 || out.Total != n {
					b.Fatalf("%s: %d keys, total %d, %v; want 10 of %d", paths[0], len(out.Keys), out.Total, err, n)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					call(b, h, http.MethodGet, paths[i%2], "")
				}
			})
		}
	}
}
