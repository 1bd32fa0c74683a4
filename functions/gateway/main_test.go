package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/testnet"
)

const master = "sk-e2e-master-0123456789abcdefghij"

// buildGateway compiles this command once per test binary.
func buildGateway(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short skips end-to-end tests of the built binary (make test runs them)")
	}
	bin := filepath.Join(t.TempDir(), "gateway")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("building the gateway: %v", err)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	addr, err := testnet.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

type process struct {
	cmd     *exec.Cmd
	stderr  *lockedBuffer // written by the process while tests read it
	url     string
	exited  chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result, once exited is closed
}

// wait waits for the process to exit and returns cmd.Wait's result.
func (p *process) wait() error {
	<-p.exited
	return p.waitErr
}

// startLocal runs the real gateway binary as a local server and waits for
// /health.
func startLocal(t *testing.T, bin, config string, extraEnv ...string) *process {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		if p := launchLocal(t, bin, dir, cfg, attempt == 3, extraEnv); p != nil {
			return p
		}
	}
}

// launchLocal starts the binary on a fresh address and waits for /health. It
// returns nil when the address was taken before the binary bound it (another
// test binary got there first), unless last.
func launchLocal(t *testing.T, bin, dir, cfg string, last bool, extraEnv []string) *process {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"KEYWAY_CONFIG="+cfg,
		"KEYWAY_STORE=bolt:"+filepath.Join(dir, "keyway.db"),
		"KEYWAY_ADDR="+addr,
		"KEYWAY_MASTER_KEY="+master,
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	p := &process{cmd: cmd, stderr: &lockedBuffer{}, url: "http://" + addr, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.waitErr = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		p.wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.exited:
			if !last && testnet.AddrInUse(p.stderr.String()) {
				t.Logf("the gateway could not bind %s; trying another port", addr)
				return nil
			}
			t.Fatalf("gateway exited before it was healthy; stderr:\n%s", p.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("gateway did not become healthy; stderr:\n%s", p.stderr)
	return nil
}

func configFor(upstream string) string {
	return fmt.Sprintf(`
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/ocr
      target: %s
      include_subpath: true
      forward_headers: true
      auth: true
keyway:
  shutdown_timeout: 5s
`, upstream)
}

// TestAcceptanceScript runs ../shared/acceptance/seed-scenario.sh (the
// black-box script the gateway must pass) against the real binary.
func TestAcceptanceScript(t *testing.T) {
	script, err := filepath.Abs("../../../shared/acceptance/seed-scenario.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Skipf("acceptance script not beside the repository (%v); the same scenario runs as shared/app TestSeedScenario", err)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "the caller's key reached the upstream", http.StatusTeapot)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer upstream.Close()
	gw := startLocal(t, buildGateway(t), configFor(upstream.URL))
	out, err := exec.Command("bash", script, gw.url, master, "/v1/ocr/company/community/nemoretriever-ocr-v1/v1/infer").CombinedOutput()
	if err != nil {
		t.Fatalf("seed-scenario.sh: %v\n%s\ngateway stderr:\n%s", err, out, gw.stderr)
	}
	if !strings.Contains(string(out), "7 passed, 0 failed") {
		t.Errorf("seed-scenario.sh output %q; want 7 passed", out)
	}
}

// TestGracefulShutdown: on SIGTERM an in-flight stream is allowed to finish
// and the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "data: last\n\n")
	}))
	defer upstream.Close()
	defer close(release)
	gw := startLocal(t, buildGateway(t), configFor(upstream.URL))

	req, _ := http.NewRequest("GET", gw.url+"/v1/ocr/stream", nil)
	req.Header.Set("Authorization", "Bearer "+master)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); line != "data: first\n" {
		t.Fatalf("first line %q", line)
	}
	gw.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	// New connections are refused while the stream is still served.
	if _, err := http.Get(gw.url + "/health"); err == nil {
		t.Errorf("a new request was served after SIGTERM")
	}
	release <- struct{}{}
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: last") {
		t.Errorf("in-flight stream was cut: rest %q", rest)
	}
	done := make(chan error, 1)
	go func() { done <- gw.wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; stderr:\n%s", err, gw.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
}

// TestStartupFailsOnInvalidConfig: a config with mistakes stops start-up
// with the whole report and a non-zero exit; nothing is served.
func TestStartupFailsOnInvalidConfig(t *testing.T) {
	bin := buildGateway(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.yaml")
	os.WriteFile(cfg, []byte(`
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: v1/ocr
      target: ftp://x
      include_subpaths: true
    - path: /key/x
      target: https://example.com
`), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "KEYWAY_CONFIG="+cfg, "KEYWAY_STORE=bolt:"+filepath.Join(dir, "k.db"),
		"KEYWAY_ADDR="+freeAddr(t), "KEYWAY_MASTER_KEY="+master)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err == nil || !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("got err %v; want a non-zero exit", err)
	}
	for _, want := range []string{`"v1/ocr"`, "ftp", "include_subpaths", "/key/x"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("start-up report does not mention %s:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), master) {
		t.Errorf("start-up report prints the master key")
	}
}
