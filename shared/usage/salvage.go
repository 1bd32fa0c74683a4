package usage

import (
	"bytes"
	"encoding/json"
)

// The Responses API repeats the whole response in its final stream event
// (response.completed, response.incomplete, response.failed): every output
// item, the instructions and the tools, then "usage" near the end. A long
// answer takes that event over MaxEventBytes, and skipping it would lose
// the usage of exactly the most expensive requests. So a skipped event of
// those types keeps its first salvageHead bytes (which name the type and
// the model) and its last salvageTail bytes (which hold "usage" and the
// few short fields after it: user, metadata), and the usage object is cut
// out of the tail. Memory stays bounded: salvageHead + 2*salvageTail.

const (
	salvageHead = 8 << 10
	salvageTail = 16 << 10
)

const problemOversize = "SSE event over 64 KiB skipped: usage may be missing or partial"

// startSalvage decides, when an event goes over the bound, whether it may be
// a Responses final event, and if so keeps its start and begins its tail.
// The bytes of the event so far are m.data followed by pending.
func (m *Meter) startSalvage(pending [][]byte) {
	m.head = m.head[:0]
	for _, b := range append([][]byte{m.data}, pending...) {
		if n := salvageHead - len(m.head); n > 0 {
			m.head = append(m.head, b[:min(n, len(b))]...)
		}
	}
	m.salvaging = salvageType(m.event, m.head) != ""
	if !m.salvaging {
		m.head = m.head[:0]
		return
	}
	m.tail = m.tail[:0]
	m.keepTail(m.data)
	for _, b := range pending {
		m.keepTail(b)
	}
}

// keepTail appends b to the rolling tail of a salvaged event, keeping at
// least the last salvageTail bytes in a buffer of at most twice that.
func (m *Meter) keepTail(b []byte) {
	if !m.salvaging {
		return
	}
	if len(b) >= salvageTail {
		m.tail = append(m.tail[:0], b[len(b)-salvageTail:]...)
		return
	}
	if len(m.tail)+len(b) > 2*salvageTail {
		keep := salvageTail - len(b)
		m.tail = m.tail[:copy(m.tail, m.tail[len(m.tail)-keep:])]
	}
	if m.tail == nil {
		m.tail = make([]byte, 0, 2*salvageTail)
	}
	m.tail = append(m.tail, b...)
}

func (m *Meter) endSalvage() {
	m.salvaging = false
	m.head = m.head[:0]
	m.tail = m.tail[:0]
}

// salvage reads the usage of a skipped Responses final event into a, and
// reports whether it found one.
func (m *Meter) salvage(a *acc) bool {
	if !m.salvaging {
		return false
	}
	typ := salvageType(m.event, m.head)
	obj := lastObject(m.tail, `"usage"`)
	if obj == nil {
		return false
	}
	var u wireUsage
	if json.Unmarshal(obj, &u) != nil || u.InputTokens == nil && u.OutputTokens == nil {
		return false
	}
	if !allowed(m.format, SourceOpenAIResponses) {
		return false
	}
	msg := wireMsg{Type: typ, Response: &wireInner{Model: stringField(m.head, `"model"`), Usage: &u}}
	a.take(m.format, &msg, typ)
	return true
}

// salvageType is the type of a Responses final event, from its event:
// line or else from the "type" its data starts with; "" for other events.
func salvageType(name, head []byte) string {
	typ := string(name)
	if typ == "" {
		typ = stringField(head, `"type"`)
	}
	switch typ {
	case "response.completed", "response.incomplete", "response.failed":
		return typ
	}
	return ""
}

// stringField returns the string value of the first occurrence of key
// (with its quotes) in data that has a string value, or "".
func stringField(data []byte, key string) string {
	for {
		i := bytes.Index(data, []byte(key))
		if i < 0 {
			return ""
		}
		data = data[i+len(key):]
		k := skipSpace(data, 0)
		if k == len(data) || data[k] != ':' {
			continue
		}
		k = skipSpace(data, k+1)
		if k == len(data) || data[k] != '"' {
			continue
		}
		end := stringEnd(data, k)
		if end < 0 {
			return ""
		}
		var s string
		if json.Unmarshal(data[k:end], &s) != nil {
			return ""
		}
		return s
	}
}

// stringEnd returns the index just past the JSON string that starts at
// data[i] (a quote), or -1 if it does not end in data.
func stringEnd(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// lastObject returns the value of the last occurrence of key (with its
// quotes) in data whose value is not a string, if that value is a complete
// object; nil otherwise. String values are passed over because the fields
// after the Responses usage (metadata) are strings that any client may
// name "usage"; a null value means there is no usage, and an earlier
// object (a tool's schema property called "usage") must not be taken for
// it. The key's unescaped quotes cannot occur inside a JSON string, so a
// match is a real key even when data starts in the middle of the document.
func lastObject(data []byte, key string) []byte {
	for end := len(data); ; {
		i := bytes.LastIndex(data[:end], []byte(key))
		if i < 0 {
			return nil
		}
		end = i
		k := skipSpace(data, i+len(key))
		if k == len(data) || data[k] != ':' {
			continue
		}
		k = skipSpace(data, k+1)
		switch {
		case k == len(data) || data[k] == '"':
			continue
		case data[k] != '{':
			return nil
		}
		if n := objectEnd(data, k); n > 0 {
			return data[k:n]
		}
		return nil
	}
}

// objectEnd returns the index just past the object that starts at data[i]
// (a '{'), or -1 if it does not end in data.
func objectEnd(data []byte, i int) int {
	depth := 0
	for j := i; j < len(data); j++ {
		switch data[j] {
		case '"':
			e := stringEnd(data, j)
			if e < 0 {
				return -1
			}
			j = e - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return -1
}
