package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// aiUpstream is a real HTTP server that answers in the shapes the OpenAI
// and Anthropic APIs send, and records what it received.
//
//	POST /v1/chat/completions   OpenAI chat: JSON, or SSE when "stream": true
//	                            (with a usage chunk only when include_usage)
//	POST /v1/messages           Anthropic Messages JSON
//	ANY  /flat                  {"ok": true}; ?sleep=MS holds the response
//	ANY  /costed                {"ok": true} with x-litellm-response-cost: 0.42
type aiUpstream struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	last  []byte // the last request body
	lastH http.Header
}

func newAIUpstream(t *testing.T) *aiUpstream {
	u := &aiUpstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *aiUpstream) lastBody() ([]byte, http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.lastH
}

func (u *aiUpstream) serve(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.last, u.lastH = body, r.Header.Clone()
	u.mu.Unlock()
	if ms, err := strconv.Atoi(r.URL.Query().Get("sleep")); err == nil {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
		var req struct {
			Model         string `json:"model"`
			Stream        bool   `json:"stream"`
			StreamOptions *struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		json.Unmarshal(body, &req)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":200,"total_tokens":1200}}`, req.Model)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i, tok := range []string{"Hel", "lo"} {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":null}]%s}\n\n", req.Model, tok, usageNull(req.StreamOptions != nil && req.StreamOptions.IncludeUsage))
			fl.Flush()
			_ = i
		}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":1000,\"completion_tokens\":200,\"total_tokens\":1200}}\n\n", req.Model)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	case strings.HasSuffix(r.URL.Path, "/v1/messages"):
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":300,"output_tokens":50}}`)
	case strings.HasSuffix(r.URL.Path, "/costed"):
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-litellm-response-cost", "0.42")
		w.Header().Set("x-ratelimit-remaining-requests", "999")
		fmt.Fprint(w, `{"ok": true}`)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-ratelimit-remaining-requests", "999")
		fmt.Fprint(w, `{"ok": true}`)
	}
}

func usageNull(included bool) string {
	if included {
		return `,"usage":null`
	}
	return ""
}
