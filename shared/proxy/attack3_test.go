package proxy

import (
	"net/http"
	"testing"
)

// TestAttackUpstreamOverridesKeywayRequestID shows that an upstream can
// replace Keyway's own request id: headerKeeper restores Keyway's preset
// headers on the final response only when the upstream did not send the
// same name, so an upstream (or anything on its path) answering with
// X-Keyway-Request-Id: forged hides the id Keyway logged for the request
// (access log, spend log) and hands the client one that matches nothing,
// or another request's (headers the gateway set on the map itself get the
// upstream's value appended beside them). Keyway's own id should win over
// the upstream's (or the upstream's copy be dropped).
func TestAttackUpstreamOverridesKeywayRequestID(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set(RequestIDHeader, "forged-by-upstream")
	})
	p, _ := newProxy(t, Options{})
	gw := idGateway(t, p, endpoint(t, "/v1", up.URL))
	res, _ := do(t, newClient(t), mustRequest(t, "GET", gw.URL+"/v1/x", nil))
	if got := res.Header.Values(RequestIDHeader); len(got) != 1 || got[0] != "kw-1" {
		t.Errorf("%s: got %q; want [kw-1] (Keyway's id for this request)", RequestIDHeader, got)
	}
}
