// Command echo-upstream is the demo upstream `make run` starts beside the
// gateway: it answers every request with what it received, so the README
// walk-through shows exactly what Keyway forwards (and what it strips). A
// path ending in /stream answers with server-sent events instead.
//
// It reports header names and whether the Authorization it got matches
// DEMO_UPSTREAM_TOKEN, never a header's value.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4001", "listen address")
	flag.Parse()
	token := os.Getenv("DEMO_UPSTREAM_TOKEN")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/stream") {
			stream(w)
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"upstream":          "echo",
			"method":            r.Method,
			"path":              r.URL.EscapedPath(),
			"query":             r.URL.RawQuery,
			"header_names":      names,
			"upstream_token_ok": token != "" && r.Header.Get("Authorization") == "Bearer "+token,
			"body_bytes":        n,
			"body_sha256":       hex.EncodeToString(h.Sum(nil)),
		})
	})
	log.Printf("echo upstream on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	f := http.NewResponseController(w)
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(w, "data: {\"event\": %d, \"sent_at\": %q}\n\n", i, time.Now().Format(time.RFC3339Nano))
		f.Flush()
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
}
