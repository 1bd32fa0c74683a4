package proxy

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/config"
)

// rawClientHeaders is what the caller sends in TestForwardHeaders, written
// on the wire as is (a Go client would drop or rewrite some of them).
const rawClientHeaders = "" +
	"Authorization: Bearer sk-client-key-1\r\n" +
	"X-Api-Key: sk-client-key-2\r\n" +
	"X-Litellm-Api-Key: sk-client-key-3\r\n" +
	"Cookie: session=abc\r\n" +
	"User-Agent: client-ua/1.0\r\n" +
	"Accept: text/event-stream\r\n" +
	"X-Custom: c1\r\n" +
	"X-Custom: c2\r\n" +
	"X-Vendor: from-client\r\n" +
	"Content-Type: application/json\r\n" +
	"Connection: keep-alive, X-Hop\r\n" +
	"X-Hop: named-in-connection\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"Te: gzip\r\n" +
	"Proxy-Authorization: Basic cHJveHk6c2VjcmV0\r\n" +
	"Forwarded: for=203.0.113.7\r\n" +
	"X-Forwarded-For: 203.0.113.7\r\n" +
	"X-Forwarded-Host: gateway.example\r\n" +
	"X-Forwarded-Proto: https\r\n" +
	"X-Forwarded-Port: 443\r\n" +
	"X-Real-Ip: 203.0.113.7\r\n" +
	"X-GoLambdaProxy-ApiGw-Context: {\"requestId\":\"r\"}\r\n" +
	"Content-Length: 2\r\n"

