package usage

import (
	"bytes"
	"strings"
)

// Meter observes a response body as it passes and reads its usage. It never
// holds bytes back and never changes them: the proxy tees the body into it
// (io.TeeReader), so the client sees the same bytes at the same time whether
// or not an endpoint is metered.
//
// A Meter keeps only what its parser needs: for an SSE stream, the current
// event (at most MaxEventBytes; a larger event is skipped and parsing resumes
// at the next event boundary, except that the usage at the end of a large
// Responses API final event is still read); for a JSON body, the body up to
// MaxJSONBytes.
// A Meter is not safe for concurrent use; Write and Usage are called by the
// goroutine that copies the body.
type Meter struct {
	format  Format
	mode    mode
	acc     acc
	problem string // first structural problem (size, not JSON); kept once set

	// SSE state (WHATWG HTML, "Server-sent events", parsing an event stream).
	line        []byte // a line that started in an earlier Write, without its end
	discardLine bool   // the current line is not needed (over the bound, or skipped)
	crPending   bool   // the last byte was \r: a \n right after it is the same line end
	skip        bool   // the current event went over MaxEventBytes: ignore it to its end
	event       []byte // the event: field (truncated: only short names matter)
	data        []byte // the data: lines, each followed by \n
	// A skipped Responses API final event keeps its start and its end, to
	// read the usage near its end (see salvage.go).
	salvaging bool
	head      []byte
	tail      []byte

	// JSON state.
	body    []byte
	started bool // a non-space byte was seen
	gaveUp  bool // over MaxJSONBytes or not a JSON object: body dropped
}

type mode uint8

const (
	modeNone mode = iota
	modeSSE
	modeJSON
)

// maxEventName bounds the kept event: field. The longest name that matters
// is "response.incomplete" (19 bytes); longer names only need to differ.
const maxEventName = 32

// NewMeter returns a Meter for a response of the given Content-Type, read
// with the parser that f selects: text/event-stream is parsed as SSE, any
// other type as one JSON document. FormatNone gives a Meter whose Write
// does nothing, so unmetered endpoints can share the code path; a Format
// that is not one of the constants is read as FormatAuto.
func NewMeter(f Format, contentType string) *Meter {
	m := &Meter{format: f}
	switch {
	case f == FormatNone:
		m.mode = modeNone
	case isEventStream(contentType):
		m.mode = modeSSE
	default:
		m.mode = modeJSON
	}
	if f != FormatOpenAI && f != FormatAnthropic {
		m.format = FormatAuto
	}
	return m
}

