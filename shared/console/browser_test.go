package console_test

// Real-browser tests of the console: headless Chromium (Debian's chromium)
// driven by chromedp against the real gateway (app.Build: bolt store, file
// config, a real httptest upstream), at the domain root and under an API
// Gateway stage prefix (http.StripPrefix("/prod", …), which is what API
// Gateway does to the path before the function sees it).
//
// Chromium is installed by the test when it is missing and the test runs as
// root (apt-get install -y chromium); otherwise the test fails with the
// reason. -short skips it, saying so.
//
// go test ./shared/console -run Browser -screenshots writes the README's
// screenshots to docs/img/.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/keywaygw/keyway/shared/app"
	"github.com/keywaygw/keyway/shared/console"
)

var screenshots = flag.Bool("screenshots", false, "write the console screenshots to docs/img/")

const (
	masterKey      = "sk-master-console-browser-test-0123456789"
	upstreamSecret = "upstream-secret-never-shown-4242"
	xssAlias       = `<img src=x onerror=alert(1)>`
	costPerRequest = 0.25
	browserBudget  = 4 * time.Minute // the whole test stops by itself after this
)

// chromium finds Chromium, installing Debian's package when it is missing
// and the test may (root, apt-get present).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("chromium is not on PATH and the test is not root, so it cannot install it: run `apt-get install -y chromium` (Debian) first")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Fatalf("chromium is not on PATH and there is no apt-get to install it: install Chromium and put `chromium` on PATH")
	}
	t.Log("chromium is missing: running apt-get install -y chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "chromium")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	out, err := install()
	if err != nil {
		// A fresh machine may have no package lists yet.
		if upd, uerr := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); uerr != nil {
			t.Fatalf("apt-get update failed (%v): %s", uerr, tail(upd))
		}
		if out, err = install(); err != nil {
			t.Fatalf("apt-get install -y chromium failed (%v): %s", err, tail(out))
		}
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("apt-get installed chromium but it is not on PATH: %v", err)
	}
	return p
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// gatewayServer runs the real gateway with one metered endpoint in front of
// a real upstream that answers with OpenAI-style usage.
func gatewayServer(t *testing.T, prefix string) string {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-test","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42}}`)
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/chat
      target: %s
      methods: [POST]
      cost_per_request: %g
      headers:
        Authorization: "Bearer os.environ/UPSTREAM_SECRET"
`, up.URL, costPerRequest)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		app.EnvConfig:       cfg,
		app.EnvStore:        "bolt:" + filepath.Join(dir, "keyway.db"),
		"KEYWAY_MASTER_KEY": masterKey,
		"UPSTREAM_SECRET":   upstreamSecret,
	}
	a, err := app.Build(context.Background(), app.Options{
		Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = a.Handler
	if prefix != "" {
		h = http.StripPrefix(prefix, h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); a.Close() })
	return srv.URL
}

// recorder keeps what the page did that a test must check afterwards.
type recorder struct {
	mu       sync.Mutex
	requests []string
	problems []string // console errors, exceptions, non-network error logs
	dialogs  []string
}

func (r *recorder) add(ctx context.Context) func(ev any) {
	return func(ev any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			r.requests = append(r.requests, e.Request.URL)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				r.problems = append(r.problems, "console."+string(e.Type)+": "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			r.problems = append(r.problems, "exception: "+e.ExceptionDetails.Text+" "+describe(e.ExceptionDetails.Exception))
		case *log.EventEntryAdded:
			// "network" entries are the API's own 4xx answers (a viewer's
			// 403, the master key's 400 from /key/info), which the page shows
			// as messages. Everything else at error level is a fault: CSP
			// violations, security and script errors.
			if e.Entry.Level == log.EntryLevelError && e.Entry.Source != log.EntrySourceNetwork {
				r.problems = append(r.problems, "log "+string(e.Entry.Source)+": "+e.Entry.Text)
			}
		case *page.EventJavascriptDialogOpening:
			r.dialogs = append(r.dialogs, e.Message)
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}

func (r *recorder) snapshot() (req, prob, dlg []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...), append([]string(nil), r.problems...), append([]string(nil), r.dialogs...)
}

// page is one browser tab on one gateway.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string // the gateway as the browser sees it: origin + stage prefix
}

