package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// NewTransport returns the upstream transport, meant to be built once per
// process and shared by every endpoint (Lambda reuses it across warm
// invocations).
//
//   - DisableCompression: the transport neither asks for gzip nor decodes
//     it, so response bodies reach the caller byte-exact with the upstream's
//     own Content-Encoding.
//   - ForceAttemptHTTP2: HTTP/2 is negotiated by ALPN where the upstream
//     offers it, even though DialContext and TLSClientConfig are customised
//     (which otherwise turns HTTP/2 off).
//   - No ResponseHeaderTimeout: the wait for response headers is bounded per
//     endpoint (config.Endpoint.Timeout) by Forward, and nothing bounds the
//     body, so long streams live.
//   - A larger idle pool per host than Go's default of 2: a gateway talks to
//     few hosts, many requests at a time.
//   - Proxy from the environment (HTTPS_PROXY, NO_PROXY), like
//     http.DefaultTransport, for deployments that egress through one.
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		DisableCompression:    true,
		ReadBufferSize:        32 << 10,
		WriteBufferSize:       32 << 10,
	}
}

// copyBufferSize is the size of the buffers ReverseProxy copies response
// bodies through. A buffer is held for a response's whole life, and most
// responses through Keyway are long SSE streams, so it stays at 32 KiB:
// 256 KiB made 1 GiB downloads about 1.2x faster with ~20% less CPU per GiB,
// but would cost 256 KiB per open stream (256 MiB for 1000 streams).
// docs/performance.md has the measurements.
const copyBufferSize = 32 << 10

// bufferPool recycles ReverseProxy's response copy buffers, which it would
// otherwise allocate per request.
type bufferPool struct{ pool sync.Pool }

var _ httputil.BufferPool = (*bufferPool)(nil)

func (b *bufferPool) Get() []byte {
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) != copyBufferSize {
		return
	}
	buf = buf[:copyBufferSize]
	b.pool.Put(&buf)
}
