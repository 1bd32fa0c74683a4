package lambdaio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// want is what the handler must receive for an event.
type want struct {
	method, path, query, host, remoteAddr string
	headers                               map[string][]string // exact values; nil slice means absent
	bodyFile                              string              // testdata file with the exact body, "" for empty
}

func checkReceived(t *testing.T, got *received, w want) {
	t.Helper()
	if got.Method != w.method {
		t.Errorf("method: got %q; want %q", got.Method, w.method)
	}
	if got.EscapedPath != w.path {
		t.Errorf("escaped path: got %q; want %q", got.EscapedPath, w.path)
	}
	if got.RawQuery != w.query {
		t.Errorf("raw query: got %q; want %q", got.RawQuery, w.query)
	}
	if got.Host != w.host {
		t.Errorf("host: got %q; want %q", got.Host, w.host)
	}
	if got.RemoteAddr != w.remoteAddr {
		t.Errorf("remote addr: got %q; want %q", got.RemoteAddr, w.remoteAddr)
	}
	for k, v := range w.headers {
		if g := got.Header.Values(k); !slices.Equal(g, v) {
			t.Errorf("header %s: got %q; want %q", k, g, v)
		}
	}
	for k := range got.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-golambdaproxy-") {
			t.Errorf("header %s reached the handler", k)
		}
		if k == "Host" {
			t.Errorf("Host stayed in the header map (net/http moves it to Request.Host)")
		}
	}
	var wantBody []byte
	if w.bodyFile != "" {
		wantBody = readTestdata(t, w.bodyFile)
	}
	if !bytes.Equal(got.Body, wantBody) {
		t.Errorf("body: got %q; want %q", got.Body, wantBody)
	}
	if !got.ServerKey {
		t.Errorf("http.ServerContextKey is not in the request context")
	}
}

var (
	wantV1Encoded = want{
		method:     "POST",
		path:       "/v1/files/a%2Fb%25c/x",
		query:      "model=gpt%2F4o&q=x+y%26z%3D1&tag=b&tag=a",
		host:       "abc123defg.execute-api.us-east-1.amazonaws.com",
		remoteAddr: "203.0.113.7:0",
		headers: map[string][]string{
			"Accept":        {"text/event-stream, application/json"},
			"X-Multi":       {"1", "2"},
			"X-Quoted":      {`"a, b", c`},
			"Authorization": {"Bearer sk-test-0123456789abcdef"},
			"Content-Type":  {"application/octet-stream"},
		},
		bodyFile: "binary_body.bin",
	}
	wantSAMLocal = want{
		method:     "GET",
		path:       "/v1/files/a/b%25c/100%25/what%3F%23x",
		query:      "k=1&k=2",
		host:       "127.0.0.1:3000",
		remoteAddr: "127.0.0.1:0",
		headers:    map[string][]string{"Accept": {"*/*"}},
	}
	wantV2 = want{
		method:     "POST",
		path:       "/v1/files/a%2Fb%25c/x",
		query:      "tag=b&q=x%20y%26z%3D1&tag=a&model=gpt%2F4o",
		host:       "api.example.com",
		remoteAddr: "203.0.113.7:0",
		headers: map[string][]string{
			"Accept":   {"text/event-stream, application/json"},
			"X-Multi":  {"1,2"},
			"X-Quoted": {`"a, b", c`},
			"Cookie":   {"session=s1; theme=dark"},
		},
		bodyFile: "binary_body.bin",
	}
)

