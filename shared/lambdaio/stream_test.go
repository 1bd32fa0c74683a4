package lambdaio

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// The prelude separator of API Gateway's streaming integration format: the
// JSON metadata, then eight NUL bytes, then the body.
const preludeSep = "\x00\x00\x00\x00\x00\x00\x00\x00"

// TestStreamPreludeBytes checks the exact bytes aws-lambda-go sends to the
// Runtime API for a streamed response: lambda.NewHandler runs the handler as
// the runtime does (JSON event in, io.Reader out) and reads the reader.
func TestStreamPreludeBytes(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		w.Header().Set("X-Comma", "a, b")
		w.Header().Add("Set-Cookie", "a=1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		io.WriteString(w, "data: two\n\n")
	})
	got, err := lambda.NewHandler(Stream(h)).Invoke(testContext(t), readTestdata(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"statusCode":201,` +
		`"multiValueHeaders":{"Content-Type":["text/event-stream"],"X-Comma":["a, b"],"X-Multi":["1","2"]},` +
		`"cookies":["a=1; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT","b=2"]}` +
		preludeSep + "data: one\n\ndata: two\n\n"
	if string(got) != want {
		t.Errorf("streamed bytes:\n got %q\nwant %q", got, want)
	}

	resp, err := Stream(h)(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	if ct := resp.ContentType(); ct != "application/vnd.awslambda.http-integration-response" {
		t.Errorf("runtime content type %q", ct)
	}
}

// TestStreamBinaryBodyIsRaw: a streamed body is the bytes, not base64 (API
// Gateway streams binary without binary media types).
func TestStreamBinaryBodyIsRaw(t *testing.T) {
	bin := readTestdata(t, "binary_body.bin")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(bin)
	})
	got, err := lambda.NewHandler(Stream(h)).Invoke(testContext(t), readTestdata(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	head, body, ok := bytes.Cut(got, []byte(preludeSep))
	if !ok {
		t.Fatalf("no prelude separator in %q", got)
	}
	if want := `{"statusCode":200,"multiValueHeaders":{"Content-Type":["application/octet-stream"]}}`; string(head) != want {
		t.Errorf("prelude %s; want %s", head, want)
	}
	if !bytes.Equal(body, bin) {
		t.Errorf("body %q; want %q", body, bin)
	}
}

// TestStreamChunksArriveBeforeHandlerReturns is the bridge itself: each
// chunk the handler writes can be read from the returned body while the
// handler is still running.
func TestStreamChunksArriveBeforeHandlerReturns(t *testing.T) {
	next := make(chan struct{})
	done := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
		}
	})
	resp, err := Stream(h)(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	if resp.StatusCode != 200 || resp.MultiValueHeaders["Content-Type"][0] != "text/event-stream" {
		t.Fatalf("head: %d %v", resp.StatusCode, resp.MultiValueHeaders)
	}
	br := bufio.NewReader(resp)
	if _, err := br.ReadString(0); err != nil { // through the first NUL of the prelude
		t.Fatal(err)
	}
	if _, err := io.ReadFull(br, make([]byte, 7)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		line := readEvent(t, br)
		if want := fmt.Sprintf("data: %d\n\n", i); line != want {
			t.Fatalf("chunk %d: got %q; want %q", i, line, want)
		}
		select {
		case <-done:
			t.Fatalf("the handler returned before chunk %d was read", i)
		default:
		}
		next <- struct{}{}
	}
	recv(t, done, "the handler to return")
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the last chunk: %q, %v; want EOF", rest, err)
	}
}

// readEvent reads one SSE event ("...\n\n") with a bounded wait.
func readEvent(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	ch := make(chan string, 1)
	go func() {
		var b strings.Builder
		for !strings.HasSuffix(b.String(), "\n\n") {
			s, err := br.ReadString('\n')
			b.WriteString(s)
			if err != nil {
				break
			}
		}
		ch <- b.String()
	}()
	return recv(t, ch, "an SSE event")
}

// TestStreamSSEThroughProxy streams a real upstream's server-sent events
// through a real reverse proxy: each event is read from the Lambda body
// before the upstream sends the next.
func TestStreamSSEThroughProxy(t *testing.T) {
	next := make(chan struct{})
	srv, rec := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "data: {\"token\":%d}\n\n", i)
			w.(http.Flusher).Flush()
			if i < 3 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
			}
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	resp, err := Stream(forward(t, srv.URL))(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body) // the body alone, after the head
	for i := 1; i <= 3; i++ {
		if got, want := readEvent(t, br), fmt.Sprintf("data: {\"token\":%d}\n\n", i); got != want {
			t.Fatalf("event %d: got %q; want %q", i, got, want)
		}
		if i < 3 {
			next <- struct{}{}
		}
	}
	if got := readEvent(t, br); got != "data: [DONE]\n\n" {
		t.Fatalf("last event %q", got)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after [DONE]: %q, %v; want a clean end", rest, err)
	}
	if got := rec.last(t).RequestURI; got != "/v1/files/a%2Fb%25c/x?model=gpt%2F4o&q=x+y%26z%3D1&tag=b&tag=a" {
		t.Errorf("upstream request URI %q", got)
	}
}

// TestStreamUpstreamBreaksMidStream: the upstream promises more than it
// sends and drops the connection. The caller must get an error, not a
// complete-looking 200.
func TestStreamUpstreamBreaksMidStream(t *testing.T) {
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		io.WriteString(w, "data: partial\n\n")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	resp, err := Stream(forward(t, srv.URL))(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatalf("Lambda error before the stream: %v", err)
	}
	defer resp.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d; want the upstream's 200", resp.StatusCode)
	}
	body, err := readAllBounded(t, resp.Body)
	if !errors.Is(err, ErrAborted) {
		t.Fatalf("reading the body: err %v; want ErrAborted", err)
	}
	if !strings.HasPrefix(string(body), "data: partial\n\n") {
		t.Errorf("body before the error: %q", body)
	}
}

func readAllBounded(t *testing.T, r io.Reader) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	ch := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		ch <- result{b, err}
	}()
	res := recv(t, ch, "the body to end")
	return res.b, res.err
}

// TestStreamAborts covers the ways a handler abandons a response after the
// status was sent; each ends the body with ErrAborted.
func TestStreamAborts(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    func(cancel context.CancelFunc) http.HandlerFunc
	}{
		{"panic ErrAbortHandler", func(context.CancelFunc) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "data: 1\n\n")
				panic(http.ErrAbortHandler)
			}
		}},
		{"panic", func(context.CancelFunc) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "data: 1\n\n")
				panic("boom")
			}
		}},
		{"context ends mid-stream", func(cancel context.CancelFunc) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "data: 1\n\n")
				cancel() // as the invocation deadline would
				<-r.Context().Done()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()
			resp, err := Stream(tc.h(cancel))(ctx, v1Event(t, "rest_v1_encoded.json"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Close()
			body, err := readAllBounded(t, resp.Body)
			if !errors.Is(err, ErrAborted) {
				t.Fatalf("err %v; want ErrAborted", err)
			}
			if string(body) != "data: 1\n\n" {
				t.Errorf("body before the error %q", body)
			}
		})
	}
}

// TestStreamFailuresBeforeHead: before anything is sent, failures become
// well-formed gateway errors with a nil Lambda error.
func TestStreamFailuresBeforeHead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      http.HandlerFunc
		status int
		code   string
	}{
		{"panic", func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Partial", "1"); panic("boom") }, 500, "500"},
		{"abort", func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }, 502, "502"},
		{"invalid status", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(42) }, 500, "500"},
		{"nothing written", func(w http.ResponseWriter, r *http.Request) {}, 200, ""},
		{"upstream down", nil, 502, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Handler = tc.h
			if tc.h == nil {
				h = forward(t, "http://127.0.0.1:1") // nothing listens on port 1
			}
			resp, err := Stream(h)(testContext(t), v1Event(t, "rest_v1_encoded.json"))
			if err != nil {
				t.Fatalf("Lambda error %v", err)
			}
			defer resp.Close()
			body, err := readAllBounded(t, resp.Body)
			if err != nil {
				t.Fatalf("body error %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d; want %d", resp.StatusCode, tc.status)
			}
			if _, ok := resp.MultiValueHeaders["X-Partial"]; ok {
				t.Errorf("headers of the abandoned response were sent: %v", resp.MultiValueHeaders)
			}
			if tc.code != "" {
				checkEnvelope(t, body, tc.code)
			}
		})
	}
}

// TestStreamBodyCloseStopsHandler: when the runtime closes the body early,
// the handler's context ends instead of it blocking on the pipe.
func TestStreamBodyCloseStopsHandler(t *testing.T) {
	stopped := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "x")
		<-r.Context().Done()
		stopped <- context.Cause(r.Context())
	})
	resp, err := Stream(h)(testContext(t), v1Event(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	if cause := recv(t, stopped, "the handler context to end"); !errors.Is(cause, ErrAborted) {
		t.Errorf("cause %v; want ErrAborted", cause)
	}
}

// TestStreamSniffsLikeNetHTTP: with no Content-Type the first bytes are
// sniffed, as the local server does, unless the handler suppressed it.
func TestStreamSniffsLikeNetHTTP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		suppress bool
		want     []string
	}{
		{"sniffed", false, []string{"text/html; charset=utf-8"}},
		{"suppressed", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.suppress {
					w.Header()["Content-Type"] = nil
				}
				io.WriteString(w, "<!DOCTYPE html><p>hi")
			})
			resp, err := Stream(h)(testContext(t), v1Event(t, "rest_v1_encoded.json"))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Close()
			io.Copy(io.Discard, resp.Body)
			if got := resp.MultiValueHeaders["Content-Type"]; fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Content-Type %q; want %q", got, tc.want)
			}
		})
	}
}

var _ = events.APIGatewayProxyStreamingResponse{}
