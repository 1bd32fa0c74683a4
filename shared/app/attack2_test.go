package app

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// attackConfig: one token-priced OpenAI-style endpoint (the shape of the
// worked example in docs/metering.md) in front of up.
func attackConfig(up string) string {
	return `
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /openai
      target: ` + up + `
      include_subpath: true
      keyway:
        usage: openai
        input_cost_per_token: 0.0000025
        output_cost_per_token: 0.00001
    - path: /anthropic
      target: ` + up + `
      include_subpath: true
      keyway: {usage: anthropic, input_cost_per_token: 0.000003, output_cost_per_token: 0.000015}
keyway:
  key_cache_ttl: 0s
`
}

// fileUpstream imitates OpenAI's Files API: POST /v1/files stores the
// uploaded bytes, GET /v1/files/file-1/content returns them as they were
// uploaded (what api.openai.com does for batch input/output files).
// POST /v1/chat/completions answers normally with real usage.
func fileUpstream(t *testing.T) *httptest.Server {
	var mu sync.Mutex
	var stored []byte
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == "POST" && r.URL.Path == "/v1/files":
			mu.Lock()
			stored = body
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"file-1","object":"file","bytes":1,"purpose":"batch"}`)
		case r.URL.Path == "/v1/files/file-1/content":
			mu.Lock()
			defer mu.Unlock()
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(stored)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"c","object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":1000}}`)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestAttackClientControlledResponseGivesNegativeSpend shows that any
// response body is metered as usage, including bodies whose content the
// caller chose: an internal user uploads a one-line "file" that looks like
// a chat completion with negative token counts and downloads it through the
// gateway. The meter reads completion_tokens -1e8, the cost is negative,
// and Settle subtracts $1000 from the key's (and user's/team's) spend, so a
// key with max_budget $0.10 can then spend thousands of dollars upstream.
// Negative (and absurd) token counts should be refused by the parser, and
// a negative cost never charged.
func TestAttackClientControlledResponseGivesNegativeSpend(t *testing.T) {
	up := fileUpstream(t)
	gw := startGateway(t, attackConfig(up.URL), nil).URL
	key := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 0.1}`)["key"].(string)
	fake := `{"object":"chat.completion","model":"gpt-4o","usage":{"prompt_tokens":0,"completion_tokens":-100000000}}`
	if resp, body := doH(t, "POST", gw+"/openai/v1/files", key, fake, map[string]string{"Content-Type": "application/jsonl"}); resp.StatusCode != 200 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "GET", gw+"/openai/v1/files/file-1/content", key, ""); resp.StatusCode != 200 {
		t.Fatalf("download: %d %s", resp.StatusCode, body)
	}
	time.Sleep(200 * time.Millisecond)
	if s := spendOf(t, gw, "/key/info?key="+key); s < 0 {
		t.Errorf("key spend is %v after downloading a caller-written file: a negative charge", s)
	}
	// With the budget "refilled", real calls ($0.0125 each) go on far past $0.10.
	ok := 0
	for range 20 {
		if resp, _ := do(t, "POST", gw+"/openai/v1/chat/completions", key, `{"model":"gpt-4o","max_tokens":1000,"messages":[]}`); resp.StatusCode == 200 {
			ok++
		}
	}
	if ok > 8 {
		t.Errorf("%d calls of $0.0125 admitted under max_budget $0.10", ok)
	}
}

// TestAttackHugeUsageOverflowsToNegativeSpend shows that token counts are
// multiplied by prices in float64 and converted to int64 nano-dollars
// without a range check: usage of 9e18 tokens (from a misbehaving upstream,
// or a caller-written file as above) makes FromDollars overflow, and on
// amd64 the conversion yields math.MinInt64: the key's spend becomes about
// -$9.2e9 instead of refusing the number or capping it.
func TestAttackHugeUsageOverflowsToNegativeSpend(t *testing.T) {
	up := fileUpstream(t)
	gw := startGateway(t, attackConfig(up.URL), nil).URL
	key := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 0.1}`)["key"].(string)
	fake := `{"object":"chat.completion","model":"gpt-4o","usage":{"prompt_tokens":9000000000000000000,"completion_tokens":0}}`
	doH(t, "POST", gw+"/openai/v1/files", key, fake, map[string]string{"Content-Type": "application/jsonl"})
	do(t, "GET", gw+"/openai/v1/files/file-1/content", key, "")
	time.Sleep(200 * time.Millisecond)
	if s := spendOf(t, gw, "/key/info?key="+key); s < 0 {
		t.Errorf("key spend is %v after a response claiming 9e18 tokens: int64 overflow", s)
	}
}

