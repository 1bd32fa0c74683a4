package proxy

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"testing"

	"github.com/keywaygw/keyway/shared/reqlog"
)

// Both benchmarks run the proxy in-process (ServeHTTP on a discarding
// ResponseWriter) against the same real loopback upstream answering 1 KiB
// of JSON, each with a transport from NewTransport, so that their
// allocations per request can be compared: the difference is what Forward
// adds over a bare ReverseProxy (state, header policy, body accounting,
// header timer).

// benchUpstream answers every request with 1 KiB of JSON.
func benchUpstream(b *testing.B) *httptest.Server {
	b.Helper()
	payload := append([]byte(`{"data":"`), bytes.Repeat([]byte{'a'}, 1024-len(`{"data":""}`))...)
	payload = append(payload, `"}`...)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1024")
		w.Write(payload)
	}))
	b.Cleanup(up.Close)
	return up
}

// discardWriter is a flushable ResponseWriter that drops the body.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
func (w *discardWriter) Flush()                      {}

func benchRequest() *http.Request {
	r := httptest.NewRequest("GET", "/v1/models/x?limit=10", nil)
	r.Header.Set("Authorization", "Bearer sk-client")
	r.Header.Set("Accept", "application/json")
	return r
}

func BenchmarkForward(b *testing.B) {
	up := benchUpstream(b)
	tr := NewTransport()
	b.Cleanup(tr.CloseIdleConnections)
	p := New(Options{Transport: tr})
	ep := endpoint(b, "/v1", up.URL)
	ep.Headers.Set("Authorization", "Bearer upstream-secret")
	b.ReportAllocs()
	for b.Loop() {
		r := benchRequest()
		r = r.WithContext(reqlog.NewContext(context.Background(), &reqlog.Entry{}))
		w := &discardWriter{header: make(http.Header)}
		p.Forward(w, r, ep, "/models/x")
		if w.status != 200 || w.n != 1024 {
			b.Fatalf("got %d with %d bytes; want 200 with 1024", w.status, w.n)
		}
	}
}

func BenchmarkBareReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	tr := NewTransport()
	b.Cleanup(tr.CloseIdleConnections)
	target := mustURL(b, up.URL)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: tr,
	}
	b.ReportAllocs()
	for b.Loop() {
		r := benchRequest()
		r = r.WithContext(reqlog.NewContext(context.Background(), &reqlog.Entry{}))
		w := &discardWriter{header: make(http.Header)}
		rp.ServeHTTP(w, r)
		if w.status != 200 || w.n != 1024 {
			b.Fatalf("got %d with %d bytes; want 200 with 1024", w.status, w.n)
		}
	}
}