// TestConversion runs real event shapes through both modes into a recording
// handler.
func TestConversion(t *testing.T) {
	decoded := v1Event(t, "rest_v1_encoded.json")
	decoded.Path = "/v1/files/a/b%c/x" // as a decoding source would send it; requestContext.path keeps the raw form
	decodedWant := wantV1Encoded

	for _, tc := range []struct {
		name  string
		event json.RawMessage
		v1    bool
		want  want
	}{
		{"rest v1 as API Gateway sends it", readTestdata(t, "rest_v1_encoded.json"), true, wantV1Encoded},
		{"rest v1 decoded path recovered from requestContext.path", mustJSON(t, decoded), true, decodedWant},
		{"rest v1 from sam local start-api", readTestdata(t, "rest_v1_samlocal_decoded.json"), true, wantSAMLocal},
		{"http api v2", readTestdata(t, "http_v2_post.json"), false, wantV2},
	} {
		t.Run(tc.name+"/buffered", func(t *testing.T) {
			rec := &recorder{}
			out, err := Buffered(rec)(testContext(t), tc.event)
			if err != nil {
				t.Fatalf("Lambda error: %v", err)
			}
			if s := statusOf(t, out); s != http.StatusOK {
				t.Fatalf("status %d; want 200 (%+v)", s, out)
			}
			checkReceived(t, rec.last(t), tc.want)
		})
		if !tc.v1 {
			continue
		}
		t.Run(tc.name+"/stream", func(t *testing.T) {
			var e events.APIGatewayProxyRequest
			if err := json.Unmarshal(tc.event, &e); err != nil {
				t.Fatal(err)
			}
			rec := &recorder{}
			resp, err := Stream(rec)(testContext(t), e)
			if err != nil {
				t.Fatalf("Lambda error: %v", err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d; want 200", resp.StatusCode)
			}
			if _, err := io.ReadAll(resp); err != nil {
				t.Fatal(err)
			}
			checkReceived(t, rec.last(t), tc.want)
		})
	}
}

// TestConversionReachesUpstream sends the events through a real reverse
// proxy to a real HTTP server and checks the request line, headers and body
// it read: encoded paths, repeated query keys, comma-bearing headers and
// base64 bodies arrive exactly as sent.
func TestConversionReachesUpstream(t *testing.T) {
	for _, tc := range []struct {
		name       string
		event      string
		requestURI string
		headers    map[string][]string
	}{
		{"rest v1", "rest_v1_encoded.json", "/v1/files/a%2Fb%25c/x?model=gpt%2F4o&q=x+y%26z%3D1&tag=b&tag=a",
			map[string][]string{"Accept": {"text/event-stream, application/json"}, "X-Multi": {"1", "2"}, "X-Quoted": {`"a, b", c`}}},
		{"http api v2", "http_v2_post.json", "/v1/files/a%2Fb%25c/x?tag=b&q=x%20y%26z%3D1&tag=a&model=gpt%2F4o",
			map[string][]string{"Accept": {"text/event-stream, application/json"}, "X-Quoted": {`"a, b", c`}, "Cookie": {"session=s1; theme=dark"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, rec := upstream(t, nil)
			out, err := Buffered(forward(t, srv.URL))(testContext(t), readTestdata(t, tc.event))
			if err != nil {
				t.Fatal(err)
			}
			if s := statusOf(t, out); s != http.StatusOK {
				t.Fatalf("status %d; want 200 (%+v)", s, out)
			}
			got := rec.last(t)
			if got.RequestURI != tc.requestURI {
				t.Errorf("upstream request URI: got %q; want %q", got.RequestURI, tc.requestURI)
			}
			for k, v := range tc.headers {
				if g := got.Header.Values(k); !slices.Equal(g, v) {
					t.Errorf("upstream header %s: got %q; want %q", k, g, v)
				}
			}
			for k := range got.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-golambdaproxy-") {
					t.Errorf("upstream received %s", k)
				}
			}
			if want := readTestdata(t, "binary_body.bin"); !bytes.Equal(got.Body, want) {
				t.Errorf("upstream body: got %q; want %q", got.Body, want)
			}
		})
	}
}

