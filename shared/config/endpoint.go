package config

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keywaygw/keyway/shared/usage"
)

// endpointFields are the endpoint keys Keyway implements. Any other key is
// an error, so that a typo such as include_subpaths is never silently
// ignored.
var endpointFields = []string{"path", "target", "include_subpath", "auth", "methods", "headers", "forward_headers", "timeout", "cost_per_request", "keyway"}

// refusedEndpointFields are LiteLLM endpoint keys Keyway does not implement
// and that change what a request does; dropping them silently would change
// the config's meaning, so they are errors.
var refusedEndpointFields = map[string]string{
	"merge_query_params":   "query merging",
	"default_query_params": "default query parameters",
	"guardrails":           "guardrails",
	"custom_auth_parser":   "custom auth parsers",
}

// ignoredEndpointFields are LiteLLM endpoint keys that describe an endpoint
// without changing what it does (database id, provenance); they are ignored
// with a warning.
var ignoredEndpointFields = []string{"id", "is_from_config"}

// endpoints reads general_settings.pass_through_endpoints. Endpoints stay
// in config order; the route table sorts them for matching.
func (p *parser) endpoints(n *yaml.Node, defaultTimeout time.Duration) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.addf("general_settings.pass_through_endpoints must be a list, got %s (line %d)", describe(n), n.Line)
		return
	}
	type where struct {
		index, line int
	}
	seen := map[string]where{}
	for i, item := range n.Content {
		item = deref(item)
		ep, path := p.endpoint(i, item, defaultTimeout)
		if path != "" {
			if prev, dup := seen[path]; dup {
				p.addf("endpoint %q (pass_through_endpoints[%d], line %d): duplicate path: pass_through_endpoints[%d] (line %d) already uses it", path, i, item.Line, prev.index, prev.line)
				continue
			}
			seen[path] = where{i, item.Line}
		}
		if ep != nil {
			p.cfg.Endpoints = append(p.cfg.Endpoints, ep)
		}
	}
}

// endpoint reads one pass-through endpoint. It returns the endpoint when it
// is valid, and its normalised path whenever the path itself is valid (for
// the duplicate check).
func (p *parser) endpoint(i int, item *yaml.Node, defaultTimeout time.Duration) (*Endpoint, string) {
	name := fmt.Sprintf("pass_through_endpoints[%d] (line %d)", i, item.Line)
	if item.Kind != yaml.MappingNode {
		p.addf("%s must be a mapping with path and target, got %s", name, describe(item))
		return nil, ""
	}
	// Name the endpoint by its (first) path, so that every message about it,
	// even one about its keys, says which endpoint it is.
	for _, f := range (&parser{}).fields(name, item) {
		if v := deref(f.v); f.key == "path" && v.Kind == yaml.ScalarNode && v.Tag == "!!str" && v.Value != "" {
			name = fmt.Sprintf("endpoint %q", truncate(v.Value))
		}
	}
	fields := p.fields(name, item)

	before := len(p.problems)
	ep := &Endpoint{
		Auth:     true,
		Methods:  slices.Clone(DefaultMethods),
		Headers:  http.Header{},
		Timeout:  defaultTimeout,
		Metering: Metering{Usage: usage.FormatAuto},
	}
	var havePath, haveTarget bool
	for _, f := range fields {
		if isNull(f.v) {
			continue // null is unset, as in LiteLLM's model: the default applies
		}
		field := name + ": " + f.key
		switch f.key {
		case "path":
			havePath = true
			if s, ok := p.str(field, f.v); ok {
				ep.Path = p.path(name, s)
			}
		case "target":
			haveTarget = true
			if s, ok := p.str(field, f.v); ok {
				ep.Target = p.target(name, s)
			}
		case "include_subpath":
			ep.IncludeSubpath, _ = p.boolean(field, f.v)
		case "auth":
			if b, ok := p.boolean(field, f.v); ok {
				ep.Auth = b
			}
		case "forward_headers":
			ep.ForwardHeaders, _ = p.boolean(field, f.v)
		case "methods":
			if m := p.methods(name, f.v); m != nil {
				ep.Methods = m
			}
		case "headers":
			p.headers(name, f.v, ep.Headers)
		case "timeout":
			if d, ok := p.timeout(field, f.v); ok {
				ep.Timeout = d
			}
		case "cost_per_request":
			if c, ok := p.number(field, f.v); ok {
				if c < 0 || c > MaxCostPerRequest {
					p.addf("%s must be a number of dollars from 0 to %g, got %v", field, MaxCostPerRequest, c)
				}
				ep.CostPerRequest = c
			}
		case "keyway":
			p.metering(name, f.v, &ep.Metering)
		default:
			switch {
			case refusedEndpointFields[f.key] != "":
				p.addf("%s: field %q (line %d) is LiteLLM's %s, which Keyway does not implement; remove it", name, f.key, f.k.Line, refusedEndpointFields[f.key])
			case slices.Contains(ignoredEndpointFields, f.key):
				p.warnf("%s: ignoring field %q: not used by Keyway", name, f.key)
			default:
				p.addf("%s: unknown field %q (line %d)%s", name, f.key, f.k.Line, suggest(f.key, endpointFields))
			}
		}
	}
	if !havePath {
		p.addf("%s: path is required", name)
	}
	if !haveTarget {
		p.addf("%s: target is required", name)
	}
	if len(p.problems) > before || ep.Path == "" || ep.Target == nil {
		return nil, ep.Path
	}
	return ep, ep.Path
}

