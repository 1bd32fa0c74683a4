package proxy

import (
	"net/http"
	"strings"

	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/config"
)

// entityHeaders are the client headers an upstream needs to read the body
// as sent, forwarded even without forward_headers. The length itself travels
// in Request.ContentLength (Content-Length, or chunked Transfer-Encoding when
// unknown), which the transport writes; Content-Length is kept in the map
// only for symmetry.
var entityHeaders = []string{"Content-Type", "Content-Encoding", "Content-Length"}

// clientAddressHeaders carry the caller's address or the gateway's front
// end. They are never forwarded, so a caller's IP does not reach third-party
// vendors. ReverseProxy (in Rewrite mode) already drops Forwarded and
// X-Forwarded-For/-Host/-Proto; API Gateway adds more X-Forwarded-* names.
var clientAddressHeaders = []string{
	"Forwarded", "X-Real-Ip", "True-Client-Ip", "Cf-Connecting-Ip",
	"X-Client-Ip", "X-Cluster-Client-Ip",
}

// upgradeHeaders are removed even with forward_headers: ReverseProxy puts
// "Connection: Upgrade" and "Upgrade" back on the outgoing request after
// its hop-by-hop removal, and an upstream that switched protocols would give
// the caller a raw tunnel past every check (see errUpgradeRefused).
var upgradeHeaders = []string{"Connection", "Upgrade"}

// droppedPrefixes are header name prefixes never forwarded: X-Forwarded-*
// (see clientAddressHeaders) and X-Golambdaproxy-*, which
// aws-lambda-go-api-proxy injects into requests it builds from Lambda
// events and which must not reach an upstream (design: Lambda).
var droppedPrefixes = []string{"X-Forwarded-", "X-Golambdaproxy-"}

// outboundHeader returns the upstream request's header, built from in (the
// outgoing copy of the client's header, from which ReverseProxy has already
// removed the hop-by-hop headers of RFC 9110 §7.6.1, including every name
// listed in Connection) and the endpoint's configuration. in may be reused.
//
// Without forward_headers the upstream gets only the configured headers and
// entityHeaders. In particular no User-Agent: ReverseProxy then sends an
// empty one, so Go's default is not added either; an endpoint that needs a
// User-Agent configures it. Cookies and Accept* negotiation headers are
// dropped too.
//
// With forward_headers the client's end-to-end headers pass, including
// Cookie and User-Agent, except clientAddressHeaders and droppedPrefixes.
//
// In both modes every auth.CredentialHeaders name is removed, whichever one
// carried the caller's key, so a virtual key never reaches an upstream
// (LiteLLM issue #32202). Configured headers are applied last and win over
// anything forwarded, so a configured "Authorization: Bearer <upstream
// secret>" is what the upstream sees.
func outboundHeader(in http.Header, ep *config.Endpoint) http.Header {
	var out http.Header
	if ep.ForwardHeaders {
		out = in
		for name := range out {
			if neverForwarded(name) {
				delete(out, name)
				continue
			}
			// A non-canonical duplicate of a configured name would reach
			// the wire beside the configured value.
			if _, ok := ep.Headers[http.CanonicalHeaderKey(name)]; ok {
				delete(out, name)
			}
		}
	} else {
		out = make(http.Header, len(ep.Headers)+len(entityHeaders))
		for _, name := range entityHeaders {
			if v, ok := in[name]; ok {
				out[name] = v
			}
		}
	}
	for name, values := range ep.Headers {
		// ep.Headers is shared by concurrent requests: a full slice
		// expression makes any later append copy instead of writing into
		// the shared array.
		out[name] = values[:len(values):len(values)]
	}
	return out
}

// neverForwarded reports whether a client header must not reach the
// upstream even with forward_headers. Names are compared case-insensitively
// because a front end (a Lambda bridge) may have put non-canonical keys into
// the map.
func neverForwarded(name string) bool {
	for _, n := range auth.CredentialHeaders {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	for _, n := range clientAddressHeaders {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	for _, n := range upgradeHeaders {
		if strings.EqualFold(name, n) {
			return true
		}
	}
	for _, prefix := range droppedPrefixes {
		if len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}
