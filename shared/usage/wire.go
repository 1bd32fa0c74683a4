package usage

import (
	"bytes"
	"encoding/json"
	"errors"
)

// wireUsage is the union of the usage objects of every API the package
// reads. Pointers tell "absent" from 0, which matters for Anthropic's
// message_delta: it carries only the counters that changed meaning, and an
// absent input_tokens must not reset the one message_start gave.
type wireUsage struct {
	// OpenAI Chat Completions, legacy completions, embeddings.
	PromptTokens        *int64       `json:"prompt_tokens"`
	CompletionTokens    *int64       `json:"completion_tokens"`
	PromptTokensDetails *wireDetails `json:"prompt_tokens_details"`
	// OpenAI Responses and Anthropic Messages.
	InputTokens        *int64       `json:"input_tokens"`
	OutputTokens       *int64       `json:"output_tokens"`
	InputTokensDetails *wireDetails `json:"input_tokens_details"`
	// Anthropic prompt caching.
	CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
}

type wireDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// wireInner is the object nested in Anthropic's message_start ("message")
// and in the Responses API's stream events ("response").
type wireInner struct {
	Model string     `json:"model"`
	Usage *wireUsage `json:"usage"`
}

// wireMsg is the union of the top-level shapes: a JSON response body or one
// SSE event's data. Fields that are not needed (content, choices' text) are
// not declared, so encoding/json skips them without allocating.
type wireMsg struct {
	Type     string     `json:"type"`
	Object   string     `json:"object"`
	Model    string     `json:"model"`
	Usage    *wireUsage `json:"usage"`
	Message  *wireInner `json:"message"`
	Response *wireInner `json:"response"`
	Error    present    `json:"error"`
	Choices  present    `json:"choices"`
}

// present records whether a field was there with a value other than null,
// and whether that value was an empty array, without copying it.
type present struct {
	set    bool // the key was there
	value  bool // and not null
	empty  bool // and it was []
	object bool // and it was an object
}

func (p *present) UnmarshalJSON(b []byte) error {
	p.set = true
	b = bytes.TrimSpace(b)
	p.value = !bytes.Equal(b, nullBytes)
	p.object = len(b) > 0 && b[0] == '{'
	if len(b) >= 2 && b[0] == '[' && len(bytes.TrimSpace(b[1:len(b)-1])) == 0 {
		p.empty = true
	}
	return nil
}

// hasUsage reports whether data may hold the key "usage" with a value other
// than null. It is the cheap test that decides whether an SSE event is
// worth decoding: chat streams with include_usage send "usage":null in
// every chunk, and those must cost a byte search only. A "usage" inside a
// JSON string cannot match, because there its quotes are escaped
// (\"usage\").
//
// It looks for the key's 'g' with IndexByte (vectorised, and 'g' is rare in
// JSON keys) rather than with bytes.Index, which stops at every '"' of the
// event and was the meter's largest cost.
func hasUsage(data []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], 'g')
		if j < 0 {
			return false
		}
		g := i + j // data[g-4:g+3] is "usage" when this is the key
		i = g + 1
		if g < 4 || g+3 > len(data) || string(data[g-4:g+3]) != `"usage"` {
			continue
		}
		k := skipSpace(data, g+3)
		if k == len(data) || data[k] != ':' {
			continue
		}
		k = skipSpace(data, k+1)
		if !bytes.HasPrefix(data[k:], nullBytes) {
			return true
		}
	}
}

var nullBytes = []byte("null")

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func val(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// decode reads data into msg. A field of an unexpected type (an error
// body's "message" string where Anthropic has an object) is left empty
// rather than failing the whole message: encoding/json fills the other
// fields and reports the first mismatch, which is not a reason to lose
// the usage.
func decode(data []byte, msg *wireMsg) bool {
	err := json.Unmarshal(data, msg)
	var typeErr *json.UnmarshalTypeError
	return err == nil || errors.As(err, &typeErr)
}