// path validates an endpoint path and returns it normalised (no trailing
// slash), or "" after reporting a problem. A path is matched against the
// request's escaped path at segment boundaries, so it must be written the way
// it arrives: plain segments of RFC 3986 path characters, no escapes.
func (p *parser) path(name, s string) string {
	switch {
	case s == "":
		p.addf("%s: path is required", name)
	case !strings.HasPrefix(s, "/"):
		p.addf("%s: path must start with \"/\"", name)
	case strings.Contains(s, "//") || hasDotSegment(s):
		p.addf("%s: path must not contain empty (//), \".\" or \"..\" segments", name)
	case strings.ContainsFunc(s, func(r rune) bool { return !isPathChar(r) }):
		p.addf("%s: path may only contain letters, digits, '/' and - . _ ~ ! $ & ' ( ) * + , ; = : @ (no spaces, query, fragment or %%-escapes)", name)
	default:
		path := s
		if len(path) > 1 {
			path = strings.TrimSuffix(path, "/")
		}
		if path == "/" {
			p.addf("%s: path \"/\" would cover the admin routes (%s); use a prefix such as /v1", name, strings.Join(AdminPrefixes, ", "))
			return ""
		}
		for _, admin := range AdminPrefixes {
			if underPrefix(path, admin) {
				p.addf("%s: path overlaps the admin route %s (reserved: %s)", name, admin, strings.Join(AdminPrefixes, ", "))
				return ""
			}
		}
		return path
	}
	return ""
}

// isPathChar reports RFC 3986 pchar (unreserved, sub-delims, ':' and '@')
// plus '/'. '%' is left out: escapes would never match the escaped path.
func isPathChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("/-._~!$&'()*+,;=:@", r)
}

// target validates an upstream URL: absolute https:// (http:// only for
// loopback hosts, as for local upstreams and tests), a host, no credentials
// and no fragment. Messages show the URL without credentials or query.
func (p *parser) target(name, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error repeats the whole URL, which may hold credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		p.addf("%s: target is not a valid URL: %v", name, err)
		return nil
	}
	shown := redactURL(u)
	switch {
	case s == "":
		p.addf("%s: target is required", name)
	case u.Scheme != "https" && u.Scheme != "http":
		p.addf("%s: target %q must be an absolute https:// URL", name, shown)
	case u.Host == "" || u.Hostname() == "":
		p.addf("%s: target %q has no host", name, shown)
	case u.User != nil:
		p.addf("%s: target must not carry credentials in the URL; set them in headers with os.environ/NAME", name)
	case u.Fragment != "" || strings.HasSuffix(s, "#"):
		p.addf("%s: target %q must not have a #fragment", name, shown)
	case hasDotSegment(u.EscapedPath()):
		p.addf("%s: target %q must not contain \".\" or \"..\" path segments", name, shown)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		p.addf("%s: target %q must use https://; http:// is only allowed for loopback hosts (localhost, 127.0.0.1, ::1)", name, shown)
	default:
		return u
	}
	return nil
}