// slowUsageUpstream streams a chat completion whose usage chunk (requested
// by the gateway's include_usage injection) comes 2 s after the content,
// as the last event of a long generation does.
func slowUsageUpstream(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for range 50 {
			fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word \"},\"finish_reason\":null}],\"usage\":null}\n\n")
			fl.Flush()
		}
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n")
		fl.Flush()
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":4000}}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(s.Close)
	return s
}

// TestAttackDisconnectBeforeUsageChunkIsFree shows that a streamed OpenAI
// chat call is free when the client hangs up after the last content chunk
// (finish_reason) and before the usage chunk: nothing was metered, the
// call is charged cost_per_request ($0 here), and its reservation is given
// back. The upstream vendor bills the tokens all the same. A key with
// max_budget $0.10 gets 20 full generations (each reserving and worth
// ~$0.04) by doing this every time. A cut stream without usage should be
// charged at least its reservation.
func TestAttackDisconnectBeforeUsageChunkIsFree(t *testing.T) {
	up := slowUsageUpstream(t)
	gw := startGateway(t, attackConfig(up.URL), nil).URL
	key := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 0.1}`)["key"].(string)
	ok := 0
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", gw+"/openai/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","stream":true,"max_tokens":4000,"messages":[]}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == 200 {
			ok++
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.Contains(sc.Text(), `"finish_reason":"stop"`) {
					break // the whole answer is in: hang up
				}
			}
		}
		cancel()
		resp.Body.Close()
		time.Sleep(300 * time.Millisecond) // let the gateway settle the cut stream
	}
	time.Sleep(300 * time.Millisecond)
	if ok > 3 {
		t.Errorf("%d full streamed generations (~$0.0425 each at the upstream) admitted under max_budget $0.10", ok)
	}
	if s := spendOf(t, gw, "/key/info?key="+key); s == 0 {
		t.Errorf("key spend is $0 after %d cut streams", ok)
	}
}

// TestAttackPaddedBodyStreamsUnmetered shows that a caller can switch off
// metering of streamed chat calls: a request body over 1 MiB (here the
// same JSON padded with whitespace between tokens, which costs nothing at
// the upstream) is not inspected, so stream_options.include_usage is not
// added, the upstream sends no usage, and the call is charged
// cost_per_request ($0 on a token-priced endpoint). The reservation (the
// padded length ÷ 4 tokens) is given back at settle, so a key needs only
// budget for one reservation to make unlimited free calls. A request that
// cannot be metered should be charged its reservation (or be refused on
// a budgeted key), and include_usage could be added by streaming the body.
func TestAttackPaddedBodyStreamsUnmetered(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	gw := gws[0]
	key := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 1}`)["key"].(string)
	body := `{"model": "gpt-4o",` + strings.Repeat(" ", 1<<20+100) + `"stream": true, "max_tokens": 200, "messages": []}`
	for range 10 {
		resp, out := do(t, "POST", gw+"/openai/v1/chat/completions", key, body)
		if resp.StatusCode == 429 {
			break // the budget is doing its job
		}
		if resp.StatusCode != 200 || !strings.Contains(out, "Hel") {
			t.Fatalf("%d %s", resp.StatusCode, out)
		}
	}
	time.Sleep(300 * time.Millisecond)
	// Each call is 1000 prompt + 200 completion tokens upstream: $0.0014.
	if s := spendOf(t, gw, "/key/info?key="+key); s == 0 {
		t.Errorf("key spend is $0 after 10 streamed calls with padded bodies: metering was switched off by the caller")
	}
}

// nUpstream answers chat completions with n choices of max_tokens tokens
// each, as OpenAI does for "n": usage.completion_tokens = n × max_tokens.
// It holds each answer 500 ms so that concurrent calls overlap.
func nUpstream(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			N         int64 `json:"n"`
			MaxTokens int64 `json:"max_tokens"`
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &req)
		if req.N < 1 {
			req.N = 1
		}
		time.Sleep(500 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"c","object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":%d}}`, req.N*req.MaxTokens)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestAttackNChoicesOvershootsBudget shows that the reservation ignores
// "n" (and legacy completions' best_of): a request for n = 128 choices of
// max_tokens 1000 reserves 1000 output tokens ($0.01) but costs 128 000
// ($1.28). docs/limits.md promises that with max_tokens in every request
// and text prompts the budget is not overshot; 10 such concurrent calls on
// a key with max_budget $0.10 are all admitted and spend $12.80, 128 times
// the budget. The estimate should multiply the output by n (and best_of).
func TestAttackNChoicesOvershootsBudget(t *testing.T) {
	up := nUpstream(t)
	gw := startGateway(t, attackConfig(up.URL), nil).URL
	key := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 0.1}`)["key"].(string)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do(t, "POST", gw+"/openai/v1/chat/completions", key, `{"model":"gpt-4o","n":128,"max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`)
		}()
	}
	wg.Wait()
	time.Sleep(300 * time.Millisecond)
	if s := spendOf(t, gw, "/key/info?key="+key); s > 0.1+1e-9 {
		t.Errorf("key spend $%v with max_budget $0.10 and max_tokens in every request", s)
	}
}

