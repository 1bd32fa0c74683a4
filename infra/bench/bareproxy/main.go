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
	"time"

	"github.com/keywaygw/keyway/shared/proxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4100", "listen address")
	upstream := flag.String("upstream", "", "upstream base URL")
	flag.Parse()
	target, err := url.Parse(*upstream)
	if err != nil || target.Host == "" {
		log.Fatalf("bareproxy: -upstream %q: want http://host:port", *upstream)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/bench")
			pr.Out.URL.RawPath = ""
		},
		Transport:     proxy.NewTransport(),
		FlushInterval: -1,
	}
	srv := &http.Server{Addr: *addr, Handler: rp, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
