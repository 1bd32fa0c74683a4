package proxy

import (
	"net/http"
	"strings"
)

// RequestIDHeader is where a pass-through response carries Keyway's own
// request id. X-Request-Id belongs to the upstream when it sends one
// (OpenAI does, and its users quote it to OpenAI's support); Keyway's id
// then appears only here, never as a second X-Request-Id. When the
// upstream sends none, X-Request-Id keeps Keyway's id as well.
const RequestIDHeader = "X-Keyway-Request-Id"

// upstreamRequestIDHeader is the request id header upstreams and the
// gateway both use.
const upstreamRequestIDHeader = "X-Request-Id"

// headerKeeper is the ResponseWriter ReverseProxy writes to. It keeps the
// headers Keyway set before forwarding (the request id, the no-sniff
// Content-Type marker, whatever the gateway set) on the final response:
//
//   - ReverseProxy clears the whole header map after relaying any 1xx
//     (100 Continue, 103 Early Hints), since net/http does not do it for
//     1xx; without this the final response lost Keyway's headers.
//   - An upstream's own X-Request-Id is kept as the one X-Request-Id;
//     Keyway's id moves to RequestIDHeader (see there).
//
// It forwards Flush, full duplex and deadlines through Unwrap.
type headerKeeper struct {
	http.ResponseWriter
	preset http.Header // Keyway's headers, set back on the final response
	final  bool
}

func newHeaderKeeper(w http.ResponseWriter) *headerKeeper {
	h := w.Header()
	preset := h.Clone()
	if preset == nil {
		preset = http.Header{}
	}
	if id := h.Get(upstreamRequestIDHeader); id != "" {
		preset.Set(RequestIDHeader, id)
		// Not on the map ReverseProxy adds the upstream's headers to:
		// restored in WriteHeader only if the upstream sent none.
		delete(h, upstreamRequestIDHeader)
	}
	if _, ok := h["Content-Type"]; ok && h["Content-Type"] == nil {
		preset["Content-Type"] = nil // Clone drops nil values
	}
	return &headerKeeper{ResponseWriter: w, preset: preset}
}

func (k *headerKeeper) WriteHeader(code int) {
	if code >= 200 && !k.final {
		k.final = true
		h := k.ResponseWriter.Header()
		for name, vv := range k.preset {
			if _, ok := h[name]; !ok {
				h[name] = vv
			}
		}
	}
	k.ResponseWriter.WriteHeader(code)
}

func (k *headerKeeper) Write(p []byte) (int, error) {
	if !k.final {
		k.WriteHeader(http.StatusOK)
	}
	return k.ResponseWriter.Write(p)
}

func (k *headerKeeper) Unwrap() http.ResponseWriter { return k.ResponseWriter }

// confineResponse keeps an upstream's answer from acting as the gateway's
// own origin. Pass-through responses share an origin with the admin console
// (/ui) and the admin API, so an upstream (a public auth: false one, or one
// a caller controls) could otherwise
//   - widen a service worker's scope over the whole origin with
//     Service-Worker-Allowed, and read the console's Authorization headers;
//   - serve script-capable documents (HTML, XML, SVG) that run with the
//     origin's rights: they get a Content-Security-Policy "sandbox", which
//     gives them an opaque origin of their own;
//   - forge Keyway's own headers (its request id).
func confineResponse(h http.Header) {
	h.Del("Service-Worker-Allowed")
	h.Del(RequestIDHeader)
	ct := strings.ToLower(h.Get("Content-Type"))
	if mt, _, _ := strings.Cut(ct, ";"); scriptableType(strings.TrimSpace(mt)) {
		h.Add("Content-Security-Policy", "sandbox")
	}
}

// scriptableType reports media types a browser may run script from when it
// navigates to them.
func scriptableType(mt string) bool {
	switch mt {
	case "text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml", "text/xsl":
		return true
	}
	return false
}
