package lambdaio

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// fuzzHandler checks what reaches the gateway from any event: a request
// with a path, and none of the headers aws-lambda-go-api-proxy injects
// (X-GoLambdaProxy-*), which must never reach an upstream. It echoes a
// little, so responses are exercised too.
func fuzzHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "x-golambdaproxy") {
				t.Errorf("header %s reached the handler", name)
			}
		}
		if r.URL == nil || !strings.HasPrefix(r.URL.Path, "/") {
			t.Errorf("request path %v does not start with /", r.URL)
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body[:min(len(body), 64)])
	})
}

func fuzzSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{`{}`, `{"version":"2.0"}`, `{"version":"2.0","rawPath":"/a/%2e%2e/b","body":"aGk=","isBase64Encoded":true}`,
		`{"path":"/v1/x","httpMethod":"POST","body":"@@","isBase64Encoded":true}`, `{"httpMethod":"GET","path":"//x","multiValueHeaders":{"X-GoLambdaProxy-X":["1"]}}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
}

// FuzzBufferedEvent runs whole API Gateway REST (v1) and HTTP API (v2)
// events through Buffered: never a panic nor a Lambda error, always a
// well-formed response with a real status.
func FuzzBufferedEvent(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := Buffered(fuzzHandler(t))(context.Background(), json.RawMessage(raw))
		if err != nil {
			t.Fatalf("Lambda error: %v", err)
		}
		switch r := out.(type) {
		case events.APIGatewayProxyResponse:
			if r.StatusCode < 100 || r.StatusCode > 599 {
				t.Fatalf("v1 status %d", r.StatusCode)
			}
		case events.APIGatewayV2HTTPResponse:
			if r.StatusCode < 100 || r.StatusCode > 599 {
				t.Fatalf("v2 status %d", r.StatusCode)
			}
		default:
			t.Fatalf("response of type %T", out)
		}
	})
}

// FuzzStreamEvent runs whole REST (v1) events through Stream.
func FuzzStreamEvent(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e events.APIGatewayProxyRequest
		if json.Unmarshal(raw, &e) != nil {
			return // the Lambda runtime refuses such events before us
		}
		res, err := Stream(fuzzHandler(t))(context.Background(), e)
		if err != nil {
			t.Fatalf("Lambda error: %v", err)
		}
		if res.StatusCode < 100 || res.StatusCode > 599 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if _, err := io.ReadAll(res.Body); err != nil {
			t.Fatalf("reading the streamed body: %v", err)
		}
		if c, ok := res.Body.(io.Closer); ok {
			c.Close()
		}
	})
}
