package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestInjectStreamUsage(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		want     string
		injected bool
	}{
		{"no stream_options",
			`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"<b>hi</b> & bye"}]}`,
			`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"<b>hi</b> & bye"}],"stream_options":{"include_usage":true}}`, true},
		{"whitespace kept",
			"{\n  \"stream\": true,\n  \"prompt\": \"x\"\n}\n",
			"{\n  \"stream\": true,\n  \"prompt\": \"x\"\n,\"stream_options\":{\"include_usage\":true}}\n", true},
		{"other stream_options kept",
			`{"stream":true,"stream_options":{"include_obfuscation":false},"model":"m"}`,
			`{"stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true},"model":"m"}`, true},
		{"include_usage false",
			`{"stream":true,"stream_options": {"include_usage":false} ,"model":"m"}`,
			`{"stream":true,"stream_options": {"include_usage":true} ,"model":"m"}`, true},
		{"stream_options null",
			`{"stream_options":null,"stream":true}`,
			`{"stream_options":{"include_usage":true},"stream":true}`, true},
		{"repeated key: the last one is changed",
			`{"stream_options":{"a":1},"stream":true,"stream_options":{"b":2}}`,
			`{"stream_options":{"a":1},"stream":true,"stream_options":{"b":2,"include_usage":true}}`, true},
		{"nested stream_options is not the top-level one",
			`{"metadata":{"stream_options":{}},"stream":true,"stream_options":{}}`,
			`{"metadata":{"stream_options":{}},"stream":true,"stream_options":{"include_usage":true}}`, true},
		{"already asked", `{"stream":true,"stream_options":{"include_usage":true}}`, "", false},
		{"not streamed", `{"stream":false}`, "", false},
		{"stream absent", `{"model":"m"}`, "", false},
		{"stream a string", `{"stream":"true"}`, "", false},
		{"stream_options a string", `{"stream":true,"stream_options":"x"}`, "", false},
		{"invalid JSON", `{"stream":true,`, "", false},
		{"not an object", `[{"stream":true}]`, "", false},
		{"empty", ``, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, injected := InjectStreamUsage([]byte(tc.body))
			want := tc.want
			if !tc.injected {
				want = tc.body
			}
			if string(out) != want || injected != tc.injected {
				t.Errorf("got %q, %v; want %q, %v", out, injected, want, tc.injected)
			}
			if injected {
				var req struct {
					StreamOptions struct {
						IncludeUsage bool `json:"include_usage"`
					} `json:"stream_options"`
				}
				if err := json.Unmarshal(out, &req); err != nil || !req.StreamOptions.IncludeUsage {
					t.Errorf("decoding the result: got include_usage %v, err %v; want true, nil", req.StreamOptions.IncludeUsage, err)
				}
			}
		})
	}
}