// bigJSONUpstream answers POST /v1/embeddings like OpenAI does for a batch
// of inputs with encoding_format "float": a JSON body of a few MiB of
// numbers with the usage at its end.
func bigJSONUpstream(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[`)
		for i := range 200 {
			if i > 0 {
				fmt.Fprint(w, ",")
			}
			fmt.Fprintf(w, `{"object":"embedding","index":%d,"embedding":[`, i)
			fmt.Fprint(w, strings.TrimSuffix(strings.Repeat("-0.0123456789012345,", 1536), ","))
			fmt.Fprint(w, "]}")
		}
		fmt.Fprint(w, `],"model":"text-embedding-3-small","usage":{"prompt_tokens":1600000,"total_tokens":1600000}}`)
	}))
	t.Cleanup(s.Close)
	return s
}

// TestAttackLargeJSONResponseIsFree shows that a non-streamed response over
// 4 MiB is not metered at all (the meter drops the body and gives up), so
// the call is charged cost_per_request, $0 on a token-priced endpoint. The
// caller decides the size: a batch of embeddings with encoding_format
// float (here 200 × 1536 floats, 6 MiB, 1.6 M input tokens = $4), or a chat
// completion with logprobs/top_logprobs 20 (about 1 KiB per output token).
// The usage sits at the end of the body, where it could be read from a
// bounded tail as salvage.go does for SSE; failing that, the reservation
// should be charged.
func TestAttackLargeJSONResponseIsFree(t *testing.T) {
	up := bigJSONUpstream(t)
	gw := startGateway(t, attackConfig(up.URL), nil).URL
	key := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 1}`)["key"].(string)
	resp, body := do(t, "POST", gw+"/openai/v1/embeddings", key, `{"model":"text-embedding-3-small","input":["a","b"],"encoding_format":"float"}`)
	if resp.StatusCode != 200 || len(body) < 4<<20 {
		t.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
	}
	time.Sleep(300 * time.Millisecond)
	if s := spendOf(t, gw, "/key/info?key="+key); s == 0 {
		t.Errorf("key spend $0 after an embedding call of 1.6 M tokens ($4) on a $1 budget")
	}
}

// slowAnthropicUpstream streams an Anthropic message: message_start (input
// 1000, output 1), 50 text deltas, content_block_stop, then, 2 s later,
// message_delta with the output count (4000) and message_stop.
func slowAnthropicUpstream(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		fmt.Fprint(w, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4\",\"content\":[],\"usage\":{\"input_tokens\":1000,\"output_tokens\":1}}}\n\n")
		fmt.Fprint(w, "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
		for range 50 {
			fmt.Fprint(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word \"}}\n\n")
			fl.Flush()
		}
		fmt.Fprint(w, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
		fl.Flush()
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		fmt.Fprint(w, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":4000}}\n\n")
		fmt.Fprint(w, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	}))
	t.Cleanup(s.Close)
	return s
}

// TestAttackAnthropicDisconnectBeforeMessageDelta shows the Anthropic side
// of the cut-stream hole: docs/metering.md says a client that disconnects
// mid-stream is charged "the input tokens and the output so far", but the
// output count only arrives in message_delta at the end, so a client that
// hangs up after content_block_stop is charged message_start's
// output_tokens (1) however much text it received: here $0.003015 instead
// of $0.063 per call.
func TestAttackAnthropicDisconnectBeforeMessageDelta(t *testing.T) {
	up := slowAnthropicUpstream(t)
	gw := startGateway(t, attackConfig(up.URL), nil).URL
	key := adminCall(t, gw, "POST", "/key/generate", `{}`)["key"].(string)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", gw+"/anthropic/v1/messages",
		strings.NewReader(`{"model":"claude-sonnet-4","stream":true,"max_tokens":4000,"messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "content_block_stop") {
			break
		}
	}
	cancel()
	resp.Body.Close()
	time.Sleep(500 * time.Millisecond)
	if s := spendOf(t, gw, "/key/info?key="+key); s < 0.01 {
		t.Errorf("key spend $%v for a cut stream that delivered the whole answer (1000 in, ~4000 out: $0.063)", s)
	}
}
