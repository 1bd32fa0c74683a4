package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAttackHugeModelMakesCallsFreeOnDynamoDB: end to end on the DynamoDB
// store (the Lambda deployment). The upstream here behaves like many
// OpenAI-compatible servers: its answer's "model" echoes the request's.
// An ordinary internal_user key holder (budget $10, $0.01 a call) sends a model
// name of 410 KB. Keyway copies it, uncapped, into the usage record; the
// record is written in the same DynamoDB transaction as the budget
// counters and exceeds the 400 KB item limit, so every settle fails
// ("settle failed: charge not recorded"): the key is never charged, its
// budget never runs out, and /spend/logs shows nothing. The same holds for
// any malicious upstream, whatever the caller sends.
func TestAttackHugeModelMakesCallsFreeOnDynamoDB(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model string `json:"model"`
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &req)
		out, _ := json.Marshal(map[string]any{
			"id": "c1", "object": "chat.completion", "model": req.Model, "choices": []any{},
			"usage": map[string]any{"prompt_tokens": 1000, "completion_tokens": 0, "total_tokens": 1000},
		})
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	}))
	t.Cleanup(up.Close)
	cfg := `
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /openai
      target: ` + up.URL + `
      include_subpath: true
      keyway:
        usage: openai
        input_cost_per_token: 0.00001
        output_cost_per_token: 0.00001
keyway:
  key_cache_ttl: 30s
`
	gw := startAWSGateway(t, cfg, nil)
	if status, body := call(t, "POST", gw.URL+"/user/new", testMaster, `{"user_id": "mallory", "user_role": "internal_user", "auto_create_key": false}`); status != 200 {
		t.Fatalf("/user/new: %d %v", status, body)
	}
	status, body := call(t, "POST", gw.URL+"/key/generate", testMaster, `{"user_id": "mallory", "max_budget": 10}`)
	if status != 200 {
		t.Fatalf("/key/generate: %d %v", status, body)
	}
	key := body["key"].(string)

	// Control: an ordinary model name is charged $0.01.
	if resp, rb := do(t, "POST", gw.URL+"/openai/v1/chat/completions", key, `{"model": "gpt-4o", "messages": []}`); resp.StatusCode != 200 {
		t.Fatalf("control call: %d %s", resp.StatusCode, rb)
	}
	wantSpend(t, gw.URL, "/key/info?key="+key, 0.01)

	huge := strings.Repeat("x", 410<<10)
	reqBody := fmt.Sprintf(`{"model": %q, "messages": []}`, huge)
	admitted := 0
	for range 3 {
		resp, rb := do(t, "POST", gw.URL+"/openai/v1/chat/completions", key, reqBody)
		t.Logf("call: %d %.80s", resp.StatusCode, rb)
		if resp.StatusCode == 200 {
			admitted++
		}
		time.Sleep(300 * time.Millisecond) // let the settle (after the response) finish
	}
	spend := spendOf(t, gw.URL, "/key/info?key="+key)
	if admitted != 3 {
		t.Fatalf("%d of 3 calls admitted; want 3 (budget $10)", admitted)
	}
	if !near(spend, 0.04) {
		t.Errorf("1 control + 3 admitted calls at $0.01 each: key spend $%v; want $0.04 (the 410 KB model name made every charge fail)", spend)
	}
	if strings.Contains(gw.logText(), "charge not recorded") {
		t.Logf("the log says: settle failed: charge not recorded")
	}
}
