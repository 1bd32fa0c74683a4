package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// TestClassify is the status mapping, one row per kind of failure.
func TestClassify(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	timedOut, cancelTimeout := context.WithCancelCause(context.Background())
	cancelTimeout(errHeaderTimeout)
	bodyWith := func(err error) *limitedBody { return &limitedBody{err: err} }
	dialErr := &url.Error{Op: "Post", URL: "http://up.example/x?api_key=secret", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}

	tests := []struct {
		name       string
		err        error
		parent     context.Context
		ctx        context.Context
		body       *limitedBody
		wantStatus int
		wantType   string
		wantReason string
	}{
		{"unsafe sub-path", &PathError{Reason: "x"}, nil, nil, nil, 400, apierr.TypeBadRequest, "unsafe sub-path"},
		{"unsafe query", &QueryError{Reason: "x"}, nil, nil, nil, 400, apierr.TypeBadRequest, "unsafe query string"},
		{"announced body too large", errBodyTooLarge, nil, nil, nil, 413, apierr.TypeTooLarge, "request body too large"},
		{"streamed body cut at the limit", fmt.Errorf("write: %w", io.ErrClosedPipe), nil, nil, bodyWith(errBodyTooLarge), 413, apierr.TypeTooLarge, "request body too large"},
		{"header timeout", context.Canceled, nil, timedOut, nil, 504, apierr.TypeTimeout, "upstream header timeout"},
		{"header timeout seen on response", errHeaderTimeout, nil, nil, nil, 504, apierr.TypeTimeout, "upstream header timeout"},
		{"client gone", context.Canceled, canceled, nil, nil, 499, apierr.TypeBadRequest, "client closed request"},
		{"client body truncated", io.ErrUnexpectedEOF, nil, nil, bodyWith(io.ErrUnexpectedEOF), 499, apierr.TypeBadRequest, "client closed request"},
		{"client body malformed", errors.New("malformed chunked encoding"), nil, nil, bodyWith(errors.New("malformed chunked encoding")), 400, apierr.TypeBadRequest, "request body unreadable"},
		{"connection refused", dialErr, nil, nil, nil, 502, apierr.TypeUpstream, "upstream unreachable"},
		{"connection reset", io.ErrUnexpectedEOF, nil, nil, nil, 502, apierr.TypeUpstream, "upstream request failed"},
	}
	p := New(Options{})
	ep := endpoint(t, "/v1/ocr", "https://up.example/api")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &state{ep: ep, entry: &reqlog.Entry{}, parent: context.Background(), ctx: tt.ctx, body: tt.body, timeout: time.Second}
			if tt.parent != nil {
				st.parent = tt.parent
			}
			f := p.classify(st, tt.err)
			if f.err.Status != tt.wantStatus || f.err.Type != tt.wantType || f.reason != tt.wantReason {
				t.Errorf("classify(%v): got %d %s %q; want %d %s %q", tt.err, f.err.Status, f.err.Type, f.reason, tt.wantStatus, tt.wantType, tt.wantReason)
			}
			if f.err.Code != fmt.Sprint(tt.wantStatus) {
				t.Errorf("code: got %q; want %q", f.err.Code, fmt.Sprint(tt.wantStatus))
			}
			if strings.Contains(f.err.Message, "secret") {
				t.Errorf("message leaks the upstream URL: %q", f.err.Message)
			}
		})
	}
}

