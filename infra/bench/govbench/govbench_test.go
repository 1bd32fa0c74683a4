package govbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/app"
	"github.com/keywaygw/keyway/shared/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const master = "sk-bench-master-0123456789abcdef"

// chatJSON is a Chat Completions answer of about 1 KiB.
var chatJSON = []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"` +
	strings.Repeat("word ", 160) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200,"prompt_tokens_details":{"cached_tokens":0}}}`)

// aiUpstream answers chat completions: JSON, or 20 SSE chunks 50 ms apart
// (with the usage chunk when asked) for "stream": true.
func aiUpstream(tb testing.TB) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !bytes.Contains(body, []byte(`"stream": true`)) && !bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(chatJSON)))
			w.Write(chatJSON)
			return
		}
		usage := bytes.Contains(body, []byte(`"include_usage":true`))
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		u := ""
		if usage {
			u = `,"usage":null`
		}
		for range 20 {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token \"},\"finish_reason\":null}]%s}\n\n", u)
			fl.Flush()
			time.Sleep(50 * time.Millisecond)
		}
		if usage {
			fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":20,\"total_tokens\":1020}}\n\n")
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	tb.Cleanup(up.Close)
	return up
}

// config has /metered (usage: openai, token prices) and /plain (usage:
// none) on the same upstream.
func config(up string) string {
	return `general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /metered
      target: ` + up + `
      include_subpath: true
      keyway: {usage: openai, input_cost_per_token: 0.0000025, output_cost_per_token: 0.00001}
    - path: /plain
      target: ` + up + `
      include_subpath: true
      keyway: {usage: none}
`
}

// gateway builds the handler as the binary does, with env added.
func gateway(b *testing.B, up string, env map[string]string) http.Handler {
	b.Helper()
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(config(up)), 0o600); err != nil {
		b.Fatal(err)
	}
	full := map[string]string{app.EnvConfig: cfg, app.EnvStore: "bolt:" + filepath.Join(dir, "keys.db"), "KEYWAY_MASTER_KEY": master}
	for k, v := range env {
		full[k] = v
	}
	a, err := app.Build(context.Background(), app.Options{
		Getenv: func(k string) string { return full[k] },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a.Handler
}

func newKey(b *testing.B, h http.Handler, body string) string {
	b.Helper()
	r := httptest.NewRequest(http.MethodPost, "/key/generate", strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+master)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out struct{ Key string }
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &out) != nil {
		b.Fatalf("/key/generate: %d %s", w.Code, w.Body)
	}
	return out.Key
}

type discard struct {
	h      http.Header
	status int
	n      int
}

func (w *discard) Header() http.Header         { return w.h }
func (w *discard) WriteHeader(code int)        { w.status = code }
func (w *discard) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discard) Flush()                      {}

const chatRequest = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

// serve runs b.N requests and reports CPU per request.
func serve(b *testing.B, h http.Handler, key, path string) {
	b.Helper()
	b.ReportAllocs()
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for b.Loop() {
		r := httptest.NewRequest("POST", path, strings.NewReader(chatRequest))
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("Content-Type", "application/json")
		w := &discard{h: http.Header{}}
		h.ServeHTTP(w, r)
		if w.status != 200 || w.n != len(chatJSON) {
			b.Fatalf("got %d with %d bytes; want 200 with %d", w.status, w.n, len(chatJSON))
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkMetering: metered (usage: openai) versus unmetered (usage: none).
func BenchmarkMetering(b *testing.B) {
	up := aiUpstream(b)
	for _, path := range []string{"/plain/v1/chat/completions", "/metered/v1/chat/completions"} {
		name := strings.Split(path, "/")[1]
		b.Run(name, func(b *testing.B) {
			h := gateway(b, up.URL, nil)
			serve(b, h, newKey(b, h, `{}`), path)
		})
	}
}

// BenchmarkLimitedKey: a key with limits (one admission and one settle in
// DynamoDB) versus one without (the settle only), on moto.
func BenchmarkLimitedKey(b *testing.B) {
	srv := awstest.Start(b)
	_, table := awstest.NewTable(b, srv)
	up := aiUpstream(b)
	env := srv.Env()
	env[app.EnvStore] = "dynamodb:" + table
	h := gateway(b, up.URL, env)
	for _, c := range []struct{ name, key string }{
		{"unlimited", `{}`},
		{"limited", `{"rpm_limit": 1000000, "max_parallel_requests": 100, "max_budget": 1000000}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			serve(b, h, newKey(b, h, c.key), "/metered/v1/chat/completions")
		})
	}
}

// BenchmarkSSEStreams: peak RSS of the gateway binary with 1000 concurrent
// streams, metered and not. One iteration is one round of 1000 streams.
func BenchmarkSSEStreams(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "gateway")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../functions/gateway").CombinedOutput(); err != nil {
		b.Fatalf("building the gateway: %v\n%s", err, out)
	}
	up := aiUpstream(b)
	for _, path := range []string{"/plain/v1/chat/completions", "/metered/v1/chat/completions"} {
		name := strings.Split(path, "/")[1]
		b.Run(name, func(b *testing.B) {
			gw, pid := startBinary(b, bin, up.URL)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 0}}
			for b.Loop() {
				var wg sync.WaitGroup
				var mu sync.Mutex
				failed := 0
				for range 1000 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest("POST", gw+path, strings.NewReader(`{"model":"gpt-4o-mini","stream": true,"messages":[]}`))
						req.Header.Set("Authorization", "Bearer "+master)
						req.Header.Set("Content-Type", "application/json")
						resp, err := client.Do(req)
						if err == nil {
							n := 0
							sc := bufio.NewScanner(resp.Body)
							for sc.Scan() {
								if strings.HasPrefix(sc.Text(), "data: ") {
									n++
								}
							}
							resp.Body.Close()
							if n == 21 {
								return
							}
						}
						mu.Lock()
						failed++
						mu.Unlock()
					}()
				}
				wg.Wait()
				if failed > 0 {
					b.Fatalf("%d of 1000 streams failed or were not 20 chunks and [DONE]", failed)
				}
			}
			b.ReportMetric(peakRSS(b, pid), "peak-RSS-MiB")
		})
	}
}

func startBinary(b *testing.B, bin, up string) (string, int) {
	dir := b.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(config(up)), 0o600)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "KEYWAY_CONFIG="+cfg, "KEYWAY_STORE=bolt:"+filepath.Join(dir, "k.db"),
		"KEYWAY_ADDR="+addr, "KEYWAY_MASTER_KEY="+master)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 200 {
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			return "http://" + addr, cmd.Process.Pid
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatal("gateway did not start")
	return "", 0
}

// peakRSS is a process's VmHWM in MiB.
func peakRSS(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}
