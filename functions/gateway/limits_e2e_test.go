package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
)

// TestKilledInstanceFreesItsSlot: a gateway process killed with SIGKILL in
// the middle of a request cannot hold its max_parallel_requests slot for
// long: another instance sharing the DynamoDB table admits again within
// 60 s (the lease expires; the refusal path reclaims it).
func TestKilledInstanceFreesItsSlot(t *testing.T) {
	bin := buildGateway(t)
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Query().Get("hang") != "" {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer upstream.Close()
	cfg := configFor(upstream.URL)
	env := []string{"KEYWAY_STORE=dynamodb:" + table}
	for k, v := range srv.Env() {
		env = append(env, k+"="+v)
	}
	a := startLocal(t, bin, cfg, env...)
	b := startLocal(t, bin, cfg, env...)

	key := generateKey(t, a.url, `{"max_parallel_requests": 1}`)
	go func() {
		req, _ := http.NewRequest("POST", a.url+"/v1/ocr/x?hang=1", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	// Wait until a's request holds the slot.
	deadline := time.Now().Add(30 * time.Second)
	for st := status(t, b.url, key); st != http.StatusTooManyRequests; st = status(t, b.url, key) {
		if time.Now().After(deadline) {
			t.Fatalf("the hanging request never took the slot (b answers %d); a:\n%s\nb:\n%s", st, a.stderr, b.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	a.wait()
	killed := time.Now()
	for status(t, b.url, key) != http.StatusOK {
		if time.Since(killed) > 60*time.Second {
			t.Fatalf("the killed instance's slot is still held after 60 s; stderr of b:\n%s", b.stderr)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("slot freed %v after SIGKILL", time.Since(killed).Round(100*time.Millisecond))
}

func generateKey(t *testing.T, url, body string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/key/generate", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+master)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Key string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/key/generate: %d %v", resp.StatusCode, err)
	}
	return out.Key
}

func status(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v1/ocr/x", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(fmt.Errorf("calling %s: %w", url, err))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
