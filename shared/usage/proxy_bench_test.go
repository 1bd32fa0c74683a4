package usage

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU (user+system) this process has used: upstream, proxy
// and client all run in it, so it is the whole request's cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProxyChatSSE measures what metering adds to a whole proxied
// stream (upstream server, httputil.ReverseProxy, client), the ratio the
// gateway's CPU target is about: compare metered with unmetered. The
// upstream flushes every event, as OpenAI does.
func BenchmarkProxyChatSSE(b *testing.B) {
	body := typicalChatStream(b)
	events := bytes.SplitAfter(body, []byte("\n\n"))
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			w.Write(e)
			w.(http.Flusher).Flush()
		}
	}))
	defer upstream.Close()
	target, _ := url.Parse(upstream.URL)
	for _, metered := range []bool{false, true} {
		name := "unmetered"
		if metered {
			name = "metered"
		}
		b.Run(name, func(b *testing.B) {
			var last *Meter // requests run one at a time
			proxy := &httputil.ReverseProxy{
				Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
				ModifyResponse: func(res *http.Response) error {
					if metered {
						m := NewMeter(FormatOpenAI, res.Header.Get("Content-Type"))
						res.Body = struct {
							io.Reader
							io.Closer
						}{io.TeeReader(res.Body, m), res.Body}
						last = m
					}
					return nil
				},
			}
			front := httptest.NewServer(proxy)
			defer front.Close()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			start := cpuTime()
			for b.Loop() {
				res, err := http.Get(front.URL)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
			if metered && !last.Usage().Found {
				b.Fatalf("metered %+v; want usage", last.Usage())
			}
		})
	}
}