// isLoopback reports whether host is localhost or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// methods reads and normalises `methods`: upper-cased, de-duplicated, in
// DefaultMethods order. It returns nil after a problem.
func (p *parser) methods(name string, n *yaml.Node) []string {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		p.addf("%s: methods must be a list such as [GET, POST], got %s", name, describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.addf("%s: methods is empty; omit it to allow every method", name)
		return nil
	}
	want := map[string]bool{}
	ok := true
	for _, m := range n.Content {
		s, isStr := p.str(name+": methods entry", m)
		if !isStr {
			ok = false
			continue
		}
		up := strings.ToUpper(strings.TrimSpace(s))
		if !slices.Contains(DefaultMethods, up) {
			p.addf("%s: unknown method %q (allowed: %s)", name, truncate(s), strings.Join(DefaultMethods, ", "))
			ok = false
			continue
		}
		want[up] = true
	}
	if !ok {
		return nil
	}
	var out []string
	for _, m := range DefaultMethods {
		if want[m] {
			out = append(out, m)
		}
	}
	return out
}

// headers reads `headers` into h, resolving os.environ/ references. Values
// never appear in messages.
func (p *parser) headers(name string, n *yaml.Node, h http.Header) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.addf("%s: headers must be a mapping of header name to value, got %s", name, describe(n))
		return
	}
	seen := map[string]string{}
	for _, f := range p.fields(name+": headers", n) {
		hname := f.key
		where := fmt.Sprintf("%s: header %q", name, truncate(hname))
		canon := http.CanonicalHeaderKey(hname)
		switch {
		case !isToken(hname):
			p.addf("%s: not a valid header name", where)
			continue
		case strings.EqualFold(hname, "litellm_user_api_key"):
			p.addf("%s: LiteLLM's custom key header is not implemented by Keyway; callers send their key in Authorization, x-api-key or x-litellm-api-key", where)
			continue
		case isHopByHop(hname) || canon == "Host" || canon == "Content-Length":
			p.addf("%s cannot be configured: it is hop-by-hop or set by the proxy", where)
			continue
		case seen[canon] != "":
			p.addf("%s: set twice (also as %q; header names are case-insensitive)", where, seen[canon])
			continue
		}
		seen[canon] = hname
		v := deref(f.v)
		if v.Kind != yaml.ScalarNode || isNull(v) {
			p.addf("%s must be a string value, got %s", where, describe(v))
			continue
		}
		value, ok := p.secret(where, v.Value)
		if !ok {
			continue
		}
		if strings.ContainsFunc(value, func(r rune) bool { return r == '\r' || r == '\n' || r == 0 }) {
			p.addf("%s: the value has a line break or NUL character", where)
			continue
		}
		h.Set(canon, value)
	}
}

// timeout reads a number of seconds that must be more than zero.
func (p *parser) timeout(field string, n *yaml.Node) (time.Duration, bool) {
	t, ok := p.number(field, n)
	if !ok {
		return 0, false
	}
	if t <= 0 {
		p.addf("%s must be more than 0 seconds, got %v; omit it for the default of %v", field, t, DefaultTimeout.Seconds())
		return 0, false
	}
	d, ok := seconds(t)
	if !ok || d <= 0 {
		p.addf("%s is too large, got %v seconds", field, t)
		return 0, false
	}
	return d, true
}

// underPrefix reports whether path is prefix or lies below it at a segment
// boundary.
func underPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." || strings.EqualFold(seg, "%2e") || strings.EqualFold(seg, "%2e%2e") ||
			strings.EqualFold(seg, ".%2e") || strings.EqualFold(seg, "%2e.") {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 9110 §5.6.2 token (a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// isHopByHop reports RFC 9110 §7.6.1 connection-specific header names.
func isHopByHop(h string) bool {
	switch http.CanonicalHeaderKey(h) {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// redactURL prints a URL without credentials or query (either may hold a
// secret).
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment, c.RawFragment = "", ""
	return truncate(c.String())
}
