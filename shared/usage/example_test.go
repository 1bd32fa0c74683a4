package usage_test

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keywaygw/keyway/shared/usage"
)

// The proxy's arrangement for a streamed chat request on a `usage: openai`
// endpoint: inject include_usage into the request, meter the upstream's
// bytes, and filter the usage chunk out of what the client receives.
func Example() {
	req, injected := usage.InjectStreamUsage([]byte(`{"model":"gpt-4o","stream":true,"messages":[]}`))
	fmt.Println(string(req))

	upstream := strings.NewReader("data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n" +
		"data: {\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}\n\n" +
		"data: [DONE]\n\n")
	m := usage.NewMeter(usage.FormatOpenAI, "text/event-stream")
	var body io.Reader = io.TeeReader(upstream, m) // the Meter sees every byte
	if injected {
		body = usage.NewUsageChunkFilter(body) // the client does not see the usage chunk
	}
	io.Copy(os.Stdout, body)
	fmt.Printf("%+v\n", m.Usage())
	// Output:
	// {"model":"gpt-4o","stream":true,"messages":[],"stream_options":{"include_usage":true}}
	// data: {"object":"chat.completion.chunk","choices":[{"delta":{"content":"Hi"}}]}
	//
	// data: [DONE]
	//
	// {Found:true Source:openai_chat Model:gpt-4o InputTokens:9 OutputTokens:1 CachedInputTokens:0 Problem:}
}