// sendRaw writes one HTTP/1.1 request to addr byte for byte and returns the
// response status.
func sendRaw(t *testing.T, addr, head, body string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatalf("dial gateway: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testTimeout))
	if _, err := conn.Write([]byte(head + "\r\n" + body)); err != nil {
		t.Fatalf("write request: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestForwardHeaders checks the exact header set an upstream receives.
// Without forward_headers: only the configured headers and the body's
// entity headers (no User-Agent, no Cookie, no Accept). With it: the
// client's end-to-end headers too. Always: no credential header from the
// client, no hop-by-hop header (RFC 9110 §7.6.1, also those named in
// Connection), no X-Forwarded-*/Forwarded/X-Real-Ip (the caller's address),
// no X-GoLambdaProxy-*, and configured headers win.
func TestForwardHeaders(t *testing.T) {
	clientEndToEnd := map[string][]string{
		"Cookie":       {"session=abc"},
		"User-Agent":   {"client-ua/1.0"},
		"Accept":       {"text/event-stream"},
		"X-Custom":     {"c1", "c2"},
		"Content-Type": {"application/json"},
	}
	tests := []struct {
		name       string
		forward    bool
		configured map[string]string
		want       map[string][]string // the upstream's full header, bar Content-Length
	}{
		{
			name:       "strict with configured upstream credential",
			configured: map[string]string{"Authorization": "Bearer upstream-secret", "X-Vendor": "configured"},
			want: map[string][]string{
				"Authorization": {"Bearer upstream-secret"}, "X-Vendor": {"configured"},
				"Content-Type": {"application/json"},
			},
		},
		{
			name: "strict without configured headers",
			want: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name:       "strict with configured x-api-key and user-agent",
			configured: map[string]string{"X-Api-Key": "vendor-key", "User-Agent": "keyway"},
			want: map[string][]string{
				"X-Api-Key": {"vendor-key"}, "User-Agent": {"keyway"}, "Content-Type": {"application/json"},
			},
		},
		{
			name:       "forward with configured upstream credential",
			forward:    true,
			configured: map[string]string{"Authorization": "Bearer upstream-secret", "X-Vendor": "configured"},
			want: with(clientEndToEnd, map[string][]string{
				"Authorization": {"Bearer upstream-secret"}, "X-Vendor": {"configured"},
			}),
		},
		{
			name:    "forward without configured headers",
			forward: true,
			want:    with(clientEndToEnd, map[string][]string{"X-Vendor": {"from-client"}}),
		},
		{
			name:       "forward with configured x-forwarded-for",
			forward:    true,
			configured: map[string]string{"X-Forwarded-For": "10.0.0.1"},
			want: with(clientEndToEnd, map[string][]string{
				"X-Vendor": {"from-client"}, "X-Forwarded-For": {"10.0.0.1"},
			}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			ep := endpoint(t, "/v1/chat", up.URL)
			ep.ForwardHeaders = tt.forward
			for k, v := range tt.configured {
				ep.Headers.Set(k, v)
			}
			p, _ := newProxy(t, Options{})
			gw := newGateway(t, p, ep)
			status := sendRaw(t, gw.Listener.Addr().String(),
				"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway.example\r\n"+rawClientHeaders, "{}")
			gw.entry(t)
			if status != 200 {
				t.Fatalf("status: got %d; want 200", status)
			}
			got := up.last(t)
			if cl := got.Header.Get("Content-Length"); cl != "2" {
				t.Errorf("Content-Length: got %q; want 2", cl)
			}
			delete(got.Header, "Content-Length")
			for name, want := range tt.want {
				if v := got.Header[name]; !slices.Equal(v, want) {
					t.Errorf("upstream %s: got %q; want %q", name, v, want)
				}
			}
			for name, v := range got.Header {
				if _, ok := tt.want[name]; !ok {
					t.Errorf("upstream got header %s: %q; want it absent", name, v)
				}
			}
			if want := strings.TrimPrefix(up.URL, "http://"); got.Host != want {
				t.Errorf("upstream Host: got %q; want %q", got.Host, want)
			}
		})
	}
}

func with(base map[string][]string, extra map[string][]string) map[string][]string {
	out := make(map[string][]string, len(base)+len(extra))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// TestOutboundHeaderDoesNotShareConfiguredSlices guards the endpoint's
// configured header values, which every request shares: appending to an
// outgoing header must not write into them.
func TestOutboundHeaderDoesNotShareConfiguredSlices(t *testing.T) {
	ep := endpoint(t, "/v1", "https://up.example")
	ep.Headers = http.Header{"X-Vendor": make([]string, 1, 4)}
	ep.Headers["X-Vendor"][0] = "configured"
	for _, forward := range []bool{false, true} {
		ep.ForwardHeaders = forward
		out := outboundHeader(http.Header{}, ep)
		out.Add("X-Vendor", "appended")
		if got := ep.Headers["X-Vendor"]; len(got) != 1 || got[:2][1] != "" {
			t.Errorf("forward=%v: configured X-Vendor after an append to the outgoing header: got %q (backing %q); want [configured] untouched", forward, got, got[:2])
		}
	}
}

// TestNeverForwardedIsCaseInsensitive covers header maps with
// non-canonical keys, as a Lambda bridge may build them.
func TestNeverForwardedIsCaseInsensitive(t *testing.T) {
	ep := endpoint(t, "/v1", "https://up.example")
	ep.ForwardHeaders = true
	in := http.Header{
		"authorization":                 {"Bearer sk-client"},
		"x-api-key":                     {"sk-client"},
		"x-forwarded-for":               {"203.0.113.7"},
		"x-golambdaproxy-apigw-context": {"{}"},
		"x-custom":                      {"kept"},
	}
	out := outboundHeader(in, ep)
	if len(out) != 1 || out["x-custom"] == nil {
		t.Errorf("outgoing header: got %v; want only x-custom", out)
	}
}

// FuzzOutboundHeader checks the header policy for any client header name:
// no credential or caller-address header gets through unless configured,
// configured headers win with exactly their value, and without
// forward_headers only entity headers come from the client.
func FuzzOutboundHeader(f *testing.F) {
	for _, name := range []string{"Authorization", "authorization", "X-API-KEY", "x-litellm-api-key", "Cookie",
		"X-Forwarded-For", "x-forwarded-port", "X-GoLambdaProxy-Foo", "X-Real-IP", "Content-Type", "X-Custom", "Forwarded", "x-vendor"} {
		f.Add(name, "v", true)
		f.Add(name, "v", false)
	}
	configured := http.Header{"Authorization": {"Bearer upstream"}, "X-Vendor": {"configured"}}
	f.Fuzz(func(t *testing.T, name, value string, forward bool) {
		ep := &config.Endpoint{Headers: configured, ForwardHeaders: forward}
		in := http.Header{name: {value}, "X-Vendor": {"client"}}
		out := outboundHeader(in, ep)
		for k, v := range out {
			if _, ok := configured[k]; ok {
				if !slices.Equal(v, configured[k]) {
					t.Fatalf("configured %s: got %q; want %q", k, v, configured[k])
				}
				continue
			}
			if k != name {
				t.Fatalf("got header %q that neither the client (%q) nor the config set", k, name)
			}
			if _, ok := configured[http.CanonicalHeaderKey(k)]; ok {
				t.Fatalf("client header %q reached the upstream beside the configured %s", k, http.CanonicalHeaderKey(k))
			}
			if neverForwarded(k) {
				t.Fatalf("forward=%v: client header %q reached the upstream", forward, k)
			}
			if !forward && !slices.Contains(entityHeaders, k) {
				t.Fatalf("strict mode: client header %q reached the upstream", k)
			}
		}
		for k, v := range configured {
			if !slices.Equal(out[k], v) {
				t.Fatalf("configured %s: got %q; want %q", k, out[k], v)
			}
		}
	})
}