// isEventStream reports whether a Content-Type is text/event-stream, with
// any parameters, in any case (media types are case-insensitive, RFC 9110
// section 8.3.1), without the allocations of mime.ParseMediaType.
func isEventStream(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// Write observes p. It always returns len(p), nil: metering must never fail
// or short-write the copy it sits in (io.TeeReader treats a write error as a
// read error and would cut the client's response).
func (m *Meter) Write(p []byte) (int, error) {
	if m == nil {
		return len(p), nil
	}
	switch m.mode {
	case modeSSE:
		m.writeSSE(p)
	case modeJSON:
		m.writeJSON(p)
	}
	return len(p), nil
}

// Usage returns what was metered so far. Call it after the body ended; it is
// also right for a stream that was cut short (the client disconnected, the
// upstream timed out): that request is charged for what was metered. An
// event left without its closing blank line is read as if it had one, so a
// stream that stops right after its usage event still counts. Usage does
// not change the Meter.
func (m *Meter) Usage() Usage {
	if m == nil || m.mode == modeNone {
		return Usage{}
	}
	a := m.acc
	problem := m.problem
	switch m.mode {
	case modeSSE:
		m.pendingEvent(&a)
	case modeJSON:
		switch {
		case m.gaveUp:
		case !m.started:
			return Usage{Problem: "empty response: no usage in response"}
		default:
			var msg wireMsg
			if !decode(m.body, &msg) {
				return Usage{Problem: "response is not valid JSON: usage not read"}
			}
			a.take(m.format, &msg, "")
		}
	}
	if m.skip && problem == "" {
		problem = problemOversize // cut inside the skipped event
	}
	return a.result(problem)
}

// writeJSON keeps the body for Usage. A body that does not start with "{"
// is not an API response the package knows (an HTML error page from a load
// balancer, audio, an image), so it is dropped at once rather than held;
// unless it starts like an event stream, which is then read as one.
func (m *Meter) writeJSON(p []byte) {
	if m.gaveUp {
		return
	}
	if !m.started {
		i := 0
		for i < len(p) && isSpace(p[i]) {
			i++
		}
		if i == len(p) {
			return
		}
		m.started = true
		switch p[i] {
		case '{':
		case 'd', 'e', ':':
			// "data:", "event:" or a comment: an event stream sent without
			// its Content-Type (some OpenAI-compatible servers). Reading it
			// as one is harmless if it is not: the SSE parser is bounded.
			m.mode = modeSSE
			m.writeSSE(p[i:])
			return
		default:
			m.giveUp("response is not a JSON object: usage not read")
			return
		}
		p = p[i:]
	}
	if len(m.body)+len(p) > MaxJSONBytes {
		m.giveUp("response over 4 MiB: usage not read")
		return
	}
	m.body = append(m.body, p...)
}

func (m *Meter) giveUp(problem string) {
	m.gaveUp = true
	m.body = nil
	if m.problem == "" {
		m.problem = problem
	}
}

// writeSSE splits p into lines. A line that ends inside p is handled in
// place; only a line cut by the end of p is copied, and the data lines of
// the current event.
func (m *Meter) writeSSE(p []byte) {
	for len(p) > 0 {
		if m.crPending {
			m.crPending = false
			if p[0] == '\n' {
				p = p[1:]
				continue
			}
		}
		i := indexEOL(p)
		if i < 0 {
			m.partialLine(p)
			return
		}
		m.crPending = p[i] == '\r'
		seg := p[:i]
		p = p[i+1:]
		switch {
		case m.discardLine:
			// Not blank (it had bytes before this Write), and not needed.
			m.discardLine = false
			m.keepTail(seg)
		case len(m.line) > 0:
			if !m.room(len(seg)) {
				m.overflow(m.line, seg)
				m.line = m.line[:0]
				continue
			}
			m.line = appendBounded(m.line, seg)
			m.processLine(m.line)
			m.line = m.line[:0]
		default:
			m.processLine(seg)
		}
	}
}

// partialLine keeps the start of a line that continues in the next Write,
// unless the line cannot matter: a comment, or any line of an event that is
// being skipped. A line that would take the event over MaxEventBytes skips
// the event.
func (m *Meter) partialLine(p []byte) {
	if m.discardLine {
		m.keepTail(p)
		return
	}
	if len(m.line) == 0 && (m.skip || p[0] == ':') {
		m.discardLine = true
		if p[0] != ':' {
			m.keepTail(p)
		}
		return
	}
	if !m.room(len(p)) {
		m.overflow(m.line, p)
		m.line = m.line[:0]
		m.discardLine = true
		return
	}
	m.line = appendBounded(m.line, p)
}

// room reports whether n more bytes of the current line fit in the bound
// on one event.
func (m *Meter) room(n int) bool {
	return len(m.data)+len(m.line)+n <= MaxEventBytes
}

// overflow skips the current event: its data so far is dropped, and its
// remaining lines are ignored up to the blank line that ends it. pending is
// the current line, which did not fit.
func (m *Meter) overflow(pending ...[]byte) {
	if m.skip {
		return
	}
	m.skip = true
	m.startSalvage(pending)
	m.data = m.data[:0]
}

// processLine handles one complete line, without its end.
func (m *Meter) processLine(line []byte) {
	if len(line) == 0 {
		m.dispatch()
		return
	}
	if line[0] == ':' {
		return
	}
	if m.skip {
		if field, value := splitField(line); m.salvaging && string(field) == "data" {
			m.keepTail(newline)
			m.keepTail(value)
		}
		return
	}
	// The bound is on the line and the data held, as partialLine counts
	// them, so that where the writes split a stream changes nothing.
	if len(m.data)+len(line) > MaxEventBytes {
		m.overflow(line)
		return
	}
	field, value := splitField(line)
	switch string(field) {
	case "data":
		// len(value)+1 <= len(line): within the bound.
		m.data = appendBounded(m.data, value)
		m.data = appendBounded(m.data, newline)
	case "event":
		m.event = append(m.event[:0], value[:min(len(value), maxEventName)]...)
	}
}

// dispatch ends the current event at a blank line.
func (m *Meter) dispatch() {
	switch {
	case m.skip:
		if !m.salvage(&m.acc) && m.problem == "" {
			m.problem = problemOversize
		}
		m.endSalvage()
	case len(m.data) > 0:
		m.acc.event(m.format, m.event, m.data[:len(m.data)-1])
	}
	m.skip = false
	m.data = m.data[:0]
	m.event = m.event[:0]
}

// pendingEvent reads, into a, the event that the body left open: its
// complete lines and a last line without an end. It copies what it needs
// so that the Meter is left as it was.
func (m *Meter) pendingEvent(a *acc) {
	if m.skip {
		return // the body was cut inside it: its end, and usage, are missing
	}
	data := m.data
	event := m.event
	if len(m.line) > 0 && !m.discardLine && m.line[0] != ':' {
		field, value := splitField(m.line)
		switch string(field) {
		case "data":
			data = append(append(append([]byte(nil), data...), value...), '\n')
		case "event":
			event = value[:min(len(value), maxEventName)]
		}
	}
	if len(data) > 0 {
		a.event(m.format, event, data[:len(data)-1])
	}
}

var newline = []byte{'\n'}

// splitField splits an SSE line into its field name and value: the value
// follows the first colon, less one leading space.
func splitField(line []byte) (field, value []byte) {
	c := bytes.IndexByte(line, ':')
	if c < 0 {
		return line, nil
	}
	value = line[c+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return line[:c], value
}

// indexEOL returns the index of the first \n or \r in p, or -1. Two
// IndexByte calls (vectorised) beat one bytes.IndexAny (a byte loop).
func indexEOL(p []byte) int {
	i := bytes.IndexByte(p, '\n')
	q := p
	if i >= 0 {
		q = p[:i]
	}
	if j := bytes.IndexByte(q, '\r'); j >= 0 {
		return j
	}
	return i
}

// appendBounded appends src to dst, growing dst to at most
// MaxEventBytes+1 bytes of capacity (append's own growth could reach
// 1.25-2x the bound). Callers check the length bound before.
func appendBounded(dst, src []byte) []byte {
	n := len(dst) + len(src)
	if n <= cap(dst) {
		return append(dst, src...)
	}
	c := max(2*cap(dst), n, 512)
	if c > MaxEventBytes+1 {
		c = max(MaxEventBytes+1, n)
	}
	out := make([]byte, len(dst), c)
	copy(out, dst)
	return append(out, src...)
}
