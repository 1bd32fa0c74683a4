package app

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// governanceConfig serves the AI upstream under metered endpoints.
func governanceConfig(up string) string {
	return `
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /openai
      target: ` + up + `
      include_subpath: true
      keyway:
        usage: openai
        input_cost_per_token: 0.000001
        output_cost_per_token: 0.000002
        model_costs:
          gpt-4o-mini: {input_cost_per_token: 0.0000001, output_cost_per_token: 0.0000004}
    - path: /anthropic
      target: ` + up + `
      include_subpath: true
      keyway: {usage: anthropic, input_cost_per_token: 0.000003, output_cost_per_token: 0.000015}
    - path: /flat
      target: ` + up + `/flat
      cost_per_request: 0.01
      keyway: {usage: none}
    - path: /costed
      target: ` + up + `/costed
      cost_per_request: 0.01
keyway:
  key_cache_ttl: 0s
`
}

// do sends one request and returns the response with its body read.
func do(t *testing.T, method, url, key, body string) (*http.Response, string) {
	t.Helper()
	return doH(t, method, url, key, body, nil)
}

// adminCall calls the admin API with the master key and fails the test unless
// it answers 200.
func adminCall(t *testing.T, gw, method, path, body string) map[string]any {
	t.Helper()
	status, out := call(t, method, gw+path, testMaster, body)
	if status != 200 {
		t.Fatalf("%s %s: %d %v", method, path, status, out)
	}
	return out
}

// spendOf reads spend from an info route (/key/info?key=…, /user/info?user_id=…).
func spendOf(t *testing.T, gw, path string) float64 {
	t.Helper()
	out := adminCall(t, gw, "GET", path, "")
	for _, f := range []string{"info", "user_info", "team_info"} {
		if m, ok := out[f].(map[string]any); ok {
			if s, ok := m["spend"].(float64); ok {
				return s
			}
		}
	}
	if s, ok := out["spend"].(float64); ok {
		return s
	}
	t.Fatalf("%s: no spend in %v", path, out)
	return 0
}

