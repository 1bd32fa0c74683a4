package lambdaio

import (
	"context"
	"encoding/base64"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/keywaygw/keyway/shared/apierr"
)

// serverContext is what the request context carries under
// http.ServerContextKey. Only its presence matters: httputil.ReverseProxy
// panics with http.ErrAbortHandler on a mid-body copy error when it is set,
// and returns silently otherwise (see shouldPanicOnCopyError in
// net/http/httputil). The value is a zero Server; nothing here serves on it.
var serverContext = &http.Server{}

// requestV1 converts a REST API (payload format 1.0) event into the request
// the handler sees. It returns a gateway error, never a Lambda error, for an
// event it cannot convert.
//
// The conversion itself is core.RequestAccessor.EventToRequestWithContext
// (what httpadapter.HandlerAdapter.ProxyWithContext uses), which does the
// headers, the body and the request context right, given an event whose path
// and query it cannot get wrong: lambdaio puts its own escaped path and query
// into Path and empties the query maps. Afterwards the request is finished
// by finishRequest.
func requestV1(ctx context.Context, e *events.APIGatewayProxyRequest) (*http.Request, *apierr.Error) {
	if !validMethod(e.HTTPMethod) {
		return nil, apierr.BadRequest("httpMethod", "the event has no valid HTTP method")
	}
	body, aerr := decodeBody(e.Body, e.IsBase64Encoded)
	if aerr != nil {
		return nil, aerr
	}
	host := requestHost(headerV1(e, "Host"), e.RequestContext.DomainName)

	s := *e // shallow copy; maps are replaced, never written
	s.Path = rawPathV1(e)
	if q := queryV1(e); q != "" {
		s.Path += "?" + q
	}
	s.QueryStringParameters = nil
	s.MultiValueQueryStringParameters = nil
	s.Body = body
	s.IsBase64Encoded = false
	s.RequestContext.DomainName = host
	if len(s.MultiValueHeaders) == 0 {
		// The library ignores Headers whenever MultiValueHeaders is non-nil,
		// even when it is empty (hand-written and some test events).
		s.MultiValueHeaders = nil
	}

	var acc core.RequestAccessor
	r, err := acc.EventToRequestWithContext(withServer(ctx), s)
	if err != nil {
		return nil, apierr.BadRequest("path", "the request could not be converted: "+err.Error())
	}
	finishRequest(r, host, e.RequestContext.Identity.SourceIP)
	return r, nil
}

// requestV2 converts an HTTP API (payload format 2.0) event into the request
// the handler sees, with core.RequestAccessorV2 (what httpadapter.NewV2 uses)
// for the parts it does right: rawQueryString verbatim, the body, the request
// context. Its header handling is replaced: the library splits every header
// not on its short "singleton" list at commas, so `Accept: a, b` would become
// two values and a quoted comma inside a value would be cut. HTTP API already
// joined repeated headers with commas; each header is passed on as the one
// value it sent.
func requestV2(ctx context.Context, e *events.APIGatewayV2HTTPRequest) (*http.Request, *apierr.Error) {
	if !validMethod(e.RequestContext.HTTP.Method) {
		return nil, apierr.BadRequest("requestContext.http.method", "the event has no valid HTTP method")
	}
	body, aerr := decodeBody(e.Body, e.IsBase64Encoded)
	if aerr != nil {
		return nil, aerr
	}
	var hostHeader string
	for k, v := range e.Headers {
		if strings.EqualFold(k, "Host") {
			hostHeader = v
		}
	}
	host := requestHost(hostHeader, e.RequestContext.DomainName)

	s := *e
	s.RawPath = rawPathV2(e)
	s.RawQueryString = escapeQuery(e.RawQueryString)
	if s.RawQueryString == "" && len(e.QueryStringParameters) > 0 {
		s.RawQueryString = encodeQuery(singleValues(e.QueryStringParameters))
	}
	s.QueryStringParameters = nil
	s.Headers = nil
	s.Cookies = nil
	s.Body = body
	s.IsBase64Encoded = false
	s.RequestContext.DomainName = host

	var acc core.RequestAccessorV2
	r, err := acc.EventToRequestWithContext(withServer(ctx), s)
	if err != nil {
		return nil, apierr.BadRequest("rawPath", "the request could not be converted: "+err.Error())
	}
	r.Header = make(http.Header, len(e.Headers)+1)
	for k, v := range e.Headers {
		r.Header.Add(k, v)
	}
	if len(e.Cookies) > 0 {
		// HTTP API moves the Cookie header into the cookies array, one entry
		// per cookie pair. A user agent sends them as one header (RFC 6265
		// §5.4); the library would send one Cookie header per pair.
		r.Header.Set("Cookie", strings.Join(e.Cookies, "; "))
	}
	finishRequest(r, host, e.RequestContext.HTTP.SourceIP)
	return r, nil
}

