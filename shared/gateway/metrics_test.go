package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/metrics"
)

func post(t *testing.T, url, key, body string) map[string]any {
	t.Helper()
	resp, out := doBody(t, "POST", url, key, body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

func doBody(t *testing.T, method, url, key, body string) (*http.Response, map[string]any) {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := jsonUnmarshal(raw, &m); err != nil {
		m = map[string]any{"raw": string(raw)}
	}
	return resp, m
}

// scrape fetches /metrics with key and returns the sample lines by their
// "name{labels}" (Prometheus text format).
func scrape(t *testing.T, base, key string) map[string]float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q; want the Prometheus text format", ct)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

func TestMetricsAdminOnly(t *testing.T) {
	h := newHarness(t)
	post(t, h.url+"/user/new", master, `{"user_id":"ops","user_role":"proxy_admin"}`)
	post(t, h.url+"/user/new", master, `{"user_id":"dev","user_role":"internal_user"}`)
	opsKey := post(t, h.url+"/key/generate", master, `{"user_id":"ops"}`)["key"].(string)
	devKey := post(t, h.url+"/key/generate", master, `{"user_id":"dev"}`)["key"].(string)
	svcKey := post(t, h.url+"/key/generate", master, `{}`)["key"].(string)

	for _, tc := range []struct {
		name, key string
		want      int
	}{
		{"no key", "", 401},
		{"unknown key", "sk-not-a-real-key-0000000000000000", 401},
		{"malformed key", "not-a-key", 401},
		{"internal_user key", devKey, 403},
		{"service key", svcKey, 403},
		{"proxy_admin key", opsKey, 200},
		{"master key", master, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := doBody(t, "GET", h.url+"/metrics", tc.key, "")
			if resp.StatusCode != tc.want {
				t.Errorf("GET /metrics with %s: %d %v; want %d", tc.name, resp.StatusCode, body, tc.want)
			}
		})
	}
	if resp, _ := doBody(t, "POST", h.url+"/metrics", master, ""); resp.StatusCode != 405 {
		t.Errorf("POST /metrics: %d; want 405", resp.StatusCode)
	}
	if resp, _ := doBody(t, "GET", h.url+"/metrics/x", master, ""); resp.StatusCode != 404 {
		t.Errorf("GET /metrics/x: %d; want 404", resp.StatusCode)
	}
	// The refusals above are counted by reason.
	s := scrape(t, h.url, master)
	for series, want := range map[string]float64{
		`keyway_denied_total{reason="no_key"}`:                          1,
		`keyway_denied_total{reason="bad_key"}`:                         2,
		`keyway_denied_total{reason="role"}`:                            2,
		`keyway_requests_total{code="401",endpoint="",route="metrics"}`: 3,
		`keyway_requests_total{code="403",endpoint="",route="metrics"}`: 2,
	} {
		if s[series] != want {
			t.Errorf("%s = %v; want %v", series, s[series], want)
		}
	}
	if _, ok := s["go_goroutines"]; !ok {
		t.Errorf("no Go runtime metrics (go_goroutines)")
	}
}

// TestMetricsMoveByExactlyTheRequests sends known requests and checks that
// the counters and histograms moved by exactly that much.
func TestMetricsMoveByExactlyTheRequests(t *testing.T) {
	h := newHarness(t)
	post(t, h.url+"/user/new", master, `{"user_id":"blocked-user"}`)
	key := post(t, h.url+"/key/generate", master, `{}`)["key"].(string)
	blocked := post(t, h.url+"/key/generate", master, `{}`)["key"].(string)
	post(t, h.url+"/key/block", master, `{"key":"`+blocked+`"}`)
	expired := post(t, h.url+"/key/generate", master, `{"duration":"1s"}`)["key"].(string)
	limited := post(t, h.url+"/key/generate", master, `{"allowed_routes":["/other"]}`)["key"].(string)

	before := scrape(t, h.url, master)
	for range 4 {
		if resp, _ := doBody(t, "POST", h.url+"/v1/ocr/infer", key, `{}`); resp.StatusCode != 200 {
			t.Fatalf("pass-through: %d", resp.StatusCode)
		}
		<-h.gotAuth
	}
	for range 3 {
		doBody(t, "POST", h.url+"/v1/ocr/infer", "", `{}`)
	}
	doBody(t, "POST", h.url+"/v1/ocr", blocked, `{}`)
	doBody(t, "POST", h.url+"/v1/ocr", limited, `{}`)
	waitExpired(t, h.url, expired)
	doBody(t, "GET", h.url+"/public/echo", "", "")
	<-h.gotAuth
	// Counted when each handler returns (after its settle): wait for all 10.
	after := scrape(t, h.url, master)
	for i := 0; i < 100 && after[`keyway_request_duration_seconds_count{endpoint="/v1/ocr",route="pass_through"}`]-before[`keyway_request_duration_seconds_count{endpoint="/v1/ocr",route="pass_through"}`] < 10; i++ {
		time.Sleep(50 * time.Millisecond)
		after = scrape(t, h.url, master)
	}

	delta := func(series string) float64 { return after[series] - before[series] }
	for series, want := range map[string]float64{
		`keyway_requests_total{code="200",endpoint="/v1/ocr",route="pass_through"}`:      4,
		`keyway_requests_total{code="401",endpoint="/v1/ocr",route="pass_through"}`:      4, // 3 without a key, 1 expired
		`keyway_requests_total{code="403",endpoint="/v1/ocr",route="pass_through"}`:      2,
		`keyway_requests_total{code="200",endpoint="/public/echo",route="pass_through"}`: 1,
		`keyway_request_duration_seconds_count{endpoint="/v1/ocr",route="pass_through"}`: 10,
		`keyway_upstream_time_to_first_byte_seconds_count{endpoint="/v1/ocr"}`:           4,
		`keyway_denied_total{reason="no_key"}`:                                           3,
		`keyway_denied_total{reason="blocked"}`:                                          1,
		`keyway_denied_total{reason="route"}`:                                            1,
		`keyway_denied_total{reason="expired"}`:                                          1,
		`keyway_denied_total{reason="bad_key"}`:                                          0,
	} {
		if got := delta(series); got != want {
			t.Errorf("%s moved by %v; want %v", series, got, want)
		}
	}
}

// waitExpired calls /v1/ocr with a 1s key until it has expired (once).
func waitExpired(t *testing.T, base, key string) {
	t.Helper()
	for range 40 {
		resp, body := doBody(t, "GET", base+"/key/info?key="+key, master, "")
		if resp.StatusCode != 200 {
			t.Fatalf("key/info: %d %v", resp.StatusCode, body)
		}
		info, _ := body["info"].(map[string]any)
		if exp, _ := info["expires"].(string); exp != "" && expiredAt(exp) {
			if resp, _ := doBody(t, "POST", base+"/v1/ocr", key, `{}`); resp.StatusCode != 401 {
				t.Fatalf("expired key: %d; want 401", resp.StatusCode)
			}
			return
		}
		sleep()
	}
	t.Fatal("key never expired")
}

// TestMetricsLabelsBoundedUnderDistinctPaths sends 10,000 distinct request
// paths (pass-through sub-paths and unknown routes): the series count does
// not grow with them, because labels carry the configured endpoint, never
// the request path.
func TestMetricsLabelsBoundedUnderDistinctPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 requests")
	}
	h := newHarness(t)
	go func() {
		for range h.gotAuth {
		}
	}()
	var wg sync.WaitGroup
	paths := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range paths {
				doBody(t, "POST", h.url+p, master, `{}`)
			}
		}()
	}
	for i := range 10_000 {
		if i%2 == 0 {
			paths <- fmt.Sprintf("/v1/ocr/models/m-%d/infer", i)
		} else {
			paths <- fmt.Sprintf("/unknown/%d", i)
		}
	}
	close(paths)
	wg.Wait()
	// A request is counted when its handler returns, after its settle,
	// which can be a moment after the client read the last byte.
	var s map[string]float64
	for range 100 {
		s = scrape(t, h.url, master)
		var sum float64
		for name, v := range s {
			if strings.HasPrefix(name, "keyway_requests_total{") && !strings.Contains(name, `route="metrics"`) {
				sum += v
			}
		}
		if sum >= 10_000 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	series := 0
	var total float64
	for name, v := range s {
		if strings.HasPrefix(name, "keyway_requests_total{") {
			series++
			total += v
		}
		if strings.Contains(name, "m-") || strings.Contains(name, "/unknown/") {
			t.Fatalf("a request path became a label: %s", name)
		}
	}
	if series > 5 {
		t.Errorf("keyway_requests_total has %d series after 10,000 distinct paths; want ≤ 5", series)
	}
	if total < 10_000 {
		t.Errorf("keyway_requests_total sums to %v; want ≥ 10000", total)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func expiredAt(rfc3339 string) bool {
	ts, err := time.Parse(time.RFC3339Nano, rfc3339)
	return err == nil && time.Now().After(ts)
}

func sleep() { time.Sleep(100 * time.Millisecond) }

// TestEMFAccessLine builds the gateway as under Lambda: each request's one
// access line carries valid EMF members, and /metrics is not served (a
// sandbox cannot be scraped).
func TestEMFAccessLine(t *testing.T) {
	logs := &syncBuffer{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer up.Close()
	url := serveApp(t, "    - path: /v1/ocr\n      target: "+up.URL+"\n      include_subpath: true\n", true, logs)

	doBody(t, "POST", url+"/v1/ocr/x", master, `{}`)
	doBody(t, "POST", url+"/v1/ocr/x", "", `{}`)
	if resp, _ := doBody(t, "GET", url+"/metrics", master, ""); resp.StatusCode != 404 {
		t.Errorf("/metrics under Lambda: %d; want 404", resp.StatusCode)
	}
	var access [][]byte
	for _, l := range strings.Split(strings.TrimSpace(func() string { logs.mu.Lock(); defer logs.mu.Unlock(); return logs.b.String() }()), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			access = append(access, []byte(l))
		}
	}
	if len(access) != 3 {
		t.Fatalf("%d access lines for 3 requests; want 3", len(access))
	}
	for i, want := range []struct{ class, reason string }{{"2xx", ""}, {"4xx", "no_key"}, {"4xx", ""}} {
		doc, err := metrics.CheckEMF(access[i])
		if err != nil {
			t.Fatalf("line %d: %v\n%s", i, err, access[i])
		}
		if doc["StatusClass"] != want.class || doc["Endpoint"] == "" {
			t.Errorf("line %d: StatusClass %v Endpoint %v; want %s", i, doc["StatusClass"], doc["Endpoint"], want.class)
		}
		if r, _ := doc["DenyReason"].(string); r != want.reason {
			t.Errorf("line %d: DenyReason %q; want %q", i, r, want.reason)
		}
	}
}
