package usage

import (
	"encoding/json"
	"strings"
	"testing"
)

// bigResponsesEvent is a Responses API final event whose answer takes it
// over MaxEventBytes, in the API's key order: output (with text that
// mentions "usage"), tools (a schema with a "usage" property), usage, then
// user and metadata.
func bigResponsesEvent(t testing.TB, typ string, eventLine bool, usage any) string {
	t.Helper()
	text := strings.Repeat(`Long answer with "quotes", {braces} and "usage": {"input_tokens": 1}. `, 2000)
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	data := `{"type":` + enc(typ) + `,"sequence_number":4000,"response":{"id":"resp_1","object":"response","status":"completed",` +
		`"instructions":null,"model":"o3-2025-04-16","output":[{"type":"message","content":[{"type":"output_text","text":` + enc(text) + `}]}],` +
		`"tools":[{"type":"function","name":"f","parameters":{"properties":{"usage":{"type":"object","properties":{"input_tokens":{"type":"integer"}}}}}}],` +
		`"usage":` + enc(usage) + `,"user":null,"metadata":{"usage":"x"}}}`
	ev := "data: " + data + "\n\n"
	if eventLine {
		ev = "event: " + typ + "\n" + ev
	}
	return ev
}

func TestMeterSalvagesBigResponsesEvent(t *testing.T) {
	u := map[string]any{"input_tokens": 5210, "input_tokens_details": map[string]any{"cached_tokens": 4096}, "output_tokens": 38000, "total_tokens": 43210}
	found := Usage{Found: true, Source: "openai_responses", Model: "o3-2025-04-16", InputTokens: 5210, OutputTokens: 38000, CachedInputTokens: 4096}
	tests := []struct {
		name string
		body string
		want Usage
	}{
		{"completed with event line", bigResponsesEvent(t, "response.completed", true, u), found},
		{"completed, type in data only", bigResponsesEvent(t, "response.completed", false, u), found},
		{"incomplete", bigResponsesEvent(t, "response.incomplete", true, u), found},
		{"failed", bigResponsesEvent(t, "response.failed", true, u), Usage{Found: true, Source: "openai_responses", Model: "o3-2025-04-16", InputTokens: 5210, OutputTokens: 38000, CachedInputTokens: 4096, Problem: "response ended in an error: usage may be partial"}},
		{"failed without usage", bigResponsesEvent(t, "response.failed", true, nil), Usage{Problem: problemOversize}},
		{"other event type", bigResponsesEvent(t, "response.output_item.done", true, u), Usage{Problem: problemOversize}},
		{"cut before its end", bigResponsesEvent(t, "response.completed", true, u)[:MaxEventBytes+5000], Usage{Problem: problemOversize}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			for _, size := range []int{len(body), 1, 7, 512, 16 << 10, salvageTail + 3} {
				m := NewMeter(FormatAuto, ctSSE)
				for b := body; len(b) > 0; b = b[min(size, len(b)):] {
					m.Write(b[:min(size, len(b))])
				}
				if got := m.Usage(); got != tc.want {
					t.Fatalf("%d-byte writes: got %+v; want %+v", size, got, tc.want)
				}
				if held := cap(m.head) + cap(m.tail); held > salvageHead+2*salvageTail {
					t.Fatalf("%d-byte writes: salvage buffers hold %d bytes", size, held)
				}
			}
		})
	}
	// Under FormatAnthropic a Responses event is not read, big or not.
	if got := meter(FormatAnthropic, ctSSE, []byte(tests[0].body)); got.Found {
		t.Errorf("FormatAnthropic: got %+v; want no usage", got)
	}
}

func TestLastObject(t *testing.T) {
	for data, want := range map[string]string{
		`{"usage":{"a":1},"x":{"usage":{"b":"}"}}}`:   `{"b":"}"}`,
		`"usage":{"a":{"b":[1,{"c":2}]}},"usage":"x"`: `{"a":{"b":[1,{"c":2}]}}`,
		`ge":{"a":1}`:                         "",
		`{"usage":{"a":1},"usage":{"b":`:      "",
		`{"usage":{"a":1},"usage":null}`:      "",
		`{"usage":{"a":1},"m":{"usage":"x"}}`: `{"a":1}`,
		`{"text":"\"usage\":{\"a\":1}"}`:      "",
	} {
		if got := string(lastObject([]byte(data), `"usage"`)); got != want {
			t.Errorf("lastObject(%s): got %s; want %s", data, got, want)
		}
	}
}