// finishRequest makes a converted request look like one net/http's server
// would hand the handler, and removes what the library could have injected.
func finishRequest(r *http.Request, host, sourceIP string) {
	for k := range r.Header {
		// X-GoLambdaProxy-ApiGw-Context and -StageVars are what the library's
		// Proxy (without context) adds; a client may send them too. They mean
		// nothing to the gateway and must not reach an upstream.
		if len(k) >= len(libraryHeaderPrefix) && strings.EqualFold(k[:len(libraryHeaderPrefix)], libraryHeaderPrefix) {
			delete(r.Header, k)
		}
	}
	// net/http moves Host out of the header map into Request.Host.
	r.Header.Del("Host")
	r.Host = host
	r.URL.Host = host
	// net/http's RemoteAddr is host:port, and code such as ReverseProxy's
	// SetXForwarded parses it with net.SplitHostPort. API Gateway gives no
	// client port.
	r.RemoteAddr = ""
	if ip := net.ParseIP(sourceIP); ip != nil {
		r.RemoteAddr = net.JoinHostPort(ip.String(), "0")
	}
	r.RequestURI = r.URL.RequestURI()
}

const libraryHeaderPrefix = "X-Golambdaproxy-"

func withServer(ctx context.Context) context.Context {
	if ctx.Value(http.ServerContextKey) != nil {
		return ctx
	}
	return context.WithValue(ctx, http.ServerContextKey, serverContext)
}

// decodeBody returns the request body as bytes in a string. A body flagged
// isBase64Encoded that is not base64 is the caller's error (400), where the
// library would have answered 504 with a Lambda error.
func decodeBody(body string, isBase64 bool) (string, *apierr.Error) {
	if !isBase64 {
		return body, nil
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		return "", apierr.BadRequest("body", "the request body is flagged base64 but is not valid base64")
	}
	return string(b), nil
}

// rawPathV1 returns the escaped request path of a REST API event.
//
// REST API events have no rawPath. API Gateway delivers `path` as the client
// sent it, still percent-encoded (third-party captures of live events agree:
// localstack/localstack#7728, middleapi/standard-server#93 citing
// hotsock/voker#8), but `sam local start-api` fills it from Flask's decoded
// request.path, and other emulators do the same. requestContext.path holds the
// same path behind the stage or base-path prefix (/prod/v1/x). So: when
// requestContext.path has a suffix that equals `path` or decodes to it, that
// suffix is the raw form and is used; otherwise `path` is used as it came.
// Either way escapePath makes it a valid escaped path: an encoded path passes
// unchanged (a `%2F` stays `%2F`, a `%25` stays `%25`), a decoded one is
// re-escaped where it must be (a bare `%` becomes `%25`, `?` and `#` are
// escaped) and never fails to parse. What decoding already merged (a `%2F`
// that sam local turned into `/`) cannot be told apart again.
//
// pathParameters.proxy is not used: it lacks the resource's own prefix for
// nested proxy resources (floydspace/effect-aws#220) and is the same string
// as the tail of `path`.
func rawPathV1(e *events.APIGatewayProxyRequest) string {
	p := e.Path
	if rc := e.RequestContext.Path; rc != "" && rc != p && strings.Contains(rc, "%") {
		for i := 0; i < len(rc); i++ {
			if rc[i] != '/' {
				continue
			}
			s := rc[i:]
			if s == p {
				break
			}
			if u, err := url.PathUnescape(s); err == nil && u == p {
				p = s
				break
			}
		}
	}
	return escapePath(p)
}

