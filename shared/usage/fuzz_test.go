package usage

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func addFixtures(f *testing.F, ext string) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"+ext))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(len(b)/2))
	}
}

// meterSplits meters body in one write, in two split at split, and in
// 1-byte writes, and fails unless all three agree.
func meterSplits(t *testing.T, ct string, body []byte, split uint16) {
	for _, format := range []Format{FormatAuto, FormatOpenAI, FormatAnthropic} {
		want := meter(format, ct, body)
		i := int(split) % (len(body) + 1)
		if got := meter(format, ct, body[:i], body[i:]); got != want {
			t.Fatalf("%s split at %d: got %+v; want %+v (one write)", format, i, got, want)
		}
		m := NewMeter(format, ct)
		for j := range body {
			m.Write(body[j : j+1])
		}
		if got := m.Usage(); got != want {
			t.Fatalf("%s 1-byte writes: got %+v; want %+v (one write)", format, got, want)
		}
		if held := cap(m.line) + cap(m.data) + cap(m.event); held > 2*(MaxEventBytes+1) {
			t.Fatalf("%s: the Meter holds %d bytes", format, held)
		}
		if want.Found && (want.Source == "" || want.InputTokens < 0 && want.OutputTokens < 0) {
			// Negative counts can come from a malicious upstream; they are
			// passed on, but a found usage always names its source.
			t.Fatalf("%s: found usage without a source: %+v", format, want)
		}
	}
}

func FuzzMeterSSE(f *testing.F) {
	addFixtures(f, ".sse")
	f.Add([]byte("data: {\"usage\":{\"prompt_tokens\":1}}\r\r\n\n:x\rdata:[DONE]"), uint16(3))
	f.Fuzz(func(t *testing.T, body []byte, split uint16) {
		meterSplits(t, ctSSE, body, split)
	})
}

func FuzzMeterJSON(f *testing.F) {
	addFixtures(f, ".json")
	f.Add([]byte(` {"type":"message","usage":{"input_tokens":1,"output_tokens":2}}`), uint16(1))
	f.Fuzz(func(t *testing.T, body []byte, split uint16) {
		meterSplits(t, ctJSON, body, split)
	})
}

// refFilter is the filter's specification, written plainly over the whole
// stream: cut it into raw events at blank lines (a line end right after a
// line end, or at the start), a \r\n being one line end; drop the
// usage-only events no longer than MaxEventBytes, and the "usage":null
// member of the others (dropUsageNull, tested on its own); keep every other
// byte.
func refFilter(in []byte) []byte {
	var out, ev []byte
	lineStart := true
	for i := 0; i < len(in); {
		c := in[i]
		if c != '\r' && c != '\n' {
			ev = append(ev, c)
			lineStart = false
			i++
			continue
		}
		n := 1
		if c == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			n = 2
		}
		ev = append(ev, in[i:i+n]...)
		i += n
		if lineStart {
			// len(ev)-n+1: the filter decides at the \r of a final \r\n.
			switch {
			case len(ev)-n+1 > MaxEventBytes:
				out = append(out, ev...)
			case !isUsageOnly(ev):
				out = append(out, dropUsageNull(ev)...)
			}
			ev = ev[:0]
		}
		lineStart = true
	}
	return append(out, ev...)
}

func TestRefFilterFixture(t *testing.T) {
	got := refFilter(readFixture(t, "openai_chat_stream_usage.sse"))
	if want := readFixture(t, "openai_chat_stream_usage.filtered.sse"); !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func FuzzUsageChunkFilter(f *testing.F) {
	addFixtures(f, ".sse")
	usage := `{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1}}`
	f.Add([]byte("data: a\r\n\r\ndata: "+usage+"\r\n\r\ndata: b\r\n\r"), uint16(30))
	f.Add([]byte("\r\n\ndata: "+usage+"\r\r\ndata: "+usage), uint16(5))
	f.Add([]byte(strings.Repeat("data: "+usage+"\n", 3)+"\n"), uint16(90))
	f.Fuzz(func(t *testing.T, body []byte, split uint16) {
		want := refFilter(body)
		if got := filterAll(t, body, nil, 32<<10); !bytes.Equal(got, want) {
			t.Fatalf("one read: got %q; want %q", got, want)
		}
		i := int(split) % (len(body) + 1)
		if got := filterAll(t, body, []int{i, len(body)}, 32<<10); !bytes.Equal(got, want) {
			t.Fatalf("split at %d: got %q; want %q", i, got, want)
		}
		if got := filterAll(t, body, []int{1}, 3); !bytes.Equal(got, want) {
			t.Fatalf("1-byte reads: got %q; want %q", got, want)
		}
	})
}