// TestForwardHeaderTimeout shows that the endpoint timeout bounds only the
// wait for response headers: an upstream slow to answer gets 504 (and sees
// its request canceled), while one that answers at once and then trickles
// its body for longer than the timeout is relayed in full.
func TestForwardHeaderTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	tests := []struct {
		name       string
		handler    func(w http.ResponseWriter, r *http.Request, canceled chan<- bool)
		wantStatus int
		wantBody   string
		wantReason string
	}{
		{
			name: "slow headers",
			handler: func(w http.ResponseWriter, r *http.Request, canceled chan<- bool) {
				select {
				case <-r.Context().Done():
					canceled <- true
				case <-time.After(testTimeout):
					canceled <- false
				}
			},
			wantStatus: http.StatusGatewayTimeout,
			wantReason: "upstream header timeout",
		},
		{
			name: "slow body",
			handler: func(w http.ResponseWriter, r *http.Request, canceled chan<- bool) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(http.StatusOK)
				http.NewResponseController(w).Flush()
				for i := range 6 { // 6 × 60ms > timeout
					time.Sleep(60 * time.Millisecond)
					fmt.Fprintf(w, "data: %d\n\n", i)
					http.NewResponseController(w).Flush()
				}
				canceled <- r.Context().Err() != nil
			},
			wantStatus: http.StatusOK,
			wantBody:   "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: 5\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			canceled := make(chan bool, 1)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) { tt.handler(w, r, canceled) })
			ep := endpoint(t, "/v1/chat", up.URL)
			ep.Timeout = timeout
			p, _ := newProxy(t, Options{})
			gw := newGateway(t, p, ep)
			start := time.Now()
			res, body := do(t, newClient(t), mustRequest(t, "GET", gw.URL+"/v1/chat", nil))
			elapsed := time.Since(start)
			entry := gw.entry(t)
			wasCanceled := <-canceled
			if tt.wantStatus == http.StatusGatewayTimeout {
				env := checkEnvelope(t, res, body, http.StatusGatewayTimeout, apierr.TypeTimeout)
				host := strings.TrimPrefix(up.URL, "http://")
				if !strings.Contains(env.Error.Message, "/v1/chat") || !strings.Contains(env.Error.Message, host) {
					t.Errorf("message: got %q; want it to name /v1/chat and %s", env.Error.Message, host)
				}
				if !wasCanceled {
					t.Error("upstream request context: got still live; want canceled after the timeout")
				}
				if elapsed > timeout+2*time.Second {
					t.Errorf("504 after %v; want soon after %v", elapsed, timeout)
				}
			} else {
				if res.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
					t.Errorf("got %d %q; want %d %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
				}
				if wasCanceled {
					t.Error("upstream request context: got canceled mid-body; want live until the body is done")
				}
			}
			if entry.Error != tt.wantReason {
				t.Errorf("log entry error: got %q; want %q", entry.Error, tt.wantReason)
			}
		})
	}
}

// TestForwardClientDisconnectCancelsUpstream shows that a caller who goes
// away cancels the upstream request, both while waiting for headers and
// while a body is streaming, and that this is logged as 499.
func TestForwardClientDisconnectCancelsUpstream(t *testing.T) {
	tests := []struct {
		name        string
		sendHeaders bool
	}{
		{"waiting for headers", false},
		{"while streaming the body", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan struct{})
			canceled := make(chan bool, 1)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				if tt.sendHeaders {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, "data: first\n\n")
					http.NewResponseController(w).Flush()
				}
				close(started)
				select {
				case <-r.Context().Done():
					canceled <- true
				case <-time.After(testTimeout):
					canceled <- false
				}
			})
			p, _ := newProxy(t, Options{})
			gw := newGateway(t, p, endpoint(t, "/v1/chat", up.URL))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				res, err := newClient(t).Do(mustRequest(t, "GET", gw.URL+"/v1/chat", nil).WithContext(ctx))
				if err == nil {
					_, err = io.ReadAll(res.Body) // blocks until the cancel below
					res.Body.Close()
				}
				errc <- err
			}()
			select {
			case <-started:
			case <-time.After(testTimeout):
				t.Fatal("upstream never received the request")
			}
			if tt.sendHeaders {
				time.Sleep(20 * time.Millisecond) // let the first event reach the client
			}
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("client: got %v; want context.Canceled", err)
			}
			if !<-canceled {
				t.Error("upstream request context: got still live; want canceled when the client left")
			}
			e := gw.entry(t)
			if e.Error != "client closed request" {
				t.Errorf("log entry error: got %q; want client closed request", e.Error)
			}
			// Before headers the gateway records 499; after, the
			// upstream's status stands and the stream is aborted.
			if want := map[bool]int{false: apierr.StatusClientClosed, true: http.StatusOK}[tt.sendHeaders]; e.Status != want {
				t.Errorf("status seen by the access log: got %d; want %d", e.Status, want)
			}
		})
	}
}