// rawPathV2 returns the escaped request path of an HTTP API event: rawPath
// (or requestContext.http.path when it is empty) made valid by escapePath.
// HTTP API decodes rawPath before invoking (honojs/hono#2156,
// Worklytics/psoxy#827), so what it merged cannot be split again; a bare %
// or a decoded ? no longer breaks the request. On the default execute-api
// endpoint a named stage is the first path segment and is removed, as REST
// API's path already omits it; custom domains carry no stage.
func rawPathV2(e *events.APIGatewayV2HTTPRequest) string {
	p := e.RawPath
	if p == "" {
		p = e.RequestContext.HTTP.Path
	}
	if st := e.RequestContext.Stage; st != "" && st != "$default" && strings.Contains(e.RequestContext.DomainName, ".execute-api.") {
		if rest, ok := strings.CutPrefix(p, "/"+st); ok && (rest == "" || rest[0] == '/') {
			p = rest
		}
	}
	return escapePath(p)
}

// escapePath returns p as a valid escaped URL path: valid %XX triplets and
// characters allowed in a path are kept byte for byte; everything else (a
// bare %, ?, #, space, control and non-ASCII bytes) is percent-encoded. The
// result always starts with "/" and always parses, with url.URL.EscapedPath
// returning it unchanged.
func escapePath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return escapeInvalid(p, isPathByte)
}

// escapeQuery returns a raw query string with the bytes that cannot appear in
// a request line (space, #, control and non-ASCII bytes) percent-encoded and
// everything else, including its order and existing escapes, kept byte for
// byte.
func escapeQuery(q string) string {
	return escapeInvalid(q, isQueryByte)
}

func escapeInvalid(s string, keep func(byte) bool) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '%' && validTriplet(s, i) {
			i += 3
			continue
		}
		if c != '%' && keep(c) {
			i++
			continue
		}
		break
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && validTriplet(s, i):
			b.WriteString(s[i : i+3])
			i += 2
		case c != '%' && keep(c):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(upperhex[c>>4])
			b.WriteByte(upperhex[c&15])
		}
	}
	return b.String()
}

const upperhex = "0123456789ABCDEF"

func validTriplet(s string, i int) bool {
	return i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2])
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// isPathByte reports whether c may appear literally in an escaped path: RFC
// 3986 pchar (unreserved, sub-delims, ":" and "@") and "/", plus "[" and "]",
// which net/url also leaves alone.
func isPathByte(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/[]", c) >= 0
}

// isQueryByte reports whether c may appear literally in a raw query: any
// visible ASCII byte but "#". Queries in the wild carry characters RFC 3986
// would escape ("|", "{", "\""); they are forwarded as they came.
func isQueryByte(c byte) bool {
	return c > 0x20 && c < 0x7f && c != '#'
}

// queryV1 rebuilds the query string of a REST API event. API Gateway passes
// the parameters decoded and grouped by name, and does not keep their order
// (AWS, "Lambda proxy integrations in API Gateway": "except that the order
// of the request parameters isn't retained"), so the original bytes cannot be
// recovered. The query is rebuilt deterministically: names sorted, each
// name's values in the order API Gateway lists them, all escaped with
// url.QueryEscape. The library does the same in Go map order, which differs
// from call to call.
func queryV1(e *events.APIGatewayProxyRequest) string {
	if len(e.MultiValueQueryStringParameters) > 0 {
		return encodeQuery(e.MultiValueQueryStringParameters)
	}
	return encodeQuery(singleValues(e.QueryStringParameters))
}

func singleValues(m map[string]string) map[string][]string {
	mv := make(map[string][]string, len(m))
	for k, v := range m {
		mv[k] = []string{v}
	}
	return mv
}

// encodeQuery encodes m with names sorted and each name's values in order.
func encodeQuery(m map[string][]string) string {
	keys := slices.Sorted(maps.Keys(m))
	var b strings.Builder
	for _, k := range keys {
		for _, v := range m[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(url.QueryEscape(k))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}

// headerV1 returns the first value of header name in a REST API event.
func headerV1(e *events.APIGatewayProxyRequest, name string) string {
	for k, v := range e.MultiValueHeaders {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// requestHost picks the request's host: the Host header when it is a valid
// host[:port], else the event's domain name, else "localhost". sam local
// start-api fills domainName from the client's Host header, so neither is
// trusted to be well formed: an invalid host would make the URL unparseable.
func requestHost(hostHeader, domainName string) string {
	for _, h := range []string{hostHeader, domainName} {
		if validHost(h) {
			return h
		}
	}
	return "localhost"
}

func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-.:[]_", c) >= 0) {
			return false
		}
	}
	u, err := url.Parse("http://" + h + "/")
	return err == nil && u.Host == h
}

// validMethod reports whether m is an HTTP method token (RFC 9110 §9.1).
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