// filterAll runs body through a filter, the body arriving in reads of the
// given sizes (cycled), and the filter read with a buffer of readSize.
func filterAll(t testing.TB, body []byte, sizes []int, readSize int) []byte {
	t.Helper()
	f := NewUsageChunkFilter(&chunkedReader{b: body, sizes: sizes})
	var out []byte
	buf := make([]byte, readSize)
	for {
		n, err := f.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
}

// chunkedReader returns b in reads of the given sizes, cycled.
type chunkedReader struct {
	b     []byte
	sizes []int
	i     int
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := len(r.b)
	if len(r.sizes) > 0 {
		n = min(n, r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	n = copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

// TestUsageChunkFilterFixture: the injected stream, filtered, is
// byte-for-byte the stream without its usage chunk, in every line-ending
// form and whatever the read boundaries.
func TestUsageChunkFilterFixture(t *testing.T) {
	in := lineEndings(readFixture(t, "openai_chat_stream_usage.sse"))
	want := lineEndings(readFixture(t, "openai_chat_stream_usage.filtered.sse"))
	nulls := lineEndings(readFixture(t, "openai_chat_stream_choices_null.sse"))
	legacy := readFixture(t, "openai_completions_stream_usage.sse")
	for name := range in {
		t.Run(name, func(t *testing.T) {
			if got := filterAll(t, in[name], nil, 32<<10); !bytes.Equal(got, want[name]) {
				t.Fatalf("one read: got\n%q\nwant\n%q", got, want[name])
			}
			if got := filterAll(t, nulls[name], nil, 32<<10); !bytes.Equal(got, want[name]) {
				t.Fatalf("choices null: got\n%q\nwant\n%q", got, want[name])
			}
			for i := 0; i <= len(in[name]); i++ {
				if got := filterAll(t, in[name], []int{i, len(in[name])}, 32<<10); !bytes.Equal(got, want[name]) {
					t.Fatalf("split at %d: got\n%q\nwant\n%q", i, got, want[name])
				}
			}
			if got := filterAll(t, in[name], []int{1}, 7); !bytes.Equal(got, want[name]) {
				t.Fatalf("1-byte reads: got\n%q\nwant\n%q", got, want[name])
			}
		})
	}
	t.Run("legacy completions", func(t *testing.T) {
		got := filterAll(t, legacy, []int{13}, 100)
		if bytes.Contains(got, []byte(`"usage":{`)) || !bytes.HasSuffix(got, []byte("data: [DONE]\n\n")) {
			t.Errorf("got\n%s\nwant the stream less its usage chunk", got)
		}
	})
}

func TestUsageChunkFilterKeeps(t *testing.T) {
	// Streams that must pass unchanged: nothing in them is a usage-only chunk.
	for _, file := range []string{
		"openai_chat_stream_nousage.sse", "openai_chat_stream_usage.filtered.sse",
		"openai_responses_stream_completed.sse", "anthropic_stream.sse",
		"anthropic_stream_cumulative.sse", "openai_chat_stream_error.sse",
	} {
		body := readFixture(t, file)
		// Chat chunks keep every byte but their top-level "usage":null.
		want := body
		if strings.HasPrefix(file, "openai_chat") {
			want = bytes.ReplaceAll(body, []byte(`],"usage":null}`), []byte("]}"))
		}
		if got := filterAll(t, body, []int{100}, 64); !bytes.Equal(got, want) {
			t.Errorf("%s: got\n%q\nwant it unchanged but for \"usage\":null", file, got)
		}
	}
	for _, body := range []string{
		// usage with choices still present: a real chunk
		`data: {"object":"chat.completion.chunk","choices":[{"delta":{}}],"usage":{"prompt_tokens":1}}` + "\n\n",
		// no choices and not a chat chunk (Anthropic message_delta)
		`data: {"type":"message_delta","usage":{"output_tokens":1}}` + "\n\n",
		// not JSON
		"data: \"usage\": {\n\n",
		// the stream ends inside the usage event: never dispatched, passed on
		`data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1}}` + "\n",
		// an event over the bound is passed unfiltered
		`data: {"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1},"pad":"` + strings.Repeat("p", MaxEventBytes) + "\"}\n\n",
	} {
		if got := filterAll(t, []byte(body), []int{1000}, 512); string(got) != body {
			t.Errorf("got\n%.200q\nwant it unchanged", got)
		}
	}
}

func TestUsageChunkFilterRemoves(t *testing.T) {
	const usage = `{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1}}`
	tests := []struct{ name, in, want string }{
		{"with event and id lines", "data: a\n\nevent: x\nid: 3\ndata: " + usage + "\n\ndata: [DONE]\n\n", "data: a\n\ndata: [DONE]\n\n"},
		{"data over lines", "data: {\"object\":\"chat.completion.chunk\",\ndata: \"choices\":null,\"usage\":{\"prompt_tokens\":1}}\n\ndata: b\n\n", "data: b\n\n"},
		{"choices absent in a chunk", `data: {"object":"chat.completion.chunk","usage":{"prompt_tokens":1}}` + "\n\ndata: b\n\n", "data: b\n\n"},
		{"CRLF", "data: a\r\n\r\ndata: " + usage + "\r\n\r\ndata: b\r\n\r\n", "data: a\r\n\r\ndata: b\r\n\r\n"},
		{"CR", "data: a\r\rdata: " + usage + "\r\rdata: b\r\r", "data: a\r\rdata: b\r\r"},
		{"last in stream", "data: a\n\ndata: " + usage + "\n\n", "data: a\n\n"},
		{"with a comment", ": ping\ndata: " + usage + "\n\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{1, 2, 3, 5, 1000} {
				if got := filterAll(t, []byte(tc.in), []int{size}, 4); string(got) != tc.want {
					t.Errorf("%d-byte reads: got %q; want %q", size, got, tc.want)
				}
			}
		})
	}
}

// TestUsageChunkFilterPrompt: a complete event is returned as soon as it has
// arrived, without waiting for more input or for p to fill.
func TestUsageChunkFilterPrompt(t *testing.T) {
	pr, pw := io.Pipe()
	f := NewUsageChunkFilter(pr)
	go func() {
		pw.Write([]byte("data: one\n\ndata: tw"))
		pw.Write([]byte("o\n\n"))
	}()
	buf := make([]byte, 1024)
	for _, want := range []string{"data: one\n\n", "data: two\n\n"} {
		n, err := f.Read(buf)
		if string(buf[:n]) != want || err != nil {
			t.Fatalf("got %q, %v; want %q, nil", buf[:n], err, want)
		}
	}
	pw.CloseWithError(errors.New("upstream gone"))
	if _, err := f.Read(buf); err == nil || err.Error() != "upstream gone" {
		t.Errorf("got %v; want the upstream's error", err)
	}
}

func TestUsageChunkFilterReaderContract(t *testing.T) {
	body := readFixture(t, "openai_chat_stream_nousage.sse")
	if err := iotest.TestReader(NewUsageChunkFilter(bytes.NewReader(body)), body); err != nil {
		t.Error(err)
	}
	// Errors after data are returned once the data is out.
	r := io.MultiReader(bytes.NewReader([]byte("data: x\n")), iotest.ErrReader(io.ErrUnexpectedEOF))
	got, err := io.ReadAll(NewUsageChunkFilter(r))
	if string(got) != "data: x\n" || err != io.ErrUnexpectedEOF {
		t.Errorf("got %q, %v; want %q, %v", got, err, "data: x\n", io.ErrUnexpectedEOF)
	}
}

// TestMeterBeforeFilter is the proxy's arrangement: the Meter sees the
// upstream's bytes through a TeeReader, the client gets the filtered ones.
func TestMeterBeforeFilter(t *testing.T) {
	body := readFixture(t, "openai_chat_stream_usage.sse")
	m := NewMeter(FormatOpenAI, ctSSE)
	got, err := io.ReadAll(NewUsageChunkFilter(io.TeeReader(bytes.NewReader(body), m)))
	if err != nil {
		t.Fatal(err)
	}
	if want := readFixture(t, "openai_chat_stream_usage.filtered.sse"); !bytes.Equal(got, want) {
		t.Errorf("client got\n%s\nwant\n%s", got, want)
	}
	if u := m.Usage(); !u.Found || u.InputTokens != 2006 || u.OutputTokens != 10 {
		t.Errorf("metered %+v; want the usage chunk's 2006/10", u)
	}
}

func BenchmarkUsageChunkFilter(b *testing.B) {
	body := typicalChatStream(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	buf := make([]byte, 32<<10)
	for b.Loop() {
		f := NewUsageChunkFilter(&chunkedReader{b: body, sizes: []int{512}})
		io.CopyBuffer(io.Discard, f, buf)
	}
}

func BenchmarkInjectStreamUsage(b *testing.B) {
	body := []byte(`{"model":"gpt-4o","stream":true,"messages":[{"role":"system","content":"` + strings.Repeat("You are helpful. ", 200) + `"},{"role":"user","content":"hi"}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := InjectStreamUsage(body); !ok {
			b.Fatal("not injected")
		}
	}
}

func TestDropUsageNull(t *testing.T) {
	tests := []struct{ in, want string }{
		{"data: {\"id\":\"c\",\"choices\":[{\"delta\":{}}],\"usage\":null}\n\n", "data: {\"id\":\"c\",\"choices\":[{\"delta\":{}}]}\n\n"},
		{"data: {\"usage\": null, \"id\":\"c\"}\r\n\r\n", "data: {\"id\":\"c\"}\r\n\r\n"},
		{"data: {\"id\":\"c\" , \"usage\" : null }\n\n", "data: {\"id\":\"c\"  }\n\n"},
		// a nested usage, a non-null usage, the only member, two data lines: unchanged
		{"data: {\"x\":{\"usage\":null}}\n\n", "data: {\"x\":{\"usage\":null}}\n\n"},
		{"data: {\"usage\":{\"prompt_tokens\":1}}\n\n", "data: {\"usage\":{\"prompt_tokens\":1}}\n\n"},
		{"data: {\"usage\":null}\n\n", "data: {\"usage\":null}\n\n"},
		{"data: {\"a\":1,\ndata: \"usage\":null}\n\n", "data: {\"a\":1,\ndata: \"usage\":null}\n\n"},
		{"data: [DONE]\n\n", "data: [DONE]\n\n"},
	}
	for _, tt := range tests {
		if got := string(dropUsageNull([]byte(tt.in))); got != tt.want {
			t.Errorf("dropUsageNull(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
