package proxy

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// errBodyTooLarge is returned by a limitedBody once the client has sent more
// than the limit. The upstream request then fails, and the error mapping
// answers 413.
var errBodyTooLarge = errors.New("request body exceeds the limit")

// limitedBody streams the client's request body to the upstream, counting
// bytes (for reqlog's BytesIn) and cutting the stream at the limit when the
// length was not announced (chunked uploads). Nothing is buffered beyond the
// transport's copy buffer.
//
// Read runs on the transport's writer goroutine (one Read at a time) while
// the handler may read the counters, so those are synchronised.
type limitedBody struct {
	rc     io.ReadCloser
	size   int64 // announced length, -1 if unknown
	limit  int64
	n      atomic.Int64
	eof    bool        // rc has returned io.EOF, or size bytes were read
	inRead atomic.Bool // a Read of rc is in progress

	mu  sync.Mutex
	err error // errBodyTooLarge, or the first non-EOF read error from the client
}

var _ io.ReadCloser = (*limitedBody)(nil)

func newLimitedBody(rc io.ReadCloser, size, limit int64) *limitedBody {
	return &limitedBody{rc: rc, size: size, limit: limit}
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if err := b.readErr(); errors.Is(err, errBodyTooLarge) {
		return 0, err
	}
	// Once the body is known to be complete, answer EOF without touching
	// the client's body again: the transport probes for EOF after an
	// announced length, and the server may already have closed it.
	if b.eof {
		return 0, io.EOF
	}
	read := b.n.Load()
	if b.size >= 0 && read >= b.size {
		b.eof = true
		return 0, io.EOF
	}
	remaining := b.limit - read
	if remaining < int64(len(p)) {
		p = p[:remaining+1] // one byte more tells "exactly the limit" from "over"
	}
	b.inRead.Store(true)
	n, err := b.rc.Read(p)
	b.inRead.Store(false)
	if int64(n) > remaining {
		n, err = int(remaining), errBodyTooLarge
	}
	b.n.Add(int64(n))
	if err == io.EOF {
		b.eof = true
	}
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// reading reports whether a Read of the client's body is in progress (the
// transport's writer waiting for the client to send more). Safe on a nil
// body.
func (b *limitedBody) reading() bool {
	return b != nil && b.inRead.Load()
}

// count is how many body bytes were passed on so far. Safe on a nil body.
func (b *limitedBody) count() int64 {
	if b == nil {
		return 0
	}
	return b.n.Load()
}

// readErr is errBodyTooLarge after the limit was crossed, else the first
// read error from the client, else nil. Safe on a nil body.
func (b *limitedBody) readErr() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
