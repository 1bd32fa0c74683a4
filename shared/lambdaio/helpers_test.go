package lambdaio

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// waitLimit bounds every wait in these tests; nothing here should take more
// than a fraction of it.
const waitLimit = 5 * time.Second

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func v1Event(t *testing.T, name string) events.APIGatewayProxyRequest {
	t.Helper()
	var e events.APIGatewayProxyRequest
	if err := json.Unmarshal(readTestdata(t, name), &e); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return e
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// received is what a handler or upstream saw of a request.
type received struct {
	Method      string
	RequestURI  string // as the upstream's server read it from the request line
	EscapedPath string
	RawQuery    string
	Host        string
	RemoteAddr  string
	Header      http.Header
	Body        []byte
	ServerKey   bool // http.ServerContextKey in the request context
}

// recorder is an http.Handler that records what it received and answers
// 200 "ok".
type recorder struct {
	mu  sync.Mutex
	got *received
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.got = &received{
		Method:      r.Method,
		RequestURI:  r.RequestURI,
		EscapedPath: r.URL.EscapedPath(),
		RawQuery:    r.URL.RawQuery,
		Host:        r.Host,
		RemoteAddr:  r.RemoteAddr,
		Header:      r.Header.Clone(),
		Body:        body,
		ServerKey:   r.Context().Value(http.ServerContextKey) != nil,
	}
	rec.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok")
}

func (rec *recorder) last(t *testing.T) *received {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.got == nil {
		t.Fatal("the handler was not called")
	}
	return rec.got
}

// upstream starts a real HTTP server that records each request as it read
// it off the wire and answers with serve (or 200 "ok").
func upstream(t *testing.T, serve http.HandlerFunc) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if serve == nil {
			rec.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = &received{Method: r.Method, RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body}
		rec.mu.Unlock()
		serve(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, rec
}

// forward returns a real pass-through handler, built like the gateway's
// proxy: httputil.ReverseProxy with Rewrite and SetURL, flushing every write.
func forward(t *testing.T, target string) http.Handler {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return &httputil.ReverseProxy{
		Rewrite:       func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
}

// recv waits for a value from ch, failing the test after waitLimit.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	t.Cleanup(cancel)
	return ctx
}