func q(s string) string { b, _ := json.Marshal(s); return string(b) }

func (b *tab) js(expr string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor polls expr until it is truthy; fatal with the page's text if not.
func (b *tab) waitFor(what, expr string) {
	b.t.Helper()
	if err := b.poll(expr, 30*time.Second); err != nil {
		b.t.Fatalf("waiting for %s: %v\npage text: %s", what, err, b.text())
	}
}

// poll waits until expr is truthy; an exception counts as false (the page
// may be between renders), and the wait is bounded twice: by the poll's own
// timeout and by a context a little longer.
func (b *tab) poll(expr string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(b.ctx, d+5*time.Second)
	defer cancel()
	safe := `(function(){try{return (` + expr + `)}catch(e){return false}})()`
	_, err := chromedp.Run(ctx, chromedp.Poll[any](safe, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(50*time.Millisecond)))
	return err
}

func (b *tab) text() string {
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return v
}

func (b *tab) click(sel string) {
	b.t.Helper()
	b.waitFor(sel, `document.querySelector(`+q(sel)+`)`)
	b.js(`document.querySelector(` + q(sel) + `).click()`)
}

// fill sets the open dialog's fields by name and submits its form.
func (b *tab) fillAndSubmit(fields map[string]string) {
	b.t.Helper()
	b.waitFor("a dialog form", `document.querySelector('.dialog form')`)
	for name, v := range fields {
		sel := `.dialog [name="` + name + `"]`
		ok := b.js(`(function(){var e=document.querySelector(` + q(sel) + `); if(!e) return false;
			if (e.type==='checkbox') e.checked = ` + q(v) + `==='true'; else e.value=` + q(v) + `;
			e.dispatchEvent(new Event('input',{bubbles:true})); return true})()`)
		if ok != true {
			b.t.Fatalf("no field %q in the dialog", name)
		}
	}
	b.js(`document.querySelector('.dialog form button[type=submit]').click()`)
}

// rowAct clicks the data-act button of the table row whose cell matches.
func (b *tab) rowAct(rowSel, act string) {
	b.t.Helper()
	sel := rowSel + ` [data-act="` + act + `"]`
	b.click(sel)
}

// keyRow is a selector for the keys table row of alias.
func (b *tab) keyRowToken(alias string) string {
	b.t.Helper()
	expr := `(function(){var r=[...document.querySelectorAll('#view tr[data-token]')].find(function(tr){return tr.querySelector('td.alias').textContent===` + q(alias) + `}); return r ? r.getAttribute('data-token') : ''})()`
	b.waitFor("the key row "+alias, expr)
	tok, _ := b.js(expr).(string)
	return `#view tr[data-token="` + tok + `"]`
}

// secretShown waits for the one-time secret, closes the panel and checks
// that the secret is then nowhere on the page.
func (b *tab) secretShown() string {
	b.t.Helper()
	b.waitFor("the new secret", `document.querySelector('.dialog input.secret')`)
	secret, _ := b.js(`document.querySelector('.dialog input.secret').value`).(string)
	if !strings.HasPrefix(secret, "sk-") {
		b.t.Fatalf("secret panel shows %q; want an sk- key", secret)
	}
	if b.js(`!!document.querySelector('.dialog button.primary') && document.querySelector('.dialog button.primary').textContent`) != "Copy" {
		b.t.Errorf("the secret panel has no Copy button")
	}
	b.js(`[...document.querySelectorAll('.dialog button')].find(function(x){return x.textContent==='Done'}).click()`)
	b.waitFor("the secret to be gone", `!document.querySelector('.dialog input.secret') && ![...document.querySelectorAll('input')].some(function(i){return i.value===`+q(secret)+`}) && !document.documentElement.outerHTML.includes(`+q(secret)+`)`)
	return secret
}

func (b *tab) open(view string) {
	b.t.Helper()
	b.js(`location.hash = '#` + view + `'`)
	b.waitFor("the "+view+" view", `document.getElementById('view').getAttribute('data-view')==='`+view+`' && !document.querySelector('#view .loading')`)
}

func (b *tab) login(key string) {
	b.t.Helper()
	b.waitFor("the login form", `!document.getElementById('login').hidden && document.activeElement && document.activeElement.id==='login-key'`)
	// By keyboard: the key field has focus on load; type and press Enter.
	if err := chromedp.Do(b.ctx, chromedp.KeyEvent(key), chromedp.KeyEvent("\r")); err != nil {
		b.t.Fatal(err)
	}
	b.waitFor("the signed-in console", `document.getElementById('login').hidden && !document.getElementById('nav').hidden && document.getElementById('view').getAttribute('data-view')`)
}

func (b *tab) logout() {
	b.t.Helper()
	b.click("#logout")
	b.waitFor("the login form after logout", `!document.getElementById('login').hidden && document.getElementById('nav').hidden && sessionStorage.getItem('keyway.key')===null && document.getElementById('view').childElementCount===0`)
}

func (b *tab) screenshot(name string) {
	b.t.Helper()
	if !*screenshots {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join("..", "..", "docs", "img", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("wrote %s", path)
}

// api calls the gateway from Go (setup that is not what the test is about).
func api(t *testing.T, base, key, method, path, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	var out map[string]any
	json.Unmarshal(raw, &out)
	return out
}

func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test runs in make test, not with -short")
	}
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting chromium (%s): %v", exe, err)
	}
	// Bounded: whatever happens, the browser is stopped after the budget.
	stop := time.AfterFunc(browserBudget, cancelAlloc)
	defer stop.Stop()

	for _, prefix := range []string{"", "/prod"} {
		name := "root"
		if prefix != "" {
			name = "stage" + strings.ReplaceAll(prefix, "/", "_")
		}
		t.Run(name, func(t *testing.T) { consoleFlows(t, browserCtx, prefix) })
	}
}