// TestEncodedPathsNeverFail: whatever path an event carries, the handler is
// called (no 504, no panic) with a valid escaped path.
func TestEncodedPathsNeverFail(t *testing.T) {
	for _, tc := range []struct{ path, rcPath, want string }{
		{"/a%2Fb", "/prod/a%2Fb", "/a%2Fb"},
		{"/a%25b", "/prod/a%25b", "/a%25b"},
		{"/100%", "", "/100%25"},
		{"/100%zz", "", "/100%25zz"},
		{"/a/b", "/prod/a%2Fb", "/a%2Fb"},
		{"/a%b", "/prod/a%25b", "/a%25b"},
		{"/q?x=1#f", "", "/q%3Fx=1%23f"},
		{"/sp ace/ü", "", "/sp%20ace/%C3%BC"},
		{"", "", "/"},
		{"no-slash", "", "/no-slash"},
		{"/", "/prod/", "/"},
		{"//evil.example/x", "", "//evil.example/x"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			e := events.APIGatewayProxyRequest{
				HTTPMethod: "GET", Path: tc.path,
				RequestContext: events.APIGatewayProxyRequestContext{Path: tc.rcPath, DomainName: "h.example"},
			}
			rec := &recorder{}
			out, err := Buffered(rec)(testContext(t), mustJSON(t, e))
			if err != nil {
				t.Fatal(err)
			}
			if s := statusOf(t, out); s != http.StatusOK {
				t.Fatalf("status %d; want 200", s)
			}
			got := rec.last(t)
			if got.EscapedPath != tc.want {
				t.Errorf("escaped path: got %q; want %q", got.EscapedPath, tc.want)
			}
			if got.Host != "h.example" {
				t.Errorf("host: got %q; want h.example", got.Host)
			}
		})
	}
}

func TestBadEventsAreWellFormedResponses(t *testing.T) {
	base := v1Event(t, "rest_v1_encoded.json")
	badB64 := base
	badB64.Body = "not base64!"
	noMethod := base
	noMethod.HTTPMethod = ""
	badMethod := base
	badMethod.HTTPMethod = "GET /x"
	badHost := base
	badHost.Headers = map[string]string{"Host": "a b/c"}
	badHost.MultiValueHeaders = map[string][]string{"Host": {"a b/c"}}
	badHost.RequestContext.DomainName = "x y"

	for _, tc := range []struct {
		name   string
		event  json.RawMessage
		status int
	}{
		{"invalid base64 body", mustJSON(t, badB64), 400},
		{"no method", mustJSON(t, noMethod), 400},
		{"invalid method", mustJSON(t, badMethod), 400},
		{"invalid host falls back to localhost", mustJSON(t, badHost), 200},
		{"not JSON", json.RawMessage(`"just a string"`), 400},
		{"v2 with wrong types", json.RawMessage(`{"version":"2.0","headers":[1,2]}`), 400},
		{"v2 without a method", json.RawMessage(`{"version":"2.0","rawPath":"/x"}`), 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			out, err := Buffered(rec)(testContext(t), tc.event)
			if err != nil {
				t.Fatalf("Lambda error %v; want a well-formed response", err)
			}
			if s := statusOf(t, out); s != tc.status {
				t.Fatalf("status %d; want %d (%+v)", s, tc.status, out)
			}
			if tc.status == 400 {
				checkEnvelope(t, bodyOf(t, out), "400")
			}
			if tc.status == 200 && rec.last(t).Host != "localhost" {
				t.Errorf("host %q; want localhost", rec.last(t).Host)
			}
		})
	}
	t.Run("stream", func(t *testing.T) {
		resp, err := Stream(&recorder{})(testContext(t), badB64)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 {
			t.Fatalf("status %d; want 400", resp.StatusCode)
		}
		body, _ := io.ReadAll(resp.Body)
		checkEnvelope(t, body, "400")
	})
}

