package usage

import "bytes"

// The Usage.Source values.
const (
	SourceOpenAIChat        = "openai_chat"
	SourceOpenAIResponses   = "openai_responses"
	SourceOpenAIEmbeddings  = "openai_embeddings"
	SourceOpenAICompletions = "openai_completions"
	SourceAnthropicMessages = "anthropic_messages"
)

// acc accumulates usage across the events of one response. It holds no
// slices, so Meter.Usage can work on a copy.
type acc struct {
	found  bool
	source string
	model  string
	// in, out, cached: OpenAI's prompt/input, completion/output and cached
	// tokens; Anthropic's input_tokens, output_tokens, cache_read.
	in, out, cached int64
	// create is Anthropic's cache_creation_input_tokens.
	create int64

	sawError   bool // an error event or error body
	unreadable bool // an event that looked like usage did not decode
	startOnly  bool // Anthropic stream: message_start seen, no message_delta yet
}

// The SSE event names worth decoding whatever their data holds. Every other
// event is decoded only if its data has a non-null "usage" or is an OpenAI
// error chunk ({"error": ...}).
func interesting(name []byte) bool {
	switch string(name) {
	case "message_start", "message_delta",
		"response.completed", "response.incomplete", "response.failed",
		"error":
		return true
	}
	return false
}

// event reads one SSE event's data. Most events of a stream (content
// deltas) are rejected by a byte search and never decoded: that keeps a
// metered stream's CPU close to an unmetered one.
func (a *acc) event(f Format, name, data []byte) {
	if !interesting(name) && !hasUsage(data) && !isErrorChunk(data) {
		return
	}
	if string(data) == "[DONE]" {
		return
	}
	var msg wireMsg
	if !decode(data, &msg) {
		a.unreadable = true
		return
	}
	if msg.Object == "" && msg.Usage != nil && msg.Usage.PromptTokens != nil {
		// Embeddings never stream: a streamed usage without "object" (some
		// OpenAI-compatible servers) and without completion_tokens is chat.
		msg.Object = "chat.completion.chunk"
	}
	a.take(f, &msg, string(name))
}

// isErrorChunk reports whether data is an OpenAI error object sent in a
// stream ({"error": {...}}). Only the first key is looked at: searching
// every chunk for "error" would cost a second pass over the whole stream,
// and Anthropic and the Responses API name their errors in the event line.
func isErrorChunk(data []byte) bool {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '{' {
		return false
	}
	return bytes.HasPrefix(data[skipSpace(data, i+1):], []byte(`"error"`))
}

func allowed(f Format, source string) bool {
	switch f {
	case FormatOpenAI:
		return source != SourceAnthropicMessages
	case FormatAnthropic:
		return source == SourceAnthropicMessages
	}
	return true
}

// take applies one decoded JSON body or SSE event data. name is the SSE
// event: field ("" for a JSON body); the data's "type" wins over it.
func (a *acc) take(f Format, msg *wireMsg, name string) {
	typ := msg.Type
	if typ == "" {
		typ = name
	}
	switch typ {
	case "error":
		a.sawError = true
		return
	case "message_start": // Anthropic: message.usage has the input side
		if msg.Message == nil || !allowed(f, SourceAnthropicMessages) {
			return
		}
		if msg.Message.Model != "" {
			a.model = msg.Message.Model
		}
		if u := msg.Message.Usage; u != nil {
			a.set(SourceAnthropicMessages, "", u)
			a.startOnly = true
		}
		return
	case "message_delta": // Anthropic: usage is cumulative, so the last one wins
		if msg.Usage == nil || !allowed(f, SourceAnthropicMessages) {
			return
		}
		a.update(msg.Usage)
		a.startOnly = false
		return
	case "response.completed", "response.incomplete", "response.failed":
		if typ == "response.failed" {
			a.sawError = true
		}
		if msg.Response == nil || msg.Response.Usage == nil || !allowed(f, SourceOpenAIResponses) {
			return
		}
		a.set(SourceOpenAIResponses, msg.Response.Model, msg.Response.Usage)
		return
	}
	if msg.Error.value {
		a.sawError = true
		return
	}
	if msg.Usage == nil {
		return
	}
	if src := classify(f, msg); src != "" && allowed(f, src) {
		a.set(src, msg.Model, msg.Usage)
	}
}

