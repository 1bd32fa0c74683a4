package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestConsoleIsPublicAndItsDataIsNot: the console's files need no key (and
// a stray credential is not checked), while the admin reads it makes do.
func TestConsoleIsPublicAndItsDataIsNot(t *testing.T) {
	h := newHarness(t)
	for _, hdr := range []http.Header{nil, {"Authorization": {"Bearer sk-not-a-key"}}} {
		resp, _ := do(t, "GET", h.url+"/ui/", hdr)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET /ui/ (auth %v): got %d %s; want 200 text/html", hdr != nil, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET /ui/: CSP %q", csp)
		}
	}
	resp, _ := do(t, "GET", h.url+"/config/pass_through_endpoint", nil)
	if resp.StatusCode != 401 {
		t.Errorf("GET /config/pass_through_endpoint without a key: got %d; want 401", resp.StatusCode)
	}
	resp, body := do(t, "GET", h.url+"/config/pass_through_endpoint", http.Header{"Authorization": {"Bearer " + master}})
	eps, _ := body["endpoints"].([]any)
	if resp.StatusCode != 200 || len(eps) != 2 || body["keyway_status"] == nil {
		t.Errorf("GET /config/pass_through_endpoint as master: got %d %v; want 200 with 2 endpoints and a status", resp.StatusCode, body)
	}
	var line map[string]any
	for _, l := range h.logs.lines(t) {
		if l["path"] == "/ui/" || l["route"] == "console" {
			line = l
		}
	}
	if line == nil || line["route"] != "console" {
		t.Errorf("access log for /ui/: %v; want route console", line)
	}
}
