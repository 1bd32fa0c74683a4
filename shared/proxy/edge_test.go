package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
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

// TestEarlyAnswerWithOpenUpload: an upstream that answers (401) before
// reading the request body, while the client's chunked upload stays open:
// the client gets the whole response at once, not a response that never
// ends.
func TestEarlyAnswerWithOpenUpload(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests} {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Answer at once, body unread (a Go server would otherwise
			// try to drain the upload before writing the status).
			http.NewResponseController(w).EnableFullDuplex()
			w.WriteHeader(status)
			io.WriteString(w, "refused early")
		}))
		defer up.Close()
		p, _ := newProxy(t, Options{})
		gw := newGateway(t, p, endpoint(t, "/v1", up.URL))
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte("first chunk of an upload that never ends"))
		req := mustRequest(t, "POST", gw.URL+"/v1/upload", pr)
		req.ContentLength = -1
		done := make(chan struct{})
		var got int
		var body []byte
		go func() {
			defer close(done)
			res, err := newClient(t).Do(req)
			if err != nil {
				t.Errorf("POST: %v", err)
				return
			}
			defer res.Body.Close()
			got = res.StatusCode
			body, err = io.ReadAll(res.Body)
			if err != nil {
				t.Errorf("reading the early answer: %v", err)
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("upstream %d before the upload ended: the response did not end", status)
		}
		if got != status || string(body) != "refused early" {
			t.Errorf("early answer: got %d %q; want %d %q", got, body, status, "refused early")
		}
		gw.entry(t)
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
