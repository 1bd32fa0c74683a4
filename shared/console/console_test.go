package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	h := New()
	for _, path := range []string{"/ui", "/ui/", "/ui/app.js", "/ui/app.css", "/ui/icon.svg", "/ui/nope.js"} {
		t.Run(path, func(t *testing.T) {
			resp := get(t, h, "GET", path, nil)
			want := map[string]string{
				"Content-Security-Policy": CSP,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q; want %q", k, got, v)
				}
			}
		})
	}
	for _, directive := range []string{"script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'", "default-src 'none'"} {
		if !strings.Contains(CSP, directive) {
			t.Errorf("CSP lacks %q", directive)
		}
	}
	if strings.Contains(CSP, "unsafe-inline") || strings.Contains(CSP, "unsafe-eval") {
		t.Errorf("CSP allows inline script or eval: %s", CSP)
	}
}

func TestRedirectIsRelative(t *testing.T) {
	// Behind an API Gateway stage the browser is at /prod/ui; the function
	// sees /ui. Only a relative Location keeps the stage.
	resp := get(t, New(), "GET", "/ui?x=1", nil)
	if resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("status %d; want 301", resp.StatusCode)
	}
	if got := resp.Header.Get("Location"); got != "ui/?x=1" {
		t.Errorf("Location %q; want %q", got, "ui/?x=1")
	}
}

func TestIndexReferencesVersionedRelativeAssets(t *testing.T) {
	h := New()
	resp := get(t, h, "GET", "/ui/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index Cache-Control %q; want no-cache", cc)
	}
	page := body(t, resp)
	if regexp.MustCompile(`(src|href)="/`).MatchString(page) || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Errorf("index.html has an absolute URL; every URL must be relative")
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]`).MatchString(page) || strings.Contains(page, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(page) {
		t.Errorf("index.html has inline script or an inline event handler")
	}
	m := regexp.MustCompile(`src="\./app\.js\?v=([0-9a-f]{12})"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("index.html does not reference ./app.js?v=<hash>")
	}
	// The versioned URL is immutable; the same file without the version is not.
	resp = get(t, h, "GET", "/ui/app.js?v="+m[1], nil)
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("versioned app.js Cache-Control %q; want immutable", cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("app.js Content-Type %q", ct)
	}
	resp = get(t, h, "GET", "/ui/app.js?v=000000000000", nil)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("stale version Cache-Control %q; want no-cache", cc)
	}
}

func TestETagRevalidation(t *testing.T) {
	h := New()
	resp := get(t, h, "GET", "/ui/app.css", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp = get(t, h, "GET", "/ui/app.css", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d; want 304", resp.StatusCode)
	}
	resp = get(t, h, "HEAD", "/ui/app.css", nil)
	if resp.StatusCode != 200 || body(t, resp) != "" {
		t.Errorf("HEAD: status %d with a body", resp.StatusCode)
	}
}

func TestErrors(t *testing.T) {
	h := New()
	tests := []struct {
		method, path string
		status       int
	}{
		{"POST", "/ui/", http.StatusMethodNotAllowed},
		{"DELETE", "/ui/app.js", http.StatusMethodNotAllowed},
		{"GET", "/ui/missing.js", http.StatusNotFound},
		{"GET", "/ui/../admin.go", http.StatusNotFound},
		{"GET", "/ui/static/app.js", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp := get(t, h, tc.method, tc.path, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d", resp.StatusCode, tc.status)
			}
			if b := body(t, resp); !strings.Contains(b, `"error"`) {
				t.Errorf("body %q; want the error envelope", b)
			}
		})
	}
}

// TestScriptUsesNoHTMLSinks keeps user data out of the HTML parser: the
// script never assigns innerHTML/outerHTML, never calls insertAdjacentHTML,
// document.write or eval.
func TestScriptUsesNoHTMLSinks(t *testing.T) {
	b, err := static.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setAttribute('style'"} {
		if strings.Contains(src, sink) {
			t.Errorf("app.js uses %s", sink)
		}
	}
	src = strings.ReplaceAll(src, "'http://www.w3.org/2000/svg'", "") // the SVG namespace, not a URL fetched
	if regexp.MustCompile(`fetch\(\s*['"]/|['"]https?://`).MatchString(src) {
		t.Errorf("app.js has an absolute URL")
	}
}

// TestEmbeddedSize keeps the console cheap: it adds its files to the binary
// as they are.
func TestEmbeddedSize(t *testing.T) {
	h := New()
	h.once.Do(h.load)
	total := 0
	for _, f := range h.files {
		total += len(f.body)
	}
	if total > 200<<10 {
		t.Errorf("console files are %d bytes; keep them under 200 KiB", total)
	}
}
