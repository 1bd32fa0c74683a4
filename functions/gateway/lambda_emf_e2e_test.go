package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/metrics"
)

// TestLambdaAccessLineIsEMF: under the emulator, the real bootstrap writes
// one access line per request, and that line is also a valid CloudWatch EMF
// document (namespace Keyway, every dimension key a top-level member, ≤ 30
// dimensions per set, ≤ 100 metrics), with the request's status class,
// endpoint and denial reason. CloudWatch Logs extracts the metrics from the
// log group; the function makes no metrics API call.
func TestLambdaAccessLineIsEMF(t *testing.T) {
	e := newLambdaEnv(t, "stream")
	f := e.fns["stream"]
	p := lambdaPaths[0]
	post := apiRequest{Method: "POST", Path: lambdaSeedRoute, Body: []byte(lambdaSeedBody)}.with("Content-Type", "application/json")

	before := accessLines(t, f.logs.String())
	if r := e.call(t, p, post.with(bearer(e.master)...)); r.Status != http.StatusOK {
		t.Fatalf("master key: %d", r.Status)
	}
	wantEnvelope(t, "no key", e.call(t, p, post), http.StatusUnauthorized)
	wantEnvelope(t, "unknown key", e.call(t, p, post.with(bearer("sk-not-a-real-key-0000000000000000")...)), http.StatusUnauthorized)

	lines := waitAccessLines(t, f, len(before)+3)[len(before):]
	if len(lines) != 3 {
		t.Fatalf("got %d access lines for 3 requests; want one each", len(lines))
	}
	want := []struct {
		status, denied string
	}{{"2xx", ""}, {"4xx", "no_key"}, {"4xx", "bad_key"}}
	for i, line := range lines {
		doc, err := metrics.CheckEMF(line)
		if err != nil {
			t.Errorf("access line %d is not valid EMF: %v\n%s", i, err, line)
			continue
		}
		if len(doc) > 40 {
			t.Errorf("access line %d has %d members; keep it short", i, len(doc))
		}
		ns := doc["_aws"].(map[string]any)["CloudWatchMetrics"].([]any)[0].(map[string]any)["Namespace"]
		if ns != "Keyway" || doc["Requests"] != float64(1) || doc["Endpoint"] != "/v1/ocr" || doc["StatusClass"] != want[i].status {
			t.Errorf("access line %d: namespace %v, Requests %v, Endpoint %v, StatusClass %v; want Keyway, 1, /v1/ocr, %s",
				i, ns, doc["Requests"], doc["Endpoint"], doc["StatusClass"], want[i].status)
		}
		if got, _ := doc["DenyReason"].(string); got != want[i].denied {
			t.Errorf("access line %d: DenyReason %q; want %q", i, got, want[i].denied)
		}
		if _, ok := doc["Latency"].(float64); !ok {
			t.Errorf("access line %d has no Latency", i)
		}
	}
	e.checkNoSecrets(t)
}

// accessLines returns the function's access lines (JSON, msg "request").
func accessLines(t *testing.T, out string) [][]byte {
	t.Helper()
	var lines [][]byte
	for _, l := range strings.Split(out, "\n") {
		i := strings.IndexByte(l, '{')
		if i < 0 || !strings.Contains(l, `"msg":"request"`) {
			continue
		}
		var probe map[string]any
		if json.Unmarshal([]byte(l[i:]), &probe) != nil {
			continue // another process's line that merely mentions it
		}
		lines = append(lines, bytes.Clone([]byte(l[i:])))
	}
	return lines
}

// waitAccessLines waits for at least n access lines: the function writes
// its line as the response completes, which may be just after the invoke
// returns.
func waitAccessLines(t *testing.T, f *lambdaFunc, n int) [][]byte {
	t.Helper()
	for range 50 {
		if lines := accessLines(t, f.logs.String()); len(lines) >= n {
			return lines
		}
		sleepBriefly()
	}
	t.Fatalf("fewer than %d access lines; output:\n%s", n, f.logs)
	return nil
}

func sleepBriefly() { time.Sleep(100 * time.Millisecond) }