func spendLogs(t *testing.T, gw, query string) []map[string]any {
	t.Helper()
	resp, raw := do(t, "GET", gw+"/spend/logs?"+query, testMaster, "")
	if resp.StatusCode != 200 {
		t.Fatalf("/spend/logs?%s: %d %s", query, resp.StatusCode, raw)
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("/spend/logs: %v in %s", err, raw)
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// wantSpend waits for the spend on an info route to reach want exactly: a
// charge is written after the response ended (the client can see the last
// byte of a Content-Length response before it), so it may lag a moment.
func wantSpend(t *testing.T, gw, path string, want float64) {
	t.Helper()
	var got float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got = spendOf(t, gw, path); near(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !near(got, want) {
		t.Errorf("%s: spend %v; want %v", path, got, want)
	}
}

// TestMeteringChargesKeyUserAndTeam: each endpoint's usage is read and
// priced, charged to the key, its user and its team, and recorded.
func TestMeteringChargesKeyUserAndTeam(t *testing.T) {
	up := newAIUpstream(t)
	gw := startGateway(t, governanceConfig(up.URL), nil)
	adminCall(t, gw.URL, "POST", "/team/new", `{"team_id": "t1"}`)
	adminCall(t, gw.URL, "POST", "/user/new", `{"user_id": "u1", "user_role": "internal_user", "teams": ["t1"]}`)
	gen := adminCall(t, gw.URL, "POST", "/key/generate", `{"user_id": "u1", "team_id": "t1"}`)
	key, token := gen["key"].(string), gen["token"].(string)

	calls := []struct {
		path, body string
		cost       float64
	}{
		// dated snapshot priced by its base name: 1000 × 1e-7 + 200 × 4e-7
		{"/openai/v1/chat/completions", `{"model": "gpt-4o-mini-2024-07-18", "messages": []}`, 0.00018},
		// default prices: 1000 × 1e-6 + 200 × 2e-6
		{"/openai/v1/chat/completions", `{"model": "gpt-4o", "messages": []}`, 0.0014},
		// 300 × 3e-6 + 50 × 15e-6
		{"/anthropic/v1/messages", `{"model": "claude", "max_tokens": 100, "messages": []}`, 0.00165},
		{"/flat", `{}`, 0.01},
		// the upstream's x-litellm-response-cost outranks cost_per_request
		{"/costed", `{}`, 0.42},
	}
	var want float64
	for _, c := range calls {
		resp, body := do(t, "POST", gw.URL+c.path, key, c.body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, body)
		}
		want += c.cost
	}
	for _, path := range []string{"/key/info?key=" + key, "/user/info?user_id=u1", "/team/info?team_id=t1"} {
		wantSpend(t, gw.URL, path, want)
	}
	recs := spendLogs(t, gw.URL, "api_key="+token)
	if len(recs) != len(calls) {
		t.Fatalf("/spend/logs: %d records; want %d", len(recs), len(calls))
	}
	var sum float64
	for i, r := range recs {
		sum += r["spend"].(float64)
		if r["call_type"] != "pass_through_endpoint" || r["api_key"] != token || r["user"] != "u1" || r["team_id"] != "t1" || r["status"] != "success" {
			t.Errorf("record %d: %v", i, r)
		}
	}
	if !near(sum, want) {
		t.Errorf("records add up to %v; want %v", sum, want)
	}
	// Newest first: the last call (costed) leads.
	if recs[0]["endpoint"] != "/costed" || recs[0]["usage_source"] != "header" {
		t.Errorf("newest record: %v; want /costed with usage_source header", recs[0])
	}
	anth := recs[2]
	if anth["model"] != "claude-sonnet-4-20250514" || anth["prompt_tokens"].(float64) != 300 || anth["completion_tokens"].(float64) != 50 || anth["total_tokens"].(float64) != 350 {
		t.Errorf("anthropic record: %v", anth)
	}
	if strings.Contains(gw.logText(), key) {
		t.Error("the virtual key appears in the log")
	}
	raw, _ := json.Marshal(recs)
	if strings.Contains(string(raw), key) {
		t.Error("the virtual key appears in a usage record")
	}
	// The access line carries tokens and cost.
	if !strings.Contains(gw.logText(), `"input_tokens":300`) {
		t.Errorf("access log lacks the tokens: %s", gw.logText())
	}
}

// TestStreamUsageInjectedAndStripped: a streamed chat request without
// include_usage gets it upstream, the usage-only chunk is metered and
// removed, and the client sees the stream it would have seen.
func TestStreamUsageInjectedAndStripped(t *testing.T) {
	up := newAIUpstream(t)
	gw := startGateway(t, governanceConfig(up.URL), nil)
	key := newUserKey(t, gw.URL, "streamer")

	resp, got := do(t, "POST", gw.URL+"/openai/v1/chat/completions", key, `{"model": "gpt-4o", "stream": true, "messages": []}`)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d %s", resp.StatusCode, got)
	}
	sent, _ := up.lastBody()
	var req map[string]any
	json.Unmarshal(sent, &req)
	if so, _ := req["stream_options"].(map[string]any); so == nil || so["include_usage"] != true {
		t.Errorf("upstream got %s; want stream_options.include_usage true", sent)
	}
	// What the client would have seen from the upstream without injection.
	_, want := do(t, "POST", up.URL+"/v1/chat/completions", "", `{"model": "gpt-4o", "stream": true, "messages": []}`)
	if got != want {
		t.Errorf("client stream differs from the un-injected stream:\n got %q\nwant %q", got, want)
	}
	recs := spendLogs(t, gw.URL, "")
	if len(recs) != 1 || recs[0]["prompt_tokens"].(float64) != 1000 || recs[0]["completion_tokens"].(float64) != 200 {
		t.Fatalf("records: %v; want one with 1000/200 tokens", recs)
	}
	if !near(recs[0]["spend"].(float64), 0.0014) {
		t.Errorf("spend %v; want 0.0014", recs[0]["spend"])
	}

	// A client that asked for usage itself gets the usage chunk.
	_, own := do(t, "POST", gw.URL+"/openai/v1/chat/completions", key, `{"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}, "messages": []}`)
	if !strings.Contains(own, `"choices":[],"usage"`) {
		t.Errorf("a client that set include_usage lost its usage chunk: %q", own)
	}
}

// TestConcurrentChargesExact: concurrent calls at $0.01 charge exactly
// calls × $0.01 to the key, its user and its team: 100 at once on bbolt, 40
// five at a time on DynamoDB (moto), and /spend/logs pages through them all.
func TestConcurrentChargesExact(t *testing.T) {
	for _, store := range []string{"bolt", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			gws := governanceGateways(t, store, 1)
			gw := gws[0]
			// All 100 at once on bbolt. Moto answers one call at a time
			// (shared/awstest), so on DynamoDB 40 calls run 5 at a time:
			// more only queue in the harness until the SDK's timeouts fire
			// (under -race on a loaded machine), which DynamoDB itself
			// would not do. The ledger's conformance suite runs 100
			// concurrent settles against moto directly.
			calls, inFlight := 100, 100
			if store == "dynamodb" {
				calls, inFlight = 40, 5
			}
			sem := make(chan struct{}, inFlight)
			adminCall(t, gw, "POST", "/team/new", `{"team_id": "t1"}`)
			adminCall(t, gw, "POST", "/user/new", `{"user_id": "u1", "user_role": "internal_user", "teams": ["t1"]}`)
			key := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "u1", "team_id": "t1"}`)["key"].(string)
			if resp, body := do(t, "POST", gw+"/flat", key, `{}`); resp.StatusCode != 200 { // fills the key cache
				t.Fatalf("first call: %d %s", resp.StatusCode, body)
			}
			var wg sync.WaitGroup
			errs := make(chan string, 100)
			for range calls - 1 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					resp, body := do(t, "POST", gw+"/flat", key, `{}`)
					if resp.StatusCode != 200 {
						errs <- fmt.Sprintf("%d %s", resp.StatusCode, body)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Errorf("call failed: %s", e)
			}
			want := float64(calls) / 100 // $0.01 each
			for _, path := range []string{"/key/info?key=" + key, "/user/info?user_id=u1", "/team/info?team_id=t1"} {
				wantSpend(t, gw, path, want)
				if got := spendOf(t, gw, path); got != want {
					t.Errorf("%s: spend %v; want exactly %v", path, got, want)
				}
			}
			n := 0
			cursor := ""
			for {
				resp, raw := do(t, "GET", gw+"/spend/logs?user_id=u1&limit=30&cursor="+cursor, testMaster, "")
				var page []map[string]any
				json.Unmarshal([]byte(raw), &page)
				n += len(page)
				cursor = resp.Header.Get("X-Keyway-Next-Cursor")
				if cursor == "" {
					break
				}
			}
			if n != calls {
				t.Errorf("/spend/logs pages: %d records; want %d", n, calls)
			}
		})
	}
}

// governanceGateways starts n gateways sharing one store: bolt (n must be
// 1: bbolt is single-process) or one DynamoDB table on moto.
func governanceGateways(t *testing.T, store string, n int) []string {
	t.Helper()
	up := newAIUpstream(t)
	cfg := governanceConfig(up.URL)
	if store == "dynamodb" {
		// Keys cached, so moto (one call at a time) serves the ledger.
		cfg = strings.Replace(cfg, "key_cache_ttl: 0s", "key_cache_ttl: 30s", 1)
	}
	if store == "bolt" {
		return []string{startGateway(t, cfg, nil).URL}
	}
	first := startAWSGateway(t, cfg, nil)
	urls := []string{first.URL}
	for range n - 1 {
		env := map[string]string{EnvConfig: "ssm:" + first.param, EnvStore: "dynamodb:" + first.table}
		urls = append(urls, startGatewayEnv(t, env).URL)
	}
	return urls
}

// TestSpendLogsScopedToCaller: an internal user sees only its own keys'
// records and totals, whatever it filters on; a key without a user sees its
// own records; admins see all.
func TestSpendLogsScopedToCaller(t *testing.T) {
	up := newAIUpstream(t)
	gw := startGateway(t, governanceConfig(up.URL), nil).URL
	alice := newUserKey(t, gw, "alice")
	bob := newUserKey(t, gw, "bob")
	service := adminCall(t, gw, "POST", "/key/generate", `{}`)["key"].(string)
	for _, k := range []string{alice, alice, bob, service} {
		if resp, body := do(t, "POST", gw+"/flat", k, `{}`); resp.StatusCode != 200 {
			t.Fatalf("call: %d %s", resp.StatusCode, body)
		}
	}
	wantSpend(t, gw, "/user/info?user_id=bob", 0.01)
	logs := func(key, query string) []map[string]any {
		resp, raw := do(t, "GET", gw+"/spend/logs?"+query, key, "")
		if resp.StatusCode != 200 {
			t.Fatalf("/spend/logs?%s: %d %s", query, resp.StatusCode, raw)
		}
		var out []map[string]any
		json.Unmarshal([]byte(raw), &out)
		return out
	}
	for _, q := range []string{"", "user_id=bob", "api_key=" + bob, "team_id=x"} {
		for _, r := range logs(alice, q) {
			if r["user"] != "alice" {
				t.Errorf("alice with %q sees a record of %v", q, r["user"])
			}
		}
	}
	if n := len(logs(alice, "")); n != 2 {
		t.Errorf("alice sees %d records; want her 2", n)
	}
	if got := logs(service, ""); len(got) != 1 || got[0]["user"] != "" {
		t.Errorf("the service key sees %v; want its one record", got)
	}
	if n := len(logs(testMaster, "")); n != 4 {
		t.Errorf("the master key sees %d records; want 4", n)
	}
	resp, raw := do(t, "GET", gw+"/spend/daily?group_by=user", alice, "")
	if resp.StatusCode != 200 || strings.Contains(raw, "bob") || !strings.Contains(raw, "alice") {
		t.Errorf("alice's /spend/daily by user: %d %s; want only alice", resp.StatusCode, raw)
	}
	if resp, _ := do(t, "GET", gw+"/spend/daily?group_by=team", alice, ""); resp.StatusCode != 403 {
		t.Errorf("alice's /spend/daily by team: %d; want 403", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", gw+"/spend/logs?start_date=yesterday", alice, ""); resp.StatusCode != 400 {
		t.Errorf("a bad start_date: %d; want 400", resp.StatusCode)
	}
}

// TestSoftBudgetAndRegenerate: crossing soft_budget is logged once and
// counted, the calls go through; spend follows a key through
// /key/regenerate (it is kept by the key's stable id).
func TestSoftBudgetAndRegenerate(t *testing.T) {
	up := newAIUpstream(t)
	g := startGateway(t, governanceConfig(up.URL), nil)
	gw := g.URL
	gen := adminCall(t, gw, "POST", "/key/generate", `{"soft_budget": 0.015}`)
	key := gen["key"].(string)
	for range 4 {
		if resp, body := do(t, "POST", gw+"/flat", key, `{}`); resp.StatusCode != 200 {
			t.Fatalf("call over the soft budget: %d %s; want 200", resp.StatusCode, body)
		}
	}
	wantSpend(t, gw, "/key/info?key="+key, 0.04)
	if n := strings.Count(g.logText(), "soft budget crossed"); n != 1 {
		t.Errorf("soft budget warnings logged: %d; want 1", n)
	}
	resp, metrics := do(t, "GET", gw+"/metrics", testMaster, "")
	if resp.StatusCode != 200 || !strings.Contains(metrics, `keyway_soft_budget_crossed_total{kind="key"} 1`) {
		t.Errorf("/metrics: %d; want keyway_soft_budget_crossed_total{kind=\"key\"} 1", resp.StatusCode)
	}

	out := adminCall(t, gw, "POST", "/key/regenerate", `{"key": "`+key+`"}`)
	fresh := out["key"].(string)
	wantSpend(t, gw, "/key/info?key="+fresh, 0.04)
	do(t, "POST", gw+"/flat", fresh, `{}`)
	wantSpend(t, gw, "/key/info?key="+fresh, 0.05)
}

// TestCallerRequestIDCannotSkipCharges: a caller that sends the same
// X-Request-Id on every call is charged for every call (a request's charge
// is keyed by Keyway's own id, never the caller's) and cannot slip past
// rpm_limit.
func TestCallerRequestIDCannotSkipCharges(t *testing.T) {
	up := newAIUpstream(t)
	gw := startGateway(t, governanceConfig(up.URL), nil).URL
	key := adminCall(t, gw, "POST", "/key/generate", `{"rpm_limit": 3}`)["key"].(string)
	awaitFreshMinute()
	var statuses []int
	for range 5 {
		req, _ := http.NewRequest("POST", gw+"/flat", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Request-Id", "same-id-every-time")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if fmt.Sprint(statuses) != "[200 200 200 429 429]" {
		t.Errorf("statuses %v; want 3 admitted then 429s", statuses)
	}
	wantSpend(t, gw, "/key/info?key="+key, 0.03)
	if n := len(spendLogs(t, gw, "")); n != 3 {
		t.Errorf("%d usage records; want 3", n)
	}
}
