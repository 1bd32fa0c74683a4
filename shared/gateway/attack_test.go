package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keywaygw/keyway/shared/metrics"
)

// TestAttackHugeUpstreamModelBloatsEMFAccessLine: a malicious (or broken)
// upstream controls the "model" member of its usage-bearing JSON answer.
// Keyway copies it, uncapped, into the access line (the "model" attribute)
// — the very line that under Lambda also carries the EMF document. One
// response with a 300 KB model name makes a single access line larger than
// CloudWatch Logs' 256 KB event limit, so CloudWatch truncates/splits the
// event: the JSON (and with it the EMF metrics, including Requests and
// Cost for that request) is lost. The Prometheus side caps model labels at
// 128 bytes; the access line has no cap at all.
func TestAttackHugeUpstreamModelBloatsEMFAccessLine(t *testing.T) {
	huge := strings.Repeat("m", 410<<10) // also over DynamoDB's 400 KB item limit: see dynamostore TestAttackHugeModelNameMakesSettleFail
	logs := &syncBuffer{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"x","object":"chat.completion","model":"` + huge + `","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`))
	}))
	defer up.Close()
	url := serveApp(t, "    - path: /v1/chat\n      target: "+up.URL+"\n      include_subpath: true\n      keyway:\n        usage: openai\n", true, logs)

	resp, _ := doBody(t, "POST", url+"/v1/chat/completions", master, `{}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	logs.mu.Lock()
	all := logs.b.String()
	logs.mu.Unlock()
	var line string
	for _, l := range strings.Split(strings.TrimSpace(all), "\n") {
		if strings.Contains(l, `"msg":"request"`) {
			line = l
		}
	}
	if line == "" {
		t.Fatal("no access line")
	}
	if _, err := metrics.CheckEMF([]byte(line)); err != nil {
		t.Fatalf("EMF invalid: %v", err)
	}
	const cloudWatchMaxEvent = 256*1024 - 26 // CloudWatch Logs PutLogEvents per-event limit
	if len(line) > cloudWatchMaxEvent {
		t.Errorf("one request's access/EMF line is %d bytes (> %d, CloudWatch's event limit): an upstream-chosen model name is logged uncapped and the EMF document is lost", len(line), cloudWatchMaxEvent)
	}
	if strings.Contains(line, huge[:4096]) {
		t.Errorf("the upstream-controlled model name is copied verbatim (%d bytes) into the access line; want it capped like the metric label (128 bytes)", len(huge))
	}
}

// TestAttackMetricsIgnoresAllowedRoutes: allowed_routes "restricts every
// route, as in LiteLLM" (auth.Authorize) and is enforced on admin
// routes — but the /metrics branch returns before it. A proxy_admin user's
// key that the operator confined to one pass-through endpoint
// (allowed_routes: ["/v1/ocr"]) is refused on the admin API yet can still
// scrape gateway-wide metrics (traffic per endpoint, spend, denial counts).
func TestAttackMetricsIgnoresAllowedRoutes(t *testing.T) {
	h := newHarness(t)
	post(t, h.url+"/user/new", master, `{"user_id":"ops","user_role":"proxy_admin"}`)
	limited := post(t, h.url+"/key/generate", master, `{"user_id":"ops","allowed_routes":["/v1/ocr"]}`)["key"].(string)

	// The restriction works on the admin API...
	if resp, body := doBody(t, "GET", h.url+"/key/list", limited, ""); resp.StatusCode != 403 {
		t.Fatalf("GET /key/list with a key limited to /v1/ocr: %d %v; want 403 (baseline)", resp.StatusCode, body)
	}
	// ...but not on /metrics.
	if resp, _ := doBody(t, "GET", h.url+"/metrics", limited, ""); resp.StatusCode != 403 {
		t.Errorf("GET /metrics with a key whose allowed_routes is [/v1/ocr]: %d; want 403 (allowed_routes must apply to /metrics too)", resp.StatusCode)
	}
}
