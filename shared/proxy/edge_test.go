package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// idGateway is a loopback gateway that, as the real one does, sets
// Keyway's X-Request-Id and another header of its own before Forward.
func idGateway(t *testing.T, p *Proxy, ep *config.Endpoint) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "kw-1")
		w.Header().Set("X-Keyway-Test", "kept")
		sw := &statusWriter{ResponseWriter: w}
		p.Forward(sw, r.WithContext(reqlog.NewContext(r.Context(), &reqlog.Entry{})), ep, strings.TrimPrefix(r.URL.Path, ep.Path))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestEarlyAnswerWithOpenUpload: an upstream that answers (401, 413, 429)
// before reading the request body, while the client's chunked upload stays
// open, must not leave the response unfinished.
//
// The client is a raw TCP connection that sends a chunked POST's headers
// and one chunk, then neither sends more nor closes (an http.Client would
// close the connection soon after reading the answer, which ends the
// upload and hides the bug). The gateway's transport is then blocked
// reading the client's body, holding net/http's body lock, when the
// upstream's answer arrives; on the old code Forward's deferred
// r.Body.Close waited on that lock, so the handler never returned: an
// answer without Content-Length never got its last chunk, and none got an
// access log entry. The client must get the upstream's whole answer (its
// end included) and the handler must finish, both promptly and while the
// upload is still open.
func TestEarlyAnswerWithOpenUpload(t *testing.T) {
	const wait = 5 * time.Second
	const answer = "refused early"
	for _, status := range []int{http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests} {
		for _, chunked := range []bool{false, true} {
			framing := "Content-Length"
			if chunked {
				framing = "chunked"
			}
			t.Run(fmt.Sprintf("%d %s", status, framing), func(t *testing.T) {
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					// Answer at once, body unread (a Go server would
					// otherwise try to drain the upload before writing
					// the status).
					http.NewResponseController(w).EnableFullDuplex()
					w.Header().Set("Content-Type", "text/plain")
					if !chunked {
						w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
					}
					w.WriteHeader(status)
					io.WriteString(w, answer)
					if chunked {
						http.NewResponseController(w).Flush()
					}
				}))
				defer up.Close()
				p, _ := newProxy(t, Options{})
				gw := newGateway(t, p, endpoint(t, "/v1", up.URL))

				conn, err := net.Dial("tcp", gw.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				// Closing the connection ends the upload: only after the
				// checks, and before the gateway's Cleanup waits for its
				// handlers.
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(wait))
				first := strings.Repeat("x", 4096)
				if _, err := fmt.Fprintf(conn, "POST /v1/upload HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(first), first); err != nil {
					t.Fatalf("sending the upload's start: %v", err)
				}
				res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "POST"})
				if err != nil {
					t.Fatalf("upstream %d before the upload ended: no response within %v: %v", status, wait, err)
				}
				body, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatalf("upstream %d (%s) before the upload ended: the response did not end within %v (got %q so far): %v", status, framing, wait, body, err)
				}
				if res.StatusCode != status || string(body) != answer {
					t.Errorf("early answer: got %d %q; want %d %q", res.StatusCode, body, status, answer)
				}
				select {
				case e := <-gw.entries:
					if e.Status != status || e.UpstreamStatus != status {
						t.Errorf("access log: status %d, upstream status %d; want %d", e.Status, e.UpstreamStatus, status)
					}
				case <-time.After(wait):
					t.Fatalf("upstream %d (%s) before the upload ended: the gateway handler did not return within %v while the upload was open", status, framing, wait)
				}
			})
		}
	}
}

// TestRequestIDs: an upstream's X-Request-Id reaches the client intact and
// alone; Keyway's id is in X-Keyway-Request-Id. Without an upstream id,
// X-Request-Id is Keyway's.
func TestRequestIDs(t *testing.T) {
	for _, tt := range []struct {
		name, upstreamID string
		wantRequestID    []string
	}{
		{"upstream sends one", "req_upstream_123", []string{"req_upstream_123"}},
		{"upstream sends none", "", []string{"kw-1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				if tt.upstreamID != "" {
					w.Header().Set("X-Request-Id", tt.upstreamID)
				}
			})
			p, _ := newProxy(t, Options{})
			gw := idGateway(t, p, endpoint(t, "/v1", up.URL))
			res, _ := do(t, newClient(t), mustRequest(t, "GET", gw.URL+"/v1/x", nil))
			if got := res.Header.Values("X-Request-Id"); strings.Join(got, ",") != strings.Join(tt.wantRequestID, ",") {
				t.Errorf("X-Request-Id: got %q; want %q", got, tt.wantRequestID)
			}
			if got := res.Header.Values(RequestIDHeader); len(got) != 1 || got[0] != "kw-1" {
				t.Errorf("%s: got %q; want [kw-1]", RequestIDHeader, got)
			}
		})
	}
}

// TestInformationalResponsesKeepHeaders: an upstream 1xx (103 Early Hints,
// 100 Continue) must not clear the headers Keyway set on the final
// response (httputil.ReverseProxy clears the header map after a 1xx).
func TestInformationalResponsesKeepHeaders(t *testing.T) {
	for _, tt := range []struct {
		name   string
		expect bool
	}{{"103 Early Hints", false}, {"100 Continue", true}} {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				if !tt.expect {
					w.Header().Set("Link", "</style.css>; rel=preload")
					w.WriteHeader(http.StatusEarlyHints)
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"ok":true}`)
			})
			p, _ := newProxy(t, Options{})
			gw := idGateway(t, p, endpoint(t, "/v1", up.URL))
			req := mustRequest(t, "POST", gw.URL+"/v1/x", strings.NewReader(`{"a":1}`))
			if tt.expect {
				req.Header.Set("Expect", "100-continue")
			}
			res, body := do(t, newClient(t), req)
			if res.StatusCode != http.StatusOK || string(body) != `{"ok":true}` {
				t.Fatalf("final response: got %d %q; want 200 {\"ok\":true}", res.StatusCode, body)
			}
			for name, want := range map[string]string{"X-Keyway-Test": "kept", RequestIDHeader: "kw-1", "X-Request-Id": "kw-1", "Content-Type": "application/json"} {
				if got := res.Header.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("%s after a 1xx: got %q; want [%s]", name, got, want)
				}
			}
		})
	}
}

// TestUpstreamTTFBCountsFromArrival: UpstreamTTFB is measured from the
// request's arrival (entry.Start, set by the gateway), so Keyway's own work
// before forwarding counts; without a Start it counts from Forward.
func TestUpstreamTTFBCountsFromArrival(t *testing.T) {
	up := newUpstream(t, nil)
	p, _ := newProxy(t, Options{})
	ep := endpoint(t, "/v1/x", up.URL)
	forward := func(e *reqlog.Entry) {
		r := httptest.NewRequest("GET", "/v1/x", nil)
		w := httptest.NewRecorder()
		p.Forward(w, r.WithContext(reqlog.NewContext(r.Context(), e)), ep, "")
		if w.Code != http.StatusOK {
			t.Fatalf("status %d; want 200", w.Code)
		}
	}
	arrived := &reqlog.Entry{Start: time.Now().Add(-time.Hour)}
	forward(arrived)
	if arrived.UpstreamTTFB < time.Hour {
		t.Errorf("UpstreamTTFB %v; want at least the hour since Start", arrived.UpstreamTTFB)
	}
	bare := &reqlog.Entry{}
	forward(bare)
	if bare.UpstreamTTFB <= 0 || bare.UpstreamTTFB > testTimeout {
		t.Errorf("UpstreamTTFB without Start %v; want the time since Forward", bare.UpstreamTTFB)
	}
}