func consoleFlows(t *testing.T, browserCtx context.Context, prefix string) {
	origin := gatewayServer(t, prefix)
	base := origin + prefix
	ctx, cancel := chromedp.NewContext(browserCtx) // a new tab
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if err := chromedp.Listen(ctx, rec.add(ctx)); err != nil {
		t.Fatal(err)
	}
	b := &tab{t: t, ctx: ctx, base: base}

	// /ui redirects (relatively) to /ui/, keeping the stage prefix.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui")); err != nil {
		t.Fatal(err)
	}
	if got := b.js(`location.pathname`); got != prefix+"/ui/" {
		t.Fatalf("after /ui the browser is at %v; want %s/ui/", got, prefix)
	}

	// Log in with the master key.
	b.login(masterKey)
	b.waitFor("the keys view", `document.getElementById('view').getAttribute('data-view')==='keys'`)
	b.waitFor("the status line", `document.getElementById('status').textContent.includes('Config: file')`)
	if who := b.js(`document.getElementById('who').textContent`); who != "master key · proxy_admin" {
		t.Errorf("who: %v", who)
	}

	// A user, then a team with the user as a member.
	b.open("users")
	b.click(`[data-act="new-user"]`)
	b.fillAndSubmit(map[string]string{"user_id": "alice", "user_email": "alice@example.com", "user_role": "internal_user", "max_budget": "50"})
	b.waitFor("alice's row", `document.querySelector('#view tr[data-user="alice"]')`)
	b.open("teams")
	b.click(`[data-act="new-team"]`)
	b.fillAndSubmit(map[string]string{"team_id": "team-a", "team_alias": "Team A", "members": "alice", "max_budget": "100"})
	b.waitFor("team-a's row", `document.querySelector('#view tr[data-team="team-a"]')`)
	b.rowAct(`#view tr[data-team="team-a"]`, "members")
	b.waitFor("the member list", `[...document.querySelectorAll('.dialog td')].some(function(td){return td.textContent==='alice'})`)
	b.js(`document.querySelector('.dialog button[aria-label=Close]').click()`)
	// Edit and delete, on users and teams.
	b.rowAct(`#view tr[data-team="team-a"]`, "edit")
	b.fillAndSubmit(map[string]string{"max_budget": "120"})
	b.waitFor("the edited team", `document.querySelector('#view tr[data-team="team-a"]').textContent.includes('$120.00')`)
	b.click(`[data-act="new-team"]`)
	b.fillAndSubmit(map[string]string{"team_id": "team-tmp"})
	b.rowAct(`#view tr[data-team="team-tmp"]`, "delete")
	b.waitFor("the confirmation", `document.querySelector('.dialog button.danger')`)
	b.js(`document.querySelector('.dialog button.danger').click()`)
	b.waitFor("team-tmp to go", `!document.querySelector('#view tr[data-team="team-tmp"]') && document.querySelector('#view tr[data-team="team-a"]')`)
	b.open("users")
	b.rowAct(`#view tr[data-user="alice"]`, "edit")
	b.fillAndSubmit(map[string]string{"user_email": "alice@corp.example"})
	b.waitFor("the edited user", `document.querySelector('#view tr[data-user="alice"]').textContent.includes('alice@corp.example') && document.querySelector('#view tr[data-user="alice"]').textContent.includes('team-a')`)

	// A key with every kind of field; its secret is shown once.
	b.open("keys")
	b.click(`[data-act="new-key"]`)
	b.fillAndSubmit(map[string]string{
		"key_alias": "ci-key", "user_id": "alice", "team_id": "team-a", "duration": "30d",
		"allowed_passthrough_routes": "/v1/chat", "max_budget": "10", "budget_duration": "30d",
		"rpm_limit": "100", "max_parallel_requests": "4", "metadata": `{"owner":"<b>ops</b>"}`,
	})
	first := b.secretShown()
	row := b.keyRowToken("ci-key")
	if got := b.js(`document.querySelector(` + q(row+" td.alias") + `).textContent`); got != "ci-key" {
		t.Errorf("alias cell %v", got)
	}

	// Regenerate with a grace period: a new secret, shown once.
	b.rowAct(row, "regenerate")
	b.fillAndSubmit(map[string]string{"grace_period": "1h"})
	second := b.secretShown()
	if second == first {
		t.Errorf("regenerate showed the same secret")
	}
	row = b.keyRowToken("ci-key")

	// An alias that is HTML stays text and runs nothing.
	b.click(`[data-act="new-key"]`)
	b.fillAndSubmit(map[string]string{"key_alias": xssAlias})
	b.secretShown()
	xssRow := b.keyRowToken(xssAlias)
	if n := b.js(`document.querySelectorAll('#view img, #status img, .dialog img').length`); n != float64(0) {
		t.Errorf("the alias made %v <img> element(s)", n)
	}
	if got := b.js(`document.querySelector(` + q(xssRow+" td.alias") + `).textContent`); got != xssAlias {
		t.Errorf("alias cell text %q; want %q", got, xssAlias)
	}

	// Block it; the row says so and offers Unblock.
	b.rowAct(xssRow, "block")
	b.waitFor("the blocked badge", `(function(){var r=document.querySelector(`+q(xssRow)+`); return r && r.querySelector('.badge').textContent==='blocked' && r.querySelector('[data-act=unblock]')})()`)

	// Edit: a field changes and the table shows it.
	b.rowAct(row, "edit")
	b.fillAndSubmit(map[string]string{"max_budget": "12.5"})
	b.waitFor("the edited budget", `document.querySelector(`+q(row)+`) && document.querySelector(`+q(row)+`).textContent.includes('$12.50')`)

	// Delete with confirmation: a throwaway key.
	b.click(`[data-act="new-key"]`)
	b.fillAndSubmit(map[string]string{"key_alias": "throwaway"})
	b.secretShown()
	b.rowAct(b.keyRowToken("throwaway"), "delete")
	b.waitFor("the confirmation", `document.querySelector('.dialog button.danger')`)
	b.js(`document.querySelector('.dialog button.danger').click()`)
	b.waitFor("the row to go", `![...document.querySelectorAll('#view td.alias')].some(function(td){return td.textContent==='throwaway'})`)

	// Endpoints: read-only, never a header value.
	b.open("endpoints")
	b.waitFor("the endpoint", `document.getElementById('view').textContent.includes('/v1/chat') && document.getElementById('view').textContent.includes('Authorization')`)
	if strings.Contains(b.text(), upstreamSecret) || b.js(`document.documentElement.outerHTML.includes(`+q(upstreamSecret)+`)`) == true {
		t.Errorf("the endpoints view shows the upstream header value")
	}

	// Metered calls with the regenerated key.
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("POST", base+"/v1/chat", strings.NewReader(`{"model":"gpt-test","messages":[]}`))
		req.Header.Set("Authorization", "Bearer "+second)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("metered call %d: status %d", i, resp.StatusCode)
		}
	}
	b.open("keys")
	b.waitFor("ci-key in the list", `document.querySelector(`+q(row)+`)`)
	if prefix == "" {
		b.screenshot("console-keys.png")
	}

	// 375 px wide: nothing wider than the screen but scrollable tables.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(375, 800)); err != nil {
		t.Fatal(err)
	}
	if w := b.js(`document.documentElement.scrollWidth`); w.(float64) > 375 {
		t.Errorf("at 375 px the page is %v px wide", w)
	}
	if prefix == "" {
		b.screenshot("console-keys-375.png")
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// Usage: charts with data after the metered calls (the ledger's
	// /spend/daily and /spend/logs).
	t.Run("usage charts", func(t *testing.T) {
		b := &tab{t: t, ctx: ctx, base: base}
		b.open("usage")
		err := b.poll(`(function(){var c=document.querySelectorAll('#view svg.chart'); return c.length===2 && +c[0].getAttribute('data-bars')>0 && +c[1].getAttribute('data-bars')>0 && document.querySelector('#view .chart-card.wide td') && [...document.querySelectorAll('#view td')].some(function(td){return td.textContent==='ci-key'})})()`, 30*time.Second)
		if err != nil {
			t.Fatalf("no spend and token charts with data after 3 metered calls (/spend/daily, /spend/logs): %v\npage text: %s", err, b.text())
		}
		b.waitFor("the spend log records", `document.querySelectorAll('#view table').length>=2 && document.getElementById('view').textContent.includes('/v1/chat')`)
		if prefix == "" {
			b.screenshot("console-usage.png")
		}
	})

	// Bounded: a settled page makes no further calls (no polling), and
	// opening a view costs a fixed few.
	before, _, _ := rec.snapshot()
	time.Sleep(2 * time.Second)
	if after, _, _ := rec.snapshot(); len(after) != len(before) {
		t.Errorf("an idle page made %d request(s): %q", len(after)-len(before), after[len(before):])
	}
	b.open("keys")
	after, _, _ := rec.snapshot()
	if n := len(after) - len(before); n != 1 {
		t.Errorf("opening the keys view made %d request(s); want 1 (/key/list): %q", n, after[len(before):])
	}

	// A reload keeps the session (sessionStorage) and asks the API again.
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the console after a reload", `document.getElementById('login').hidden && document.getElementById('view').getAttribute('data-view')==='keys' && document.querySelector('#view tr[data-token]')`)

	// Log out: the key is forgotten.
	b.logout()

	// An internal user's key sees only its own keys, and can create them.
	b.login(second)
	b.waitFor("alice's keys", `document.querySelectorAll('#view tr[data-token]').length>0`)
	if who := b.js(`document.getElementById('who').textContent`); who != "alice · internal_user" {
		t.Errorf("who: %v", who)
	}
	aliases := b.js(`[...document.querySelectorAll('#view td.alias')].map(function(td){return td.textContent}).join('|')`)
	if aliases != "ci-key" {
		t.Errorf("alice sees keys %q; want only ci-key", aliases)
	}
	if b.js(`!!document.querySelector('[data-act="new-key"]')`) != true {
		t.Errorf("an internal user cannot create its own keys in the console")
	}
	// Its own spend, charted (the API scopes /spend/daily to the caller).
	t.Run("internal user's usage", func(t *testing.T) {
		b := &tab{t: t, ctx: ctx, base: base}
		b.open("usage")
		if err := b.poll(`+document.querySelector('#view svg.chart').getAttribute('data-bars')>0 && [...document.querySelectorAll('#view td')].some(function(td){return td.textContent==='ci-key'})`, 30*time.Second); err != nil {
			t.Errorf("alice's usage view has no chart of her spend: %v\npage text: %s", err, b.text())
		}
	})
	b.logout()

	// A viewer can change nothing: no write controls.
	r := api(t, base, masterKey, "POST", "/user/new", `{"user_id":"val","user_role":"internal_user_viewer","auto_create_key":true}`)
	viewerKey, _ := r["key"].(string)
	api(t, base, masterKey, "POST", "/key/generate", `{"user_id":"val","key_alias":"val-2"}`)
	b.login(viewerKey)
	b.waitFor("val's keys", `document.querySelectorAll('#view tr[data-token]').length===2`)
	if n := b.js(`document.querySelectorAll('#view [data-act]').length`); n != float64(0) {
		t.Errorf("a viewer sees %v write control(s)", n)
	}
	b.logout()

	// Nothing left the origin, nothing went wrong in the page.
	reqs, problems, dialogs := rec.snapshot()
	for _, u := range reqs {
		// data: URLs are in-memory (Chromium's own date-picker icon), not
		// requests.
		if !strings.HasPrefix(u, origin+"/") && u != "about:blank" && !strings.HasPrefix(u, "data:") {
			t.Errorf("a request left the origin: %s", u)
		}
		if strings.HasPrefix(u, origin+"/x") || strings.HasSuffix(u, "/x") {
			t.Errorf("the HTML alias loaded %s", u)
		}
	}
	if len(reqs) == 0 {
		t.Errorf("recorded no requests at all; the recorder is broken")
	}
	for _, p := range problems {
		t.Errorf("page problem: %s", p)
	}
	for _, d := range dialogs {
		t.Errorf("a dialog opened (script ran): %q", d)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d requests, all to %s", len(reqs), origin)
	t.Log(buf.String())
}

// TestUsageViewRendersTheSpendShapes checks the usage view's drawing
// against the documented /spend/daily and /spend/logs response shapes, from
// a stand-in API, so that the charts are exercised before the metering work
// lands. It is not the end-to-end check: TestConsoleInBrowser's "usage
// charts" makes real metered calls through the gateway.
func TestUsageViewRendersTheSpendShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test runs in make test, not with -short")
	}
	exe := chromium(t)
	today := time.Now().UTC()
	d := func(n int) string { return today.AddDate(0, 0, -n).Format("2006-01-02") }
	var gotLogQueries []string
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.Handle("/ui/", console.New())
	writeJSON := func(w http.ResponseWriter, status int, v string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, v)
	}
	mux.HandleFunc("/key/info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, `{"error":{"message":"key is required: the master key is not a virtual key","type":"bad_request_error","param":"key","code":"400"}}`)
	})
	mux.HandleFunc("/config/pass_through_endpoint", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"endpoints":[{"path":"/v1/chat"}],"keyway_status":{"source":"file x.yaml","loaded_at":"2026-01-01T00:00:00Z","checked_at":"2026-01-01T00:00:00Z"}}`)
	})
	mux.HandleFunc("/key/list", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"keys":[{"token":"tok-a2","token_id":"tid-a","key_alias":"<b>alias-a</b>","key_name":"sk-...aaaa"}],"total_count":1,"current_page":1,"total_pages":1}`)
	})
	mux.HandleFunc("/spend/daily", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("group_by") == "" || r.URL.Query().Get("start_date") == "" {
			writeJSON(w, 400, `{"error":{"message":"group_by is required","type":"bad_request_error","param":"group_by","code":"400"}}`)
			return
		}
		writeJSON(w, 200, fmt.Sprintf(`{"group_by":%q,"start_date":%q,"end_date":%q,"days":[
			{"date":%q,"id":"tid-a","spend":1.5,"requests":3,"prompt_tokens":100,"completion_tokens":50},
			{"date":%q,"id":"tid-b","spend":0.25,"requests":1,"prompt_tokens":10,"completion_tokens":5},
			{"date":%q,"id":"tid-a","spend":0.75,"requests":2,"prompt_tokens":60,"completion_tokens":20}]}`,
			r.URL.Query().Get("group_by"), r.URL.Query().Get("start_date"), r.URL.Query().Get("end_date"), d(2), d(2), d(0)))
	})
	mux.HandleFunc("/spend/logs", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotLogQueries = append(gotLogQueries, r.URL.RawQuery)
		mu.Unlock()
		if r.URL.Query().Get("cursor") == "" {
			w.Header().Set("X-Keyway-Next-Cursor", "c2")
		}
		writeJSON(w, 200, `[{"request_id":"req-<i>1</i>","call_type":"pass_through_endpoint","api_key":"0123456789abcdef0123","spend":0.25,"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"model":"gpt-test","user":"alice","team_id":"team-a","startTime":"2026-03-01T12:00:00Z","endTime":"2026-03-01T12:00:01Z","status":"success","endpoint":"/v1/chat","status_code":200,"usage_source":"response"}]`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	stop := time.AfterFunc(time.Minute, cancelAlloc)
	defer stop.Stop()
	rec := &recorder{}
	if err := chromedp.Listen(ctx, rec.add(ctx)); err != nil {
		t.Fatal(err)
	}
	b := &tab{t: t, ctx: ctx, base: srv.URL}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/ui/#usage")); err != nil {
		t.Fatal(err)
	}
	b.login(masterKey)
	b.waitFor("the usage charts", `(function(){var c=document.querySelectorAll('#view svg.chart'); return c.length===2 && +c[0].getAttribute('data-bars')===2 && +c[1].getAttribute('data-bars')===2})()`)
	// Keys are named by alias (as text), spenders ranked by spend.
	b.waitFor("the top spenders", `[...document.querySelectorAll('#view .chart-card.wide td')].map(function(td){return td.textContent}).join('|').startsWith('<b>alias-a</b>|$2.25|5|')`)
	if n := b.js(`document.querySelectorAll('#view b, #view i').length`); n != float64(0) {
		t.Errorf("markup in data became %v element(s)", n)
	}
	b.waitFor("the log record", `document.getElementById('view').textContent.includes('req-<i>1</i>') && [...document.querySelectorAll('#view button')].some(function(x){return x.textContent==='Older ›'})`)
	b.js(`[...document.querySelectorAll('#view button')].find(function(x){return x.textContent==='Older ›'}).click()`)
	b.waitFor("the older page", `!document.querySelector('#view .loading') && document.getElementById('view').textContent.includes('req-<i>1</i>') && ![...document.querySelectorAll('#view button')].some(function(x){return x.textContent==='Older ›'})`)
	mu.Lock()
	last := gotLogQueries[len(gotLogQueries)-1]
	mu.Unlock()
	if !strings.Contains(last, "cursor=c2") || !strings.Contains(last, "limit=50") {
		t.Errorf("the older page asked %q; want cursor=c2 and limit=50", last)
	}
	_, problems, dialogs := rec.snapshot()
	for _, p := range append(problems, dialogs...) {
		t.Errorf("page problem: %s", p)
	}

	// The recorder sees what the CSP blocks: an injected inline script is
	// refused, runs nothing, and is reported as a problem.
	b.js(`(function(){var s=document.createElement('script'); s.textContent='window.__ran=1'; document.body.appendChild(s)})()`)
	if err := b.poll(`true`, time.Second); err != nil {
		t.Fatal(err)
	}
	if ran := b.js(`window.__ran === 1`); ran != false {
		t.Errorf("an injected inline script ran despite the CSP")
	}
	time.Sleep(200 * time.Millisecond)
	if _, problems, _ = rec.snapshot(); len(problems) != 1 || !strings.Contains(problems[0], "Content Security Policy") {
		t.Errorf("after a CSP violation the recorder has %q; want one CSP problem", problems)
	}
}
