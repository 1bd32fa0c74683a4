// Package usage reads token usage out of AI API responses while the bytes
// pass through the gateway, without holding them back: OpenAI Chat
// Completions, Responses, embeddings and legacy completions, and Anthropic
// Messages, as JSON bodies and as SSE streams. Memory is bounded whatever
// the upstream sends: a parser holds at most MaxEventBytes of one SSE event
// (or MaxJSONBytes of a JSON body) and gives up on usage past it, saying so
// in Usage.Problem.
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
	// Source is the API shape it was read from: "openai_chat",
	// "openai_responses", "openai_embeddings", "openai_completions",
	// "anthropic_messages"; "" when not Found.
	Source string
	// Model is the model the response names ("" if none).
	Model             string
	InputTokens       int64
	OutputTokens      int64
	CachedInputTokens int64
	// Problem says why usage is missing or partial when the response was
	// not usable (too large, malformed, no usage field, parser gave up),
	// "" otherwise. It never contains response content.
	Problem string
}