// TestForwardUpstreamFailures: an upstream that refuses connections or
// drops them without answering gets a 502 envelope naming the endpoint and
// host.
func TestForwardUpstreamFailures(t *testing.T) {
	refused := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return "http://" + addr
	}
	hangsUp := func(t *testing.T) string {
		up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		return up.URL
	}
	tests := []struct {
		name       string
		target     func(t *testing.T) string
		wantReason string
	}{
		{"connection refused", refused, "upstream unreachable"},
		{"connection dropped", hangsUp, "upstream request failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target(t)
			p, _ := newProxy(t, Options{})
			gw := newGateway(t, p, endpoint(t, "/v1/ocr", target))
			res, body := do(t, newClient(t), mustRequest(t, "POST", gw.URL+"/v1/ocr", strings.NewReader("{}")))
			entry := gw.entry(t)
			env := checkEnvelope(t, res, body, http.StatusBadGateway, apierr.TypeUpstream)
			host := strings.TrimPrefix(target, "http://")
			if !strings.Contains(env.Error.Message, "/v1/ocr") || !strings.Contains(env.Error.Message, host) {
				t.Errorf("message: got %q; want it to name /v1/ocr and %s", env.Error.Message, host)
			}
			if entry.Error != tt.wantReason || entry.UpstreamStatus != 0 {
				t.Errorf("log entry: got error %q, upstream status %d; want %q, 0", entry.Error, entry.UpstreamStatus, tt.wantReason)
			}
		})
	}
}

// TestForwardBodyLimit: an announced length over the limit gets 413 before
// anything is forwarded; an unannounced (chunked) body is cut at the limit
// and answered 413; bodies up to the limit pass whole.
func TestForwardBodyLimit(t *testing.T) {
	const limit = 1024
	tests := []struct {
		name       string
		size       int
		chunked    bool
		wantStatus int
	}{
		{"announced under", limit - 1, false, 200},
		{"announced at limit", limit, false, 200},
		{"announced over", limit + 1, false, 413},
		{"announced far over", 10 * limit, false, 413},
		{"chunked at limit", limit, true, 200},
		{"chunked over", limit + 1, true, 413},
		{"chunked far over", 1 << 20, true, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			p, _ := newProxy(t, Options{MaxRequestBodyBytes: limit})
			gw := newGateway(t, p, endpoint(t, "/v1/upload", up.URL))
			payload := bytes.Repeat([]byte{'x'}, tt.size)
			var body io.Reader = bytes.NewReader(payload)
			if tt.chunked {
				body = io.MultiReader(body)
			}
			req := mustRequest(t, "POST", gw.URL+"/v1/upload", body)
			if tt.chunked {
				req.ContentLength = -1
			}
			res, resBody := do(t, newClient(t), req)
			entry := gw.entry(t)
			if tt.wantStatus == 200 {
				if res.StatusCode != 200 {
					t.Fatalf("status: got %d; want 200 (%s)", res.StatusCode, resBody)
				}
				if got := up.last(t); len(got.Body) != tt.size {
					t.Errorf("upstream body: got %d bytes; want %d", len(got.Body), tt.size)
				}
				return
			}
			env := checkEnvelope(t, res, resBody, http.StatusRequestEntityTooLarge, apierr.TypeTooLarge)
			if !strings.Contains(env.Error.Message, "1024") {
				t.Errorf("message: got %q; want it to state the 1024-byte limit", env.Error.Message)
			}
			if entry.Error != "request body too large" {
				t.Errorf("log entry error: got %q; want request body too large", entry.Error)
			}
			if !tt.chunked {
				if n := up.hits.Load(); n != 0 {
					t.Errorf("upstream hits: got %d; want 0 (rejected before forwarding)", n)
				}
				if entry.BytesIn != 0 {
					t.Errorf("log entry BytesIn: got %d; want 0", entry.BytesIn)
				}
				return
			}
			up.mu.Lock()
			defer up.mu.Unlock()
			for _, r := range up.reqs {
				if len(r.Body) > limit {
					t.Errorf("upstream body: got %d bytes; want at most the %d-byte limit", len(r.Body), limit)
				}
			}
			if entry.BytesIn != limit {
				t.Errorf("log entry BytesIn: got %d; want %d (cut at the limit)", entry.BytesIn, limit)
			}
		})
	}
}

