package usage

import (
	"bytes"
	"encoding/json"
	"io"
)

// InjectStreamUsage asks a streamed OpenAI Chat Completions (or legacy
// completions) request for usage: if body is a JSON object with
// "stream": true and without "stream_options": {"include_usage": true}, it
// returns the body with include_usage set and injected true. Without it,
// OpenAI sends no usage in a stream at all, and the request could not be
// charged. Pair it with NewUsageChunkFilter so that the client does not see
// the usage chunk it did not ask for.
//
// The edit is textual, so the rest of the body keeps its bytes, key order
// and whitespace (a prompt is not re-encoded): with no stream_options,
// `,"stream_options":{"include_usage":true}` is inserted before the
// object's closing brace; an existing stream_options object is re-encoded
// with include_usage true (its other keys kept, in sorted order); a null
// one is replaced. Anything else (invalid JSON, not an object, stream not
// true, stream_options of another type) returns body unchanged and false:
// the upstream is the one to judge a request, never the gateway.
func InjectStreamUsage(body []byte) (out []byte, injected bool) {
	var req struct {
		Stream        json.RawMessage `json:"stream"`
		StreamOptions json.RawMessage `json:"stream_options"`
	}
	if json.Unmarshal(body, &req) != nil || !bytes.Equal(req.Stream, []byte("true")) {
		return body, false
	}
	opts := bytes.TrimSpace(req.StreamOptions)
	if len(opts) == 0 { // no stream_options
		end := bytes.LastIndexByte(body, '}')
		if end < 0 {
			return body, false
		}
		out = make([]byte, 0, len(body)+40)
		out = append(out, body[:end]...)
		out = append(out, `,"stream_options":{"include_usage":true}`...)
		return append(out, body[end:]...), true
	}
	var repl []byte
	switch opts[0] {
	case 'n': // null
		repl = []byte(`{"include_usage":true}`)
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(opts, &m) != nil {
			return body, false
		}
		if bytes.Equal(m["include_usage"], []byte("true")) {
			return body, false
		}
		m["include_usage"] = json.RawMessage("true")
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false) // keep the client's bytes: no \u003c for <
		if enc.Encode(m) != nil {
			return body, false
		}
		repl = bytes.TrimRight(buf.Bytes(), "\n")
	default:
		return body, false
	}
	start, end, ok := topLevelValue(body, "stream_options")
	if !ok {
		return body, false
	}
	out = make([]byte, 0, len(body)-(end-start)+len(repl))
	out = append(out, body[:start]...)
	out = append(out, repl...)
	return append(out, body[end:]...), true
}

// topLevelValue finds the bytes of the value of key in a JSON object: the
// last occurrence, which is the one encoding/json (and most parsers) use
// when a key repeats.
func topLevelValue(body []byte, key string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return 0, 0, false
		}
		if k, _ := t.(string); k == key {
			end = int(dec.InputOffset())
			start, ok = end-len(v), true
		}
	}
	if ok && !bytes.Equal(body[start:end], bytes.TrimSpace(body[start:end])) {
		return 0, 0, false // not where the decoder said: leave the body alone
	}
	return start, end, ok
}

// NewUsageChunkFilter returns a reader of the SSE stream r less the usage
// chunk that InjectStreamUsage asked for: an event whose data is a JSON
// object with a non-null "usage" object and "choices" empty, null or
// absent. Every other byte passes unchanged, in order, so the client gets
// the stream it would have had without the injection. Use it only on a
// response to an injected request: a client that asked for usage itself
// must get its chunk.
//
// The proxy meters the unfiltered bytes (tee r into a Meter, then filter),
// so the usage is read before the chunk is dropped.
//
// The filter holds back at most the current event until the blank line that
// ends it (so the decision is made on the whole event), and returns each
// complete event at once, not waiting to fill the caller's buffer, so
// streaming latency is unchanged. An event longer than MaxEventBytes is
// passed through as it comes, unfiltered.
//
// OpenAI also adds "usage": null to every other chunk of such a stream;
// the filter removes that member too (dropUsageNull, a textual edit), so the
// client gets the chunks it would have had without include_usage.
func NewUsageChunkFilter(r io.Reader) io.Reader {
	return &chunkFilter{r: r, buf: make([]byte, 4<<10)}
}

type chunkFilter struct {
	r   io.Reader
	buf []byte // what r.Read fills
	err error  // r's error, returned once out and pend are empty

	pend []byte // the current event, held until its end
	out  []byte // bytes ready for the caller, from off
	off  int

	lineLen      int  // bytes of the current line so far
	crPending    bool // the last byte was a \r line end: a \n may follow
	crEndedEvent bool // and that \r ended an event
	dropped      bool // the event that ended last was dropped
	pass         bool // the current event is over MaxEventBytes: it goes straight out
}