// classify names the API a top-level usage object came from: by the
// response's type or object when it has one, else by the usage's fields
// (OpenAI-compatible servers often leave "object" out).
func classify(f Format, msg *wireMsg) string {
	u := msg.Usage
	switch {
	case msg.Type == "message":
		return SourceAnthropicMessages
	case msg.Object == "response":
		return SourceOpenAIResponses
	case msg.Object == "chat.completion" || msg.Object == "chat.completion.chunk":
		return SourceOpenAIChat
	case msg.Object == "text_completion":
		return SourceOpenAICompletions
	case msg.Object == "list" || msg.Object == "embedding":
		return SourceOpenAIEmbeddings
	case u.PromptTokens != nil:
		if u.CompletionTokens == nil {
			return SourceOpenAIEmbeddings
		}
		return SourceOpenAIChat
	case u.InputTokens != nil || u.OutputTokens != nil:
		if u.CacheCreationInputTokens != nil || u.CacheReadInputTokens != nil || f == FormatAnthropic {
			return SourceAnthropicMessages
		}
		return SourceOpenAIResponses
	}
	return ""
}

// set replaces the usage with u, read as source's shape.
func (a *acc) set(source, model string, u *wireUsage) {
	a.found = true
	a.source = source
	if model != "" {
		a.model = model
	}
	a.in, a.out, a.cached, a.create = 0, 0, 0, 0
	switch source {
	case SourceAnthropicMessages:
		a.update(u)
	case SourceOpenAIResponses:
		a.in, a.out = val(u.InputTokens), val(u.OutputTokens)
		if u.InputTokensDetails != nil {
			a.cached = u.InputTokensDetails.CachedTokens
		}
	default: // chat, legacy completions, embeddings (no completion tokens)
		a.in, a.out = val(u.PromptTokens), val(u.CompletionTokens)
		if u.PromptTokensDetails != nil {
			a.cached = u.PromptTokensDetails.CachedTokens
		}
	}
}

// update applies an Anthropic usage object: each counter it carries
// replaces the one before (message_delta counts are cumulative, and they
// carry input counters only when those changed, e.g. with server tools).
func (a *acc) update(u *wireUsage) {
	a.found = true
	a.source = SourceAnthropicMessages
	if u.InputTokens != nil {
		a.in = *u.InputTokens
	}
	if u.OutputTokens != nil {
		a.out = *u.OutputTokens
	}
	if u.CacheReadInputTokens != nil {
		a.cached = *u.CacheReadInputTokens
	}
	if u.CacheCreationInputTokens != nil {
		a.create = *u.CacheCreationInputTokens
	}
}

// result turns the accumulated counters into a Usage. problem is the
// Meter's structural problem, which wins over the ones found here.
func (a *acc) result(problem string) Usage {
	u := Usage{Found: a.found, Model: a.model}
	if a.found {
		u.Source = a.source
		u.InputTokens, u.OutputTokens, u.CachedInputTokens = a.in, a.out, a.cached
		if a.source == SourceAnthropicMessages {
			u.InputTokens = a.in + a.create
		}
	}
	switch {
	case problem != "":
		u.Problem = problem
	case !a.found && a.sawError:
		u.Problem = "upstream error: no usage in response"
	case !a.found && a.unreadable:
		u.Problem = "usage not readable: no usage in response"
	case !a.found:
		u.Problem = "no usage in response"
	case a.sawError:
		u.Problem = "response ended in an error: usage may be partial"
	case a.startOnly:
		u.Problem = "stream ended before message_delta: output tokens partial"
	}
	return u
}