// TestForwardKeepsSecretsOutOfErrorsAndLogs: whatever fails, neither the
// error body nor the log holds the upstream secret, the caller's key, or
// the query string.
func TestForwardKeepsSecretsOutOfErrorsAndLogs(t *testing.T) {
	const upstreamSecret, clientKey, querySecret = "up-SECRET-123", "sk-CLIENT-456", "QUERY-789"
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		select {
		case <-r.Context().Done():
		case <-time.After(testTimeout):
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name, target, path string
		timeout            time.Duration
		body               string
		wantStatus         int
	}{
		{"unreachable", refusedURL + "/api?token=" + querySecret, "/v1/x", time.Second, "", 502},
		{"timeout", slow.URL + "/api", "/v1/x", 50 * time.Millisecond, "", 504},
		{"unsafe path", slow.URL + "/api", "/v1/%2e%2e/x", time.Second, "", 400},
		{"too large", slow.URL + "/api", "/v1/x", time.Second, strings.Repeat("x", 100), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := endpoint(t, "/v1", tt.target)
			ep.Timeout = tt.timeout
			ep.Headers.Set("Authorization", "Bearer "+upstreamSecret)
			p, logs := newProxy(t, Options{MaxRequestBodyBytes: 10})
			gw := newGateway(t, p, ep)
			req := mustRequest(t, "POST", gw.URL, strings.NewReader(tt.body))
			req.URL.Opaque = tt.path + "?api_key=" + querySecret
			req.Header.Set("Authorization", "Bearer "+clientKey)
			res, body := do(t, newClient(t), req)
			gw.entry(t)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status: got %d; want %d (%s)", res.StatusCode, tt.wantStatus, body)
			}
			logged := logs.String()
			if logged == "" {
				t.Error("log: got nothing; want one line for the failure")
			}
			for _, secret := range []string{upstreamSecret, clientKey, querySecret} {
				if strings.Contains(string(body), secret) {
					t.Errorf("error body holds %q: %s", secret, body)
				}
				if strings.Contains(logged, secret) {
					t.Errorf("log holds %q: %s", secret, logged)
				}
			}
		})
	}
}

// TestForwardFailuresKeepConnectionsHealthy repeats the failures that leave
// part of a request body unread (cut at the limit; upstream refused before
// reading it) on keep-alive connections. In full-duplex mode net/http would
// drain such a body after the handler and race the next request's read
// (golang/go#68560, a panic in the server); Forward drains it itself. The
// gateway helper fails the test if the server logs a panic.
func TestForwardFailuresKeepConnectionsHealthy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedURL := "http://" + ln.Addr().String()
	ln.Close()
	up := newUpstream(t, nil)
	p, _ := newProxy(t, Options{MaxRequestBodyBytes: 64})
	gw := newGateway(t, p, endpoint(t, "/v1/up", up.URL), endpoint(t, "/v1/refused", refusedURL))
	client := newClient(t)
	for i := range 100 {
		path, wantStatus := "/v1/up", http.StatusRequestEntityTooLarge
		if i%2 == 1 {
			path, wantStatus = "/v1/refused", http.StatusBadGateway
		}
		req := mustRequest(t, "POST", gw.URL+path, io.MultiReader(strings.NewReader(strings.Repeat("x", 65))))
		req.ContentLength = -1
		res, _ := do(t, client, req)
		gw.entry(t)
		if res.StatusCode != wantStatus {
			t.Fatalf("request %d to %s: got %d; want %d", i, path, res.StatusCode, wantStatus)
		}
	}
}