func (f *chunkFilter) Read(p []byte) (int, error) {
	for {
		if f.off < len(f.out) {
			n := copy(p, f.out[f.off:])
			f.off += n
			if f.off == len(f.out) {
				f.out, f.off = f.out[:0], 0
			}
			return n, nil
		}
		if f.err != nil {
			if len(f.pend) > 0 {
				// The stream ended (or failed) inside an event: an
				// unterminated event is never dispatched (WHATWG), so it
				// is not a usage chunk; pass it on as it is.
				f.out = append(f.out, f.pend...)
				f.pend = f.pend[:0]
				continue
			}
			return 0, f.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, err := f.r.Read(f.buf)
		f.feed(f.buf[:n])
		if err != nil {
			f.err = err
		} else if n == 0 {
			return 0, nil
		}
	}
}

// feed splits c into lines and ends an event at each blank line.
func (f *chunkFilter) feed(c []byte) {
	for len(c) > 0 {
		if f.crPending {
			f.crPending = false
			if c[0] == '\n' { // the rest of a \r\n
				switch {
				case !f.crEndedEvent:
					f.add(c[:1])
				case !f.dropped:
					f.out = append(f.out, '\n')
				}
				c = c[1:]
				continue
			}
		}
		i := indexEOL(c)
		if i < 0 {
			f.add(c)
			f.lineLen += len(c)
			return
		}
		blank := f.lineLen == 0 && i == 0
		f.add(c[:i+1])
		f.lineLen = 0
		f.crPending = c[i] == '\r'
		f.crEndedEvent = false
		c = c[i+1:]
		if blank {
			f.endEvent()
			f.crEndedEvent = f.crPending
		}
	}
}

// add appends b to the current event, or passes it on when the event has
// gone over the bound.
func (f *chunkFilter) add(b []byte) {
	if f.pass {
		f.out = append(f.out, b...)
		return
	}
	if len(f.pend)+len(b) > MaxEventBytes {
		f.pass = true
		f.out = append(f.out, f.pend...)
		f.out = append(f.out, b...)
		f.pend = f.pend[:0]
		return
	}
	f.pend = appendBounded(f.pend, b)
}

func (f *chunkFilter) endEvent() {
	switch {
	case f.pass:
		f.pass, f.dropped = false, false
	case isUsageOnly(f.pend):
		f.dropped = true
	default:
		f.dropped = false
		f.out = append(f.out, dropUsageNull(f.pend)...)
	}
	f.pend = f.pend[:0]
}

// dropUsageNull removes the top-level `"usage":null` member that OpenAI
// adds to every chunk of a stream asked for usage, from an event with one
// data line (every chunk OpenAI sends), so that the client of an injected
// request sees the chunks it would have seen. The edit is textual: the
// member and one adjoining comma go, every other byte stays. Anything else
// (no such member, several data lines, an unusual spelling) is returned
// unchanged.
func dropUsageNull(raw []byte) []byte {
	if !containsUsageKey(raw) {
		return raw
	}
	data := eventData(raw)
	at := bytes.Index(raw, data)
	if len(data) == 0 || at < 0 || bytes.Count(raw, []byte("data:")) != 1 {
		return raw
	}
	start, end, ok := topLevelValue(data, "usage")
	if !ok || string(data[start:end]) != "null" {
		return raw
	}
	// Back from the value over `"usage" :` to the key's opening quote.
	i := skipSpaceBack(data, start-1)
	if i < 0 || data[i] != ':' {
		return raw
	}
	i = skipSpaceBack(data, i-1)
	if i < 6 || string(data[i-6:i+1]) != `"usage"` {
		return raw
	}
	keyStart := i - 6
	cut0, cut1 := keyStart, end
	if j := skipSpaceBack(data, keyStart-1); j >= 0 && data[j] == ',' {
		cut0 = j // a member before it: drop the comma before
	} else {
		k := skipSpace(data, end)
		if k >= len(data) || data[k] != ',' {
			return raw // the only member: leave {"usage":null} alone
		}
		cut1 = skipSpace(data, k+1) // the first member: drop the comma after
	}
	out := make([]byte, 0, len(raw)-(cut1-cut0))
	out = append(out, raw[:at+cut0]...)
	return append(out, raw[at+cut1:]...)
}

func skipSpaceBack(b []byte, i int) int {
	for i >= 0 && isSpace(b[i]) {
		i--
	}
	return i
}

// isUsageOnly reports whether raw (one whole event, with its line ends) is
// a usage-only chat chunk. Events without the bytes "usage" cost one search.
func isUsageOnly(raw []byte) bool {
	if !containsUsageKey(raw) {
		return false
	}
	data := eventData(raw)
	if !hasUsage(data) {
		return false
	}
	var msg struct {
		Object  string  `json:"object"`
		Usage   present `json:"usage"`
		Choices present `json:"choices"`
	}
	if json.Unmarshal(data, &msg) != nil || !msg.Usage.object {
		return false
	}
	if msg.Choices.set {
		return !msg.Choices.value || msg.Choices.empty
	}
	return msg.Object == "chat.completion.chunk" || msg.Object == "text_completion"
}

// containsUsageKey is bytes.Contains(raw, `"usage"`), searching for the
// 'g' as hasUsage does.
func containsUsageKey(raw []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(raw[i:], 'g')
		if j < 0 {
			return false
		}
		g := i + j
		i = g + 1
		if g >= 4 && g+3 <= len(raw) && string(raw[g-4:g+3]) == `"usage"` {
			return true
		}
	}
}

// eventData joins the data: lines of one raw event with \n. An event with
// one data line (every chunk OpenAI sends) gives a slice of raw, not a copy.
func eventData(raw []byte) []byte {
	var data []byte
	lines := 0
	for len(raw) > 0 {
		line := raw
		raw = nil
		if i := indexEOL(line); i >= 0 {
			if line[i] == '\r' && i+1 < len(line) && line[i+1] == '\n' {
				raw = line[i+2:]
			} else {
				raw = line[i+1:]
			}
			line = line[:i]
		}
		field, value := splitField(line)
		if string(field) != "data" {
			continue
		}
		switch lines++; lines {
		case 1:
			data = value
		case 2:
			data = append(append(append([]byte(nil), data...), '\n'), value...)
		default:
			data = append(append(data, '\n'), value...)
		}
	}
	return data
}
