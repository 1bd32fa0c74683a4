package awstest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// front is the loopback TCP endpoint clients reach. It forwards every
// connection to moto, or, for outage tests, refuses (listener closed) or
// stalls (accepts and never answers) connections.
type front struct {
	addr    string // fixed for the front's life
	backend string

	mu      sync.Mutex
	ln      net.Listener // nil while down
	hanging bool
	conns   map[net.Conn]struct{}
	closed  bool
}

func newFront(backend string) (*front, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	f := &front{addr: ln.Addr().String(), backend: backend, ln: ln, conns: map[net.Conn]struct{}{}}
	go f.serve(ln)
	return f, nil
}

func (f *front) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.ln != ln || f.closed {
			f.mu.Unlock()
			c.Close()
			continue
		}
		f.conns[c] = struct{}{}
		hang := f.hanging
		f.mu.Unlock()
		if hang {
			continue // held open, never read, until Up or Down closes it
		}
		go f.forward(c)
	}
}

func (f *front) forward(c net.Conn) {
	defer f.drop(c)
	b, err := net.DialTimeout("tcp", f.backend, 2*time.Second)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns[b] = struct{}{}
	f.mu.Unlock()
	defer f.drop(b)
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
}

func (f *front) drop(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// cutLocked closes every open connection.
func (f *front) cutLocked() {
	for c := range f.conns {
		c.Close()
		delete(f.conns, c)
	}
}

func (f *front) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hanging = false
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	f.cutLocked()
}

func (f *front) hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutLocked() // pooled keep-alive connections would still get answers
	f.hanging = true
}

func (f *front) up() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("server stopped")
	}
	if f.hanging {
		f.hanging = false
		f.cutLocked()
	}
	if f.ln != nil {
		return nil
	}
	// The port was ours a moment ago; retry briefly in case the kernel is
	// slow to release it.
	var err error
	for i := 0; i < 40; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			f.ln = ln
			go f.serve(ln)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("re-listening on %s: %w", f.addr, err)
}

func (f *front) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.ln != nil {
		f.ln.Close()
		f.ln = nil
	}
	f.cutLocked()
}
