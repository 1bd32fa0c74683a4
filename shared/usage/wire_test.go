package usage

import "testing"

func TestHasUsage(t *testing.T) {
	for data, want := range map[string]bool{
		`{"usage":{"prompt_tokens":1}}`:             true,
		`{"usage" :  {}}`:                           true,
		"{\"usage\"\n:\t1}":                         true,
		`{"usage":null}`:                            false,
		`{"usage" : null}`:                          false,
		`{"usage":null,"x":{"usage":{}}}`:           true,
		`{"text":"\"usage\": {}"}`:                  false,
		`{"usages":{}}`:                             false,
		`{"usage"`:                                  false,
		`usage":{}`:                                 false,
		`{"logprobs":null,"fingerprint":"g","g":1}`: false,
		``: false,
	} {
		if got := hasUsage([]byte(data)); got != want {
			t.Errorf("hasUsage(%s): got %v; want %v", data, got, want)
		}
		if got, want := containsUsageKey([]byte(data)), bytesContains(data, `"usage"`); got != want {
			t.Errorf("containsUsageKey(%s): got %v; want %v", data, got, want)
		}
	}
}

func bytesContains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestEventData(t *testing.T) {
	for raw, want := range map[string]string{
		"data: a\n\n":                          "a",
		"data:a\r\ndata: b\r\n\r\n":            "a\nb",
		"event: x\rdata: a\rdata\rdata: c\r\r": "a\n\nc",
		": c\nid: 1\n\n":                       "",
	} {
		if got := string(eventData([]byte(raw))); got != want {
			t.Errorf("eventData(%q): got %q; want %q", raw, got, want)
		}
	}
}
