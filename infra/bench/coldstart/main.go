// Command coldstart measures Lambda cold starts under the AWS Lambda Runtime
// Interface Emulator (RIE) on this machine, with no AWS round trip: for each
// start it launches a fresh RIE with the function's bootstrap, waits until
// the RIE listens (the RIE starts the bootstrap lazily, on the first
// invoke), then times the first invoke — bootstrap exec, Go runtime and
// package init, the function's own init, the first request — and one warm
// invoke after it, and stops the RIE and the bootstrap. It also records the
// RIE's "INIT REPORT(durationMs: …)", the init phase as the RIE sees it.
//
// Functions alternate start by start, so a baseline function (nullfn) sees
// the same machine noise as the one under test.
//
//	coldstart -rie $(go env GOPATH)/bin/aws-lambda-rie -n 20 -event health_event.json \
//	  -fn keyway=bootstrap -fn baseline=nullfn -env KEYWAY_CONFIG=cfg.yaml -out cold.json
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keywaygw/keyway/infra/bench/internal/cli"
)

// Start is one cold start.
type Start struct {
	Label         string  `json:"label"`
	N             int     `json:"n"`
	FirstInvokeMs float64 `json:"first_invoke_ms"`
	WarmInvokeMs  float64 `json:"warm_invoke_ms"`
	InitReportMs  float64 `json:"rie_init_report_ms"`
}

// Summary is one function's medians.
type Summary struct {
	Label            string  `json:"label"`
	Starts           int     `json:"starts"`
	FirstInvokeP50ms float64 `json:"first_invoke_p50_ms"`
	FirstInvokeP90ms float64 `json:"first_invoke_p90_ms"`
	FirstInvokeMaxms float64 `json:"first_invoke_max_ms"`
	WarmInvokeP50ms  float64 `json:"warm_invoke_p50_ms"`
	InitReportP50ms  float64 `json:"rie_init_report_p50_ms"`
}

type envFlag []string

func (e *envFlag) String() string     { return strings.Join(*e, " ") }
func (e *envFlag) Set(v string) error { *e = append(*e, v); return nil }

// running is the process group of the RIE being measured, stopped when
// coldstart itself is interrupted (the RIE has its own group, so a Ctrl-C
// does not reach it).
var running atomic.Int64

func stopOnSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		if pgid := running.Load(); pgid != 0 {
			syscall.Kill(-int(pgid), syscall.SIGKILL)
		}
		os.Exit(130)
	}()
}

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

func main() {
	var fns cli.Targets
	var env envFlag
	flag.Var(&fns, "fn", "label=bootstrap path (repeatable)")
	flag.Var(&env, "env", "NAME=value for the function (repeatable)")
	rie := flag.String("rie", "aws-lambda-rie", "the RIE binary")
	eventFile := flag.String("event", "", "event JSON to invoke with")
	want := flag.String("want", `healthy`, "a string every answer must contain")
	n := flag.Int("n", 20, "cold starts per function")
	warmup := flag.Int("warmup", 1, "unmeasured starts per function first (page cache)")
	out := flag.String("out", "-", "JSON output file")
	logDir := flag.String("log-dir", "", "keep each start's RIE output here")
	flag.Parse()
	stopOnSignal()
	event, err := os.ReadFile(*eventFile)
	if err != nil || len(fns) == 0 {
		log.Fatalf("coldstart: need -event FILE and -fn label=PATH (%v)", err)
	}
	var starts []Start
	for i := 1 - *warmup; i <= *n; i++ {
		for _, fn := range fns {
			s, logs, err := once(*rie, fn.URL, env, event, *want)
			if i < 1 {
				if err != nil {
					log.Fatalf("coldstart: %s warm-up start: %v\n%s", fn.Label, err, logs)
				}
				continue
			}
			if *logDir != "" {
				os.WriteFile(fmt.Sprintf("%s/%s-%02d.log", *logDir, fn.Label, i), logs, 0o644)
			}
			if err != nil {
				log.Fatalf("coldstart: %s start %d: %v\n%s", fn.Label, i, err, logs)
			}
			s.Label, s.N = fn.Label, i
			starts = append(starts, s)
		}
	}
	var sums []Summary
	for _, fn := range fns {
		var first, warm, init []float64
		for _, s := range starts {
			if s.Label == fn.Label {
				first, warm, init = append(first, s.FirstInvokeMs), append(warm, s.WarmInvokeMs), append(init, s.InitReportMs)
			}
		}
		sum := Summary{
			Label: fn.Label, Starts: len(first),
			FirstInvokeP50ms: cli.Percentile(first, 50),
			FirstInvokeP90ms: cli.Percentile(first, 90),
			FirstInvokeMaxms: cli.Percentile(first, 100),
			WarmInvokeP50ms:  cli.Percentile(warm, 50),
			InitReportP50ms:  cli.Percentile(init, 50),
		}
		fmt.Printf("%-9s %d starts: first invoke p50 %.1f ms p90 %.1f ms max %.1f ms; warm invoke p50 %.1f ms; RIE init report p50 %.1f ms\n",
			sum.Label, sum.Starts, sum.FirstInvokeP50ms, sum.FirstInvokeP90ms, sum.FirstInvokeMaxms, sum.WarmInvokeP50ms, sum.InitReportP50ms)
		sums = append(sums, sum)
	}
	if err := cli.WriteJSON(*out, map[string]any{"summary": sums, "starts": starts}); err != nil {
		log.Fatal(err)
	}
}

// lockedBuffer collects the RIE's output from two pipes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

func once(rie, bootstrap string, env []string, event []byte, want string) (Start, []byte, error) {
	invokeAddr, apiAddr := freeAddr(), freeAddr()
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", invokeAddr, "--runtime-api-address", apiAddr, bootstrap)
	cmd.Env = append(os.Environ(), env...)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return Start{}, nil, err
	}
	running.Store(int64(cmd.Process.Pid))
	defer running.Store(0)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		// The RIE and the bootstrap it started share the process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	if err := waitListening(invokeAddr, exited, 10*time.Second); err != nil {
		return Start{}, logs.Bytes(), err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second}
	url := "http://" + invokeAddr + "/2015-03-31/functions/function/invocations"
	first, err := invoke(client, url, event, want)
	if err != nil {
		return Start{}, logs.Bytes(), fmt.Errorf("first invoke: %w", err)
	}
	warm, err := invoke(client, url, event, want)
	if err != nil {
		return Start{}, logs.Bytes(), fmt.Errorf("warm invoke: %w", err)
	}
	s := Start{FirstInvokeMs: ms(first), WarmInvokeMs: ms(warm)}
	b := logs.Bytes()
	if m := initReport.FindSubmatch(b); m != nil {
		s.InitReportMs, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return s, b, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func invoke(client *http.Client, url string, event []byte, want string) (time.Duration, error) {
	start := time.Now()
	resp, err := client.Post(url, "application/json", bytes.NewReader(event))
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(want)) {
		return 0, fmt.Errorf("status %s, body %q; want 200 containing %q", resp.Status, body, want)
	}
	return d, nil
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitListening(addr string, exited <-chan struct{}, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the RIE exited before listening")
		case <-ctx.Done():
			return fmt.Errorf("the RIE did not listen on %s within %v", addr, limit)
		case <-time.After(2 * time.Millisecond):
		}
	}
}
