// Command bareproxy is make bench's reference Go proxy: a bare
// httputil.ReverseProxy (Rewrite + SetURL, no auth, no logging) on Keyway's
// upstream transport (proxy.NewTransport), serving /bench/… → upstream /….
// Beside nginx and Keyway it separates what Go's net/http costs from what
// Keyway adds on top of it.
//
//	bareproxy -addr 127.0.0.1:PORT -upstream http://127.0.0.1:UP
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/keywaygw/keyway/shared/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4100", "listen address")
	upstream := flag.String("upstream", "", "upstream base URL")
	copyBuf := flag.Int("copy-buffer", 0, "response copy buffer in bytes (0: ReverseProxy's 32 KiB)")
	ioBuf := flag.Int("io-buffer", 0, "transport read/write buffer in bytes (0: proxy.NewTransport's)")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		log.Fatalf("bareproxy: -upstream %q: want http://host:port", *upstream)
	}
	tr := proxy.NewTransport()
	if *ioBuf > 0 {
		tr.ReadBufferSize, tr.WriteBufferSize = *ioBuf, *ioBuf
	}
	var pool httputil.BufferPool
	if *copyBuf > 0 {
		pool = &bufferPool{size: *copyBuf}
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/bench")
			pr.Out.URL.RawPath = ""
		},
		Transport:     tr,
		FlushInterval: -1,
		BufferPool:    pool,
	}
	srv := &http.Server{Addr: *addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

// bufferPool hands out copy buffers of one size (the -copy-buffer experiment).
type bufferPool struct {
	size int
	pool sync.Pool
}

func (b *bufferPool) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, b.size)
}

func (b *bufferPool) Put(p []byte) { b.pool.Put(&p) }
