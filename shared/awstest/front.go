package awstest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// front is the loopback HTTP endpoint clients reach. It forwards requests
// to moto one at a time, and for outage tests refuses connections (listener
// closed) or stalls requests (accepted, never answered).
//
// One at a time, because moto's threaded server runs requests concurrently
// without locking its tables: two conditional writes or transactions on
// the same item can both succeed, and concurrent transactions can fail with
// a 500. DynamoDB makes each conditional write atomic and transactions
// serializable; serializing requests gives tests those guarantees.
type front struct {
	addr   string // fixed for the front's life
	srv    *http.Server
	proxy  *httputil.ReverseProxy
	serial sync.Mutex

	mu      sync.Mutex
	ln      net.Listener  // nil while down
	hanging chan struct{} // non-nil while hanging; closed to release
	conns   map[net.Conn]struct{}
	closed  bool
}

func newFront(backend string) (*front, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	target := &url.URL{Scheme: "http", Host: backend}
	f := &front{addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // moto routes on Host and the signature covers it
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			ResponseHeaderTimeout: time.Minute,
			MaxIdleConnsPerHost:   4,
		},
		// A client that gave up (timeout, outage test) is not news.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	f.srv = &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			f.mu.Lock()
			defer f.mu.Unlock()
			switch st {
			case http.StateNew:
				f.conns[c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(f.conns, c)
			}
		},
	}
	go f.srv.Serve(ln)
	return f, nil
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hang := f.hanging
	f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler) // drop the connection without an answer
	}
	f.serial.Lock()
	defer f.serial.Unlock()
	f.proxy.ServeHTTP(w, r)
}

// cutLocked closes every open client connection.
func (f *front) cutLocked() {
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}

func (f *front) releaseLocked() {
	if f.hanging != nil {
		close(f.hanging)
		f.hanging = nil
	}
}

func (f *front) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.releaseLocked()
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	f.cutLocked()
}

func (f *front) hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hanging == nil {
		f.hanging = make(chan struct{})
	}
}

func (f *front) up() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("server stopped")
	}
	f.releaseLocked()
	if f.ln != nil {
		return nil
	}
	// The port was ours a moment ago; retry briefly in case the kernel is
	// slow to release it.
	var err error
	for range 40 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			f.ln = ln
			go f.srv.Serve(ln)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("re-listening on %s: %w", f.addr, err)
}

func (f *front) close() {
	f.mu.Lock()
	f.closed = true
	f.releaseLocked()
	f.ln = nil
	f.mu.Unlock()
	f.srv.Close()
}
