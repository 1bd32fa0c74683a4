// Package usage reads token usage out of AI API responses while the bytes
// pass through the gateway, without holding them back: OpenAI Chat
// Completions, Responses, embeddings and legacy completions, and Anthropic
// Messages, as JSON bodies and as SSE streams. Memory is bounded whatever
// the upstream sends: a parser holds at most MaxEventBytes of one SSE event
// (or MaxJSONBytes of a JSON body) and gives up on usage past it, saying so
// in Usage.Problem.
//
// What is read from which API (Source in brackets):
//
//   - OpenAI Chat Completions [openai_chat]: JSON usage.prompt_tokens,
//     usage.completion_tokens, usage.prompt_tokens_details.cached_tokens,
//     model. SSE: the chunk with a non-null usage (with
//     stream_options.include_usage it is the last chunk, "choices": [] or
//     null); chunks with "usage": null are not decoded.
//   - OpenAI legacy completions [openai_completions]: as chat, object
//     "text_completion".
//   - OpenAI embeddings [openai_embeddings]: usage.prompt_tokens; no output.
//   - OpenAI Responses [openai_responses]: JSON usage.input_tokens,
//     usage.output_tokens, usage.input_tokens_details.cached_tokens, model.
//     SSE: the response object of response.completed, response.incomplete
//     or response.failed. That event repeats the whole answer, so a long
//     one goes over MaxEventBytes; its usage is then read from the event's
//     last 16 KiB, where the API puts it (salvage.go).
//   - Anthropic Messages [anthropic_messages]: JSON usage.input_tokens,
//     usage.output_tokens, usage.cache_creation_input_tokens,
//     usage.cache_read_input_tokens, model. SSE: message_start's
//     message.usage and message.model, then each message_delta's usage,
//     which is cumulative: the last value of each counter wins, never a sum.
//   - Error bodies and events (OpenAI {"error": ...}, Anthropic
//     {"type":"error"}, event: error, response.failed without usage): no
//     usage, and Problem says so.
//
// The include_usage injection (InjectStreamUsage, NewUsageChunkFilter) lets
// streamed Chat Completions be metered although clients rarely ask for
// usage, while the client receives the stream it asked for.
package usage

// Format selects the parser (an endpoint's keyway.usage).
type Format string

// The formats. Auto recognises every shape below by its content.
const (
	FormatAuto      Format = "auto"
	FormatOpenAI    Format = "openai"
	FormatAnthropic Format = "anthropic"
	FormatNone      Format = "none"
)

// Bounds on what a parser holds in memory.
const (
	MaxEventBytes = 64 << 10 // one SSE event
	MaxJSONBytes  = 4 << 20  // a whole JSON response body
)

// Usage is what was metered from one response.
type Usage struct {
	// Found is true when the response carried usage.
	Found bool
	// Source is the API shape it was read from (the Source* constants):
	// "openai_chat", "openai_responses", "openai_embeddings",
	// "openai_completions", "anthropic_messages"; "" when not Found.
	Source string
	// Model is the model the response names ("" if none).
	Model string
	// InputTokens and CachedInputTokens keep each API's own meaning, which
	// differs, so that the numbers match the vendor's dashboard:
	//   - OpenAI: InputTokens is prompt_tokens (input_tokens for Responses),
	//     which already includes the CachedInputTokens (cached_tokens).
	//   - Anthropic: InputTokens is input_tokens + cache_creation_input_tokens
	//     and CachedInputTokens is cache_read_input_tokens, which input_tokens
	//     does not include. Cache writes count as input because they are
	//     billed at (more than) the input rate; cache reads are kept apart
	//     because they are billed at a tenth of it: summed into input they
	//     would be charged ten times their price.
	// Pricing should use UncachedInputTokens and CachedInputTokens, which
	// mean the same for every Source.
	InputTokens       int64
	OutputTokens      int64
	CachedInputTokens int64
	// Problem says why usage is missing or partial when the response was
	// not usable (too large, malformed, no usage field, parser gave up),
	// "" otherwise. It never contains response content.
	Problem string
}

// UncachedInputTokens is the input billed at the full input rate (for
// Anthropic, cache writes included): InputTokens less the cache reads that
// OpenAI counts inside it. Together with CachedInputTokens it prices every
// Source the same way.
func (u Usage) UncachedInputTokens() int64 {
	if u.Source == SourceAnthropicMessages {
		return u.InputTokens
	}
	return max(u.InputTokens-u.CachedInputTokens, 0)
}

// TotalInputTokens is every input token the model read, cached or not: what
// a tokens-per-minute limit counts.
func (u Usage) TotalInputTokens() int64 {
	if u.Source == SourceAnthropicMessages {
		return u.InputTokens + u.CachedInputTokens
	}
	return u.InputTokens
}
