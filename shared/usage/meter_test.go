package usage

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	ctSSE  = "text/event-stream; charset=utf-8"
	ctJSON = "application/json"
)

// fixtures are responses in the shapes the vendors send (testdata/), with
// the Usage each must give.
var fixtures = []struct {
	file   string
	format Format
	want   Usage
}{
	// OpenAI Chat Completions.
	{"openai_chat.json", FormatAuto, Usage{Found: true, Source: "openai_chat", Model: "gpt-4.1-2025-04-14", InputTokens: 2006, OutputTokens: 10, CachedInputTokens: 1920}},
	{"openai_chat.json", FormatOpenAI, Usage{Found: true, Source: "openai_chat", Model: "gpt-4.1-2025-04-14", InputTokens: 2006, OutputTokens: 10, CachedInputTokens: 1920}},
	{"openai_chat.json", FormatAnthropic, Usage{Problem: "no usage in response"}},
	{"openai_chat_stream_usage.sse", FormatAuto, Usage{Found: true, Source: "openai_chat", Model: "gpt-4o-2024-08-06", InputTokens: 2006, OutputTokens: 10, CachedInputTokens: 1920}},
	{"openai_chat_stream_usage.sse", FormatOpenAI, Usage{Found: true, Source: "openai_chat", Model: "gpt-4o-2024-08-06", InputTokens: 2006, OutputTokens: 10, CachedInputTokens: 1920}},
	{"openai_chat_stream_choices_null.sse", FormatAuto, Usage{Found: true, Source: "openai_chat", Model: "gpt-4o-2024-08-06", InputTokens: 2006, OutputTokens: 10, CachedInputTokens: 1920}},
	{"openai_chat_stream_nousage.sse", FormatAuto, Usage{Problem: "no usage in response"}},
	{"openai_chat_stream_usage.filtered.sse", FormatOpenAI, Usage{Problem: "no usage in response"}},
	{"openai_chat_stream_error.sse", FormatAuto, Usage{Problem: "upstream error: no usage in response"}},
	// Legacy completions and embeddings.
	{"openai_completions.json", FormatAuto, Usage{Found: true, Source: "openai_completions", Model: "gpt-3.5-turbo-instruct", InputTokens: 5, OutputTokens: 7}},
	{"openai_completions_stream_usage.sse", FormatOpenAI, Usage{Found: true, Source: "openai_completions", Model: "gpt-3.5-turbo-instruct", InputTokens: 5, OutputTokens: 7}},
	{"openai_embeddings.json", FormatAuto, Usage{Found: true, Source: "openai_embeddings", Model: "text-embedding-3-small", InputTokens: 5}},
	{"openai_error.json", FormatOpenAI, Usage{Problem: "upstream error: no usage in response"}},
	// OpenAI Responses.
	{"openai_responses.json", FormatAuto, Usage{Found: true, Source: "openai_responses", Model: "gpt-4.1-2025-04-14", InputTokens: 328, OutputTokens: 52, CachedInputTokens: 256}},
	{"openai_responses_stream_completed.sse", FormatAuto, Usage{Found: true, Source: "openai_responses", Model: "gpt-4.1-2025-04-14", InputTokens: 37, OutputTokens: 11}},
	{"openai_responses_stream_completed.sse", FormatAnthropic, Usage{Problem: "no usage in response"}},
	{"openai_responses_stream_incomplete.sse", FormatOpenAI, Usage{Found: true, Source: "openai_responses", Model: "gpt-4.1-2025-04-14", InputTokens: 1290, OutputTokens: 16, CachedInputTokens: 1024}},
	{"openai_responses_stream_failed.sse", FormatAuto, Usage{Found: true, Source: "openai_responses", Model: "gpt-4.1-2025-04-14", InputTokens: 37, Problem: "response ended in an error: usage may be partial"}},
	{"openai_responses_stream_failed_nousage.sse", FormatAuto, Usage{Problem: "upstream error: no usage in response"}},
	// Anthropic Messages.
	{"anthropic_message.json", FormatAuto, Usage{Found: true, Source: "anthropic_messages", Model: "claude-sonnet-4-5-20250929", InputTokens: 2095 + 1500, OutputTokens: 503, CachedInputTokens: 3000}},
	{"anthropic_message.json", FormatAnthropic, Usage{Found: true, Source: "anthropic_messages", Model: "claude-sonnet-4-5-20250929", InputTokens: 2095 + 1500, OutputTokens: 503, CachedInputTokens: 3000}},
	{"anthropic_message.json", FormatOpenAI, Usage{Problem: "no usage in response"}},
	{"anthropic_stream.sse", FormatAuto, Usage{Found: true, Source: "anthropic_messages", Model: "claude-sonnet-4-5-20250929", InputTokens: 25, OutputTokens: 15}},
	{"anthropic_stream.sse", FormatOpenAI, Usage{Problem: "no usage in response"}},
	// message_delta is cumulative: 97 output tokens, not 1+40+97.
	{"anthropic_stream_cumulative.sse", FormatAnthropic, Usage{Found: true, Source: "anthropic_messages", Model: "claude-sonnet-4-5-20250929", InputTokens: 2680 + 1500, OutputTokens: 97, CachedInputTokens: 3000}},
	{"anthropic_stream_error.sse", FormatAnthropic, Usage{Problem: "upstream error: no usage in response"}},
	{"anthropic_stream_error_midway.sse", FormatAuto, Usage{Found: true, Source: "anthropic_messages", Model: "claude-sonnet-4-5-20250929", InputTokens: 25, OutputTokens: 1, Problem: "response ended in an error: usage may be partial"}},
	{"anthropic_error.json", FormatAnthropic, Usage{Problem: "upstream error: no usage in response"}},
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func contentType(file string) string {
	if strings.HasSuffix(file, ".sse") {
		return ctSSE
	}
	return ctJSON
}

// meter runs body through a new Meter in the given writes.
func meter(f Format, ct string, writes ...[]byte) Usage {
	m := NewMeter(f, ct)
	for _, w := range writes {
		if n, err := m.Write(w); n != len(w) || err != nil {
			panic("Meter.Write must return len(p), nil")
		}
	}
	return m.Usage()
}

func TestMeterFixtures(t *testing.T) {
	for _, tc := range fixtures {
		t.Run(tc.file+"/"+string(tc.format), func(t *testing.T) {
			body := readFixture(t, tc.file)
			if got := meter(tc.format, contentType(tc.file), body); got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

// lineEndings gives the three forms of an SSE stream that the spec allows:
// the fixtures' \n, \r\n and \r. JSON text in the fixtures holds no raw
// line ends, so replacing them changes only the SSE framing.
func lineEndings(b []byte) map[string][]byte {
	return map[string][]byte{
		"LF":   b,
		"CRLF": bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")),
		"CR":   bytes.ReplaceAll(b, []byte("\n"), []byte("\r")),
	}
}

// TestMeterSSESplits feeds every SSE fixture in two writes split at every
// byte (including between \r and \n), and in 1-byte writes: a network read
// can end anywhere.
func TestMeterSSESplits(t *testing.T) {
	for _, tc := range fixtures {
		if !strings.HasSuffix(tc.file, ".sse") {
			continue
		}
		for name, body := range lineEndings(readFixture(t, tc.file)) {
			t.Run(tc.file+"/"+string(tc.format)+"/"+name, func(t *testing.T) {
				if got := meter(tc.format, ctSSE, body); got != tc.want {
					t.Fatalf("one write: got %+v; want %+v", got, tc.want)
				}
				step := 1
				if testing.Short() {
					step = 7
				}
				for i := 0; i <= len(body); i += step {
					if got := meter(tc.format, ctSSE, body[:i], body[i:]); got != tc.want {
						t.Fatalf("split at %d: got %+v; want %+v", i, got, tc.want)
					}
				}
				ones := make([][]byte, len(body))
				for i := range body {
					ones[i] = body[i : i+1]
				}
				if got := meter(tc.format, ctSSE, ones...); got != tc.want {
					t.Fatalf("1-byte writes: got %+v; want %+v", got, tc.want)
				}
			})
		}
	}
}

// TestMeterJSONSplits: a JSON body gives the same usage however it arrives.
func TestMeterJSONSplits(t *testing.T) {
	for _, tc := range fixtures {
		if !strings.HasSuffix(tc.file, ".json") {
			continue
		}
		body := readFixture(t, tc.file)
		for i := 0; i <= len(body); i++ {
			if got := meter(tc.format, ctJSON, body[:i], body[i:]); got != tc.want {
				t.Fatalf("%s split at %d: got %+v; want %+v", tc.file, i, got, tc.want)
			}
		}
	}
}

func TestMeterSSEParsing(t *testing.T) {
	const usageChunk = `{"object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`
	found := Usage{Found: true, Source: "openai_chat", Model: "m", InputTokens: 3, OutputTokens: 4}
	tests := []struct {
		name string
		body string
		want Usage
	}{
		{"plain", "data: " + usageChunk + "\n\n", found},
		{"no space after colon", "data:" + usageChunk + "\n\n", found},
		{"comments and other fields ignored", ": keep-alive\nid: 7\nretry: 100\ndata: " + usageChunk + "\n\n", found},
		{"data split over lines", "data: {\"object\":\"chat.completion.chunk\",\"model\":\"m\",\ndata: \"choices\":null,\"usage\":\ndata: {\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n", found},
		{"ended without blank line", "data: " + usageChunk + "\n", found},
		{"ended without line end", "data: " + usageChunk, found},
		{"cut inside the usage event", "data: " + usageChunk[:100], Usage{Problem: "usage not readable: no usage in response"}},
		{"last usage wins", "data: " + strings.Replace(usageChunk, `"completion_tokens":4`, `"completion_tokens":1`, 1) + "\n\ndata: " + usageChunk + "\n\ndata: [DONE]\n\n", found},
		{"usage null is not usage", `data: {"object":"chat.completion.chunk","model":"m","choices":[],"usage":null}` + "\n\n", Usage{Problem: "no usage in response"}},
		{"usage null with spaces", `data: {"object":"chat.completion.chunk","model":"m","choices":[], "usage" : null}` + "\n\n", Usage{Problem: "no usage in response"}},
		{"usage in content is not usage", `data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"\"usage\": {\"prompt_tokens\":9}"}}]}` + "\n\n", Usage{Problem: "no usage in response"}},
		{"empty stream", "", Usage{Problem: "no usage in response"}},
		{"event error", "event: error\ndata: {\"message\":\"x\"}\n\n", Usage{Problem: "upstream error: no usage in response"}},
		{"anthropic start only", `data: {"type":"message_start","message":{"model":"c","usage":{"input_tokens":5,"output_tokens":1}}}` + "\n\n",
			Usage{Found: true, Source: "anthropic_messages", Model: "c", InputTokens: 5, OutputTokens: 1, Problem: "stream ended before message_delta: output tokens partial"}},
		{"anthropic delta keeps start's input", `data: {"type":"message_start","message":{"model":"c","usage":{"input_tokens":5,"cache_read_input_tokens":7,"output_tokens":1}}}` + "\n\n" +
			`data: {"type":"message_delta","usage":{"output_tokens":9}}` + "\n\n" + `data: {"type":"message_delta","usage":{"output_tokens":12}}` + "\n\n",
			Usage{Found: true, Source: "anthropic_messages", Model: "c", InputTokens: 5, OutputTokens: 12, CachedInputTokens: 7}},
		{"chat chunk without object nor completion tokens", `data: {"choices":[],"usage":{"prompt_tokens":3}}` + "\n\n",
			Usage{Found: true, Source: "openai_chat", InputTokens: 3}},
		{"responses type from event line only", "event: response.completed\ndata: {\"response\":{\"model\":\"r\",\"usage\":{\"input_tokens\":2,\"output_tokens\":3}}}\n\n",
			Usage{Found: true, Source: "openai_responses", Model: "r", InputTokens: 2, OutputTokens: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := meter(FormatAuto, ctSSE, []byte(tc.body)); got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestMeterJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Usage
	}{
		{"chat without object", `{"model":"m","usage":{"prompt_tokens":3,"completion_tokens":4}}`, Usage{Found: true, Source: "openai_chat", Model: "m", InputTokens: 3, OutputTokens: 4}},
		{"embeddings without object", `{"usage":{"prompt_tokens":3,"total_tokens":3}}`, Usage{Found: true, Source: "openai_embeddings", InputTokens: 3}},
		{"leading whitespace", " \n\t{\"object\":\"list\",\"usage\":{\"prompt_tokens\":3}}", Usage{Found: true, Source: "openai_embeddings", InputTokens: 3}},
		{"no usage", `{"object":"chat.completion"}`, Usage{Problem: "no usage in response"}},
		{"empty", "", Usage{Problem: "empty response: no usage in response"}},
		{"truncated", `{"object":"chat.completion","usage":{"prompt_tokens":3`, Usage{Problem: "response is not valid JSON: usage not read"}},
		{"html error page", "<html><body>502 Bad Gateway</body></html>", Usage{Problem: "response is not a JSON object: usage not read"}},
		{"array", `[{"usage":{"prompt_tokens":3}}]`, Usage{Problem: "response is not a JSON object: usage not read"}},
		{"event stream without its Content-Type", "\ndata: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n",
			Usage{Found: true, Source: "openai_chat", InputTokens: 3, OutputTokens: 4}},
		{"not an event stream after all", "error code: 502", Usage{Problem: "no usage in response"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := meter(FormatAuto, ctJSON, []byte(tc.body)); got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestMeterNone(t *testing.T) {
	m := NewMeter(FormatNone, ctSSE)
	m.Write(readFixture(t, "openai_chat_stream_usage.sse"))
	if got := m.Usage(); got != (Usage{}) {
		t.Errorf("got %+v; want the zero Usage", got)
	}
	var nilMeter *Meter
	if n, err := nilMeter.Write([]byte("x")); n != 1 || err != nil {
		t.Errorf("nil Meter Write: got %d, %v; want 1, nil", n, err)
	}
}

func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream":                 true,
		"Text/Event-Stream; charset=utf-8":  true,
		" text/event-stream ;charset=utf-8": true,
		"application/json":                  false,
		"":                                  false,
		"text/event-streams":                false,
	} {
		if got := isEventStream(ct); got != want {
			t.Errorf("isEventStream(%q): got %v; want %v", ct, got, want)
		}
	}
}

func TestMeterJSONOverLimit(t *testing.T) {
	m := NewMeter(FormatAuto, ctJSON)
	chunk := append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), 1<<20)...)
	m.Write(chunk)
	for range 4 {
		m.Write(bytes.Repeat([]byte("x"), 1<<20))
	}
	m.Write([]byte(`","usage":{"prompt_tokens":1}}`))
	want := Usage{Problem: "response over 4 MiB: usage not read"}
	if got := m.Usage(); got != want {
		t.Errorf("got %+v; want %+v", got, want)
	}
	if m.body != nil {
		t.Errorf("body kept after giving up: cap %d; want nil", cap(m.body))
	}
}

// TestMeterOversizeEvent: an event over MaxEventBytes is skipped, with
// Problem set, and the usage after it is still read, however it is split.
func TestMeterOversizeEvent(t *testing.T) {
	usage := `data: {"object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}` + "\n\n"
	big := func(n int) string { return strings.Repeat("y", n) }
	want := Usage{Found: true, Source: "openai_chat", Model: "m", InputTokens: 3, OutputTokens: 4,
		Problem: "SSE event over 64 KiB skipped: usage may be missing or partial"}
	tests := []struct {
		name string
		body string
		want Usage
	}{
		{"one long data line", "data: {\"usage\":{\"prompt_tokens\":1},\"x\":\"" + big(MaxEventBytes) + "\"}\n\n" + usage, want},
		{"many data lines", strings.Repeat("data: "+big(1000)+"\n", 70) + "\n" + usage, want},
		{"long comment", ":" + big(2*MaxEventBytes) + "\n" + usage, Usage{Found: true, Source: "openai_chat", Model: "m", InputTokens: 3, OutputTokens: 4}},
		{"long event name", "event: " + big(MaxEventBytes+10) + "\ndata: {}\n\n" + usage, want},
		{"just under the bound", "data: " + big(MaxEventBytes-6) + "\n\n" + usage, Usage{Found: true, Source: "openai_chat", Model: "m", InputTokens: 3, OutputTokens: 4}},
		{"usage in the skipped event", "data: " + big(MaxEventBytes) + "\ndata: " + usage, Usage{Problem: "SSE event over 64 KiB skipped: usage may be missing or partial"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			if got := meter(FormatAuto, ctSSE, body); got != tc.want {
				t.Fatalf("one write: got %+v; want %+v", got, tc.want)
			}
			for _, size := range []int{1, 100, 4096, 32 << 10} {
				var writes [][]byte
				for b := body; len(b) > 0; b = b[min(size, len(b)):] {
					writes = append(writes, b[:min(size, len(b))])
				}
				if got := meter(FormatAuto, ctSSE, writes...); got != tc.want {
					t.Fatalf("%d-byte writes: got %+v; want %+v", size, got, tc.want)
				}
			}
		})
	}
}

// TestMeterMemoryBound streams 100 MiB of events just under and just over
// MaxEventBytes, in network-sized writes, and checks what the Meter keeps.
func TestMeterMemoryBound(t *testing.T) {
	total := 100 << 20
	if testing.Short() {
		total = 8 << 20
	}
	under := []byte("data: " + strings.Repeat("u", MaxEventBytes-6) + "\n\n")
	over := []byte("data: " + strings.Repeat("o", MaxEventBytes+10) + "\n\n")
	overLines := []byte(strings.Repeat("data: "+strings.Repeat("l", 999)+"\n", 80) + "\n")
	usage := []byte(`data: {"object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}` + "\n\n")
	m := NewMeter(FormatAuto, ctSSE)
	var stream bytes.Buffer
	maxCap := 0
	for fed := 0; fed < total; {
		stream.Reset()
		stream.Write(under)
		stream.Write(over)
		stream.Write(overLines)
		buf := make([]byte, 16<<10)
		for {
			n, err := stream.Read(buf)
			m.Write(buf[:n])
			fed += n
			maxCap = max(maxCap, cap(m.line)+cap(m.data)+cap(m.event)+cap(m.body)+cap(m.head)+cap(m.tail))
			if err == io.EOF {
				break
			}
		}
	}
	m.Write(usage)
	if limit := 2*(MaxEventBytes+1) + salvageHead + 2*salvageTail; maxCap > limit {
		t.Errorf("the Meter held buffers of %d bytes; want at most %d", maxCap, limit)
	}
	want := Usage{Found: true, Source: "openai_chat", Model: "m", InputTokens: 3, OutputTokens: 4,
		Problem: "SSE event over 64 KiB skipped: usage may be missing or partial"}
	if got := m.Usage(); got != want {
		t.Errorf("got %+v; want %+v", got, want)
	}
}

func TestUsageInputTokens(t *testing.T) {
	tests := []struct {
		u               Usage
		uncached, allIn int64
	}{
		{Usage{Source: "openai_chat", InputTokens: 2006, CachedInputTokens: 1920}, 86, 2006},
		{Usage{Source: "openai_responses", InputTokens: 10, CachedInputTokens: 0}, 10, 10},
		{Usage{Source: "anthropic_messages", InputTokens: 3595, CachedInputTokens: 3000}, 3595, 6595},
	}
	for _, tc := range tests {
		if got := tc.u.UncachedInputTokens(); got != tc.uncached {
			t.Errorf("%s UncachedInputTokens: got %d; want %d", tc.u.Source, got, tc.uncached)
		}
		if got := tc.u.TotalInputTokens(); got != tc.allIn {
			t.Errorf("%s TotalInputTokens: got %d; want %d", tc.u.Source, got, tc.allIn)
		}
	}
}

// BenchmarkMeterChatSSE copies a chat stream in 512-byte reads through the
// Meter, as the proxy does; compare with BenchmarkCopyChatSSE.
func BenchmarkMeterChatSSE(b *testing.B) {
	body := typicalChatStream(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	buf := make([]byte, 32<<10)
	for b.Loop() {
		m := NewMeter(FormatOpenAI, ctSSE)
		io.CopyBuffer(io.Discard, io.TeeReader(&chunkedReader{b: body, sizes: []int{512}}, m), buf)
		if !m.Usage().Found {
			b.Fatal("no usage")
		}
	}
}

// BenchmarkCopyChatSSE is the baseline: the same copy, unmetered.
func BenchmarkCopyChatSSE(b *testing.B) {
	body := typicalChatStream(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	buf := make([]byte, 32<<10)
	for b.Loop() {
		io.CopyBuffer(io.Discard, &chunkedReader{b: body, sizes: []int{512}}, buf)
	}
}

func BenchmarkMeterAnthropicSSE(b *testing.B) {
	body := readFixture(b, "anthropic_stream.sse")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m := NewMeter(FormatAnthropic, ctSSE)
		m.Write(body)
		if !m.Usage().Found {
			b.Fatal("no usage")
		}
	}
}

func BenchmarkMeterChatJSON(b *testing.B) {
	body := readFixture(b, "openai_chat.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		m := NewMeter(FormatOpenAI, ctJSON)
		m.Write(body)
		if !m.Usage().Found {
			b.Fatal("no usage")
		}
	}
}

// typicalChatStream is a chat answer of 500 chunks with include_usage.
func typicalChatStream(b *testing.B) []byte {
	fx := readFixture(b, "openai_chat_stream_usage.sse")
	events := bytes.SplitAfter(fx, []byte("\n\n"))
	var out []byte
	out = append(out, events[0]...)
	for range 500 / (len(events) - 3) {
		for _, e := range events[1 : len(events)-3] {
			out = append(out, e...)
		}
	}
	for _, e := range events[len(events)-3:] {
		out = append(out, e...)
	}
	return out
}