// checkEnvelope checks a gateway error body: LiteLLM's envelope with code
// the status as a string.
func checkEnvelope(t *testing.T, body []byte, code string) {
	t.Helper()
	var env struct {
		Error *struct {
			Message, Type, Code string
			Param               *string
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		t.Fatalf("body %q is not the error envelope: %v", body, err)
	}
	if env.Error.Code != code || env.Error.Message == "" || env.Error.Type == "" || env.Error.Param == nil {
		t.Errorf("envelope %q: want code %q with message, type and param", body, code)
	}
}

func statusOf(t *testing.T, out any) int {
	t.Helper()
	switch r := out.(type) {
	case events.APIGatewayProxyResponse:
		return r.StatusCode
	case events.APIGatewayV2HTTPResponse:
		return r.StatusCode
	}
	t.Fatalf("unexpected response type %T", out)
	return 0
}

func bodyOf(t *testing.T, out any) []byte {
	t.Helper()
	var body string
	var b64 bool
	switch r := out.(type) {
	case events.APIGatewayProxyResponse:
		body, b64 = r.Body, r.IsBase64Encoded
	case events.APIGatewayV2HTTPResponse:
		body, b64 = r.Body, r.IsBase64Encoded
	default:
		t.Fatalf("unexpected response type %T", out)
	}
	if b64 {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return []byte(body)
}

func FuzzEscapePath(f *testing.F) {
	for _, s := range []string{"/a%2Fb", "/100%", "/q?x#y", "/ü", "", "%", "%%41", "/a%2", "/[x]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out := escapePath(p)
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("escapePath(%q) = %q: no leading slash", p, out)
		}
		u, err := url.Parse("http://h" + out)
		if err != nil {
			t.Fatalf("escapePath(%q) = %q does not parse: %v", p, out, err)
		}
		if u.EscapedPath() != out || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("escapePath(%q) = %q parses as path %q query %q fragment %q", p, out, u.EscapedPath(), u.RawQuery, u.Fragment)
		}
		if again := escapePath(out); again != out {
			t.Fatalf("escapePath is not idempotent: %q -> %q -> %q", p, out, again)
		}
		if _, err := url.PathUnescape(out); err != nil {
			t.Fatalf("escapePath(%q) = %q does not unescape: %v", p, out, err)
		}
	})
}

func FuzzEscapeQuery(f *testing.F) {
	for _, s := range []string{"a=1&a=2", "q=x y", "x=%zz", "a#b", "é=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := escapeQuery(q)
		u, err := url.Parse("http://h/?" + out)
		if err != nil {
			t.Fatalf("escapeQuery(%q) = %q does not parse: %v", q, out, err)
		}
		if u.RawQuery != out || u.Fragment != "" {
			t.Fatalf("escapeQuery(%q) = %q parses as query %q", q, out, u.RawQuery)
		}
		if escapeQuery(out) != out {
			t.Fatalf("escapeQuery is not idempotent on %q", q)
		}
	})
}

func TestHeadRequestHasNoBody(t *testing.T) {
	e := v1Event(t, "rest_v1_samlocal_decoded.json")
	e.HTTPMethod = "HEAD"
	out, err := Buffered(&recorder{})(context.Background(), mustJSON(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if b := bodyOf(t, out); len(b) != 0 {
		t.Errorf("HEAD response body %q; want none", b)
	}
}

func TestV2Paths(t *testing.T) {
	for _, tc := range []struct {
		name, rawPath, stage, domain, want string
	}{
		{"default stage", "/v1/x", "$default", "abc.execute-api.us-east-1.amazonaws.com", "/v1/x"},
		{"named stage on execute-api", "/prod/v1/x", "prod", "abc.execute-api.us-east-1.amazonaws.com", "/v1/x"},
		{"named stage, stage root", "/prod", "prod", "abc.execute-api.us-east-1.amazonaws.com", "/"},
		{"named stage prefix is not a segment", "/production/x", "prod", "abc.execute-api.us-east-1.amazonaws.com", "/production/x"},
		{"custom domain keeps its path", "/prod/v1/x", "prod", "api.example.com", "/prod/v1/x"},
		{"decoded by HTTP API", "/v1/100%/a b?c", "$default", "api.example.com", "/v1/100%25/a%20b%3Fc"},
		{"empty rawPath uses http.path", "", "$default", "api.example.com", "/from-http-path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: tc.rawPath}
			e.RequestContext.Stage = tc.stage
			e.RequestContext.DomainName = tc.domain
			e.RequestContext.HTTP.Method = "GET"
			e.RequestContext.HTTP.Path = "/from-http-path"
			rec := &recorder{}
			out, err := Buffered(rec)(testContext(t), mustJSON(t, e))
			if err != nil {
				t.Fatal(err)
			}
			if s := statusOf(t, out); s != 200 {
				t.Fatalf("status %d", s)
			}
			if got := rec.last(t).EscapedPath; got != tc.want {
				t.Errorf("path %q; want %q", got, tc.want)
			}
		})
	}
}
