package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLocalDevMasterKeyAndSmoke: `make run` on a fresh clone needs nothing
// exported. Started without KEYWAY_MASTER_KEY, the real binary makes a dev
// master key, keeps it in .keyway-dev-master-key (0600), prints it, and
// reuses it on the next start; the smoke check (infra/smoke, as `make smoke`
// runs it with no settings) then passes against it and leaves nothing behind.
func TestLocalDevMasterKeyAndSmoke(t *testing.T) {
	bin := buildGateway(t)
	smokeBin := filepath.Join(t.TempDir(), "smoke")
	if out, err := exec.Command("go", "build", "-o", smokeBin, "../../infra/smoke").CombinedOutput(); err != nil {
		t.Fatalf("building infra/smoke: %v\n%s", err, out)
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/stream") {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"n\":1}\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer upstream.Close()

	dir := t.TempDir() // the "clone": where make run runs
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(configFor(upstream.URL)), 0o600)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWAY_") && !strings.HasPrefix(kv, "MASTER_KEY=") && !strings.HasPrefix(kv, "BASE_URL=") && !strings.HasPrefix(kv, "SMOKE_") {
			env = append(env, kv)
		}
	}
	addr := freeAddr(t)
	env = append(env, "KEYWAY_CONFIG="+cfg, "KEYWAY_STORE=bolt:"+filepath.Join(dir, "keyway.db"), "KEYWAY_ADDR="+addr)

	start := func() (key string, stop func()) {
		cmd := exec.Command(bin)
		cmd.Dir, cmd.Env = dir, env
		stdout, _ := cmd.StdoutPipe()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stop = func() { cmd.Process.Kill(); cmd.Wait() }
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			stop()
			t.Fatalf("no line on stdout: %v; stderr:\n%s", err, stderr.String())
		}
		go io.Copy(io.Discard, stdout)
		i := strings.LastIndex(line, " sk-")
		if i < 0 || !strings.Contains(line, "dev master key") {
			stop()
			t.Fatalf("stdout %q; want the dev master key printed", line)
		}
		for range 300 {
			if resp, err := http.Get("http://" + addr + "/health"); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		return strings.TrimSpace(line[i+1:]), stop
	}

	key, stop := start()
	fi, err := os.Stat(filepath.Join(dir, ".keyway-dev-master-key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("dev master key file mode %04o; want 0600", fi.Mode().Perm())
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/key/list", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the printed key is not the master key: %v %v", resp, err)
	}
	stop()

	again, stop := start()
	defer stop()
	if again != key {
		t.Errorf("second start printed %q; want the same key reused", again)
	}

	smoke := exec.Command(smokeBin)
	smoke.Dir = dir // reads .keyway-dev-master-key from here, like make smoke after make run
	smoke.Env = append(env, "BASE_URL=http://"+addr, "SMOKE_PATH=/v1/ocr/x", "SMOKE_SSE_PATH=/v1/ocr/stream", "SMOKE_REVOKE_WAIT=5s")
	out, err := smoke.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10 passed, 0 failed") {
		t.Fatalf("smoke: %v\n%s", err, out)
	}
	if strings.Contains(string(out), key) {
		t.Errorf("smoke output shows the master key")
	}
	for _, path := range []string{"/user/list", "/key/list"} {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"users":[]`) && !strings.Contains(string(body), `"keys":[]`) {
			t.Errorf("%s after smoke: %s; want empty", path, body)
		}
	}
}
