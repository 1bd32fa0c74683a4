package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// SecretResolver resolves the NAME of an `os.environ/NAME` reference. It
// returns ErrSecretNotFound when NAME is defined nowhere.
type SecretResolver interface {
	Resolve(ctx context.Context, name string) (string, error)
}

// ErrSecretNotFound is returned by a SecretResolver for an unknown name.
var ErrSecretNotFound = errors.New("secret not found")

// EnvRef is the marker of a secret reference. As in LiteLLM, the reference is
// the tail of a value: "Bearer os.environ/API_KEY".
const EnvRef = "os.environ/"

// Error is a config that failed to load: every problem found, each naming
// the item and the rule it breaks.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid config: " + e.Problems[0]
	}
	return fmt.Sprintf("invalid config: %d problems:\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// rawEndpoint mirrors LiteLLM's PassThroughGenericEndpoint as written in YAML.
// Pointers tell "unset" from the zero value so defaults apply.
type rawEndpoint struct {
	Path           string            `yaml:"path"`
	Target         string            `yaml:"target"`
	IncludeSubpath bool              `yaml:"include_subpath"`
	Auth           *bool             `yaml:"auth"`
	Methods        []string          `yaml:"methods"`
	Headers        map[string]string `yaml:"headers"`
	ForwardHeaders bool              `yaml:"forward_headers"`
	Timeout        *float64          `yaml:"timeout"`
	CostPerRequest float64           `yaml:"cost_per_request"`
}

// endpointFields are the endpoint keys Keyway understands. Any other key is
// an error, so that a typo such as include_subpaths is never silently ignored.
var endpointFields = []string{"path", "target", "include_subpath", "auth", "methods", "headers", "forward_headers", "timeout", "cost_per_request"}

// litellmEndpointFields are LiteLLM endpoint keys Keyway does not implement.
// They are errors too (silently dropping a guardrail or query default would
// change behaviour), with a message saying so.
var litellmEndpointFields = []string{"merge_query_params", "default_query_params", "guardrails", "custom_auth_parser", "id", "is_from_config"}

type rawSettings struct {
	MaxRequestBodyBytes *int64  `yaml:"max_request_body_bytes"`
	KeyCacheTTL         *string `yaml:"key_cache_ttl"`
	ShutdownTimeout     *string `yaml:"shutdown_timeout"`
}

var settingsFields = []string{"max_request_body_bytes", "key_cache_ttl", "shutdown_timeout"}

// Parse loads a YAML or JSON config (JSON is YAML), resolves secret
// references with resolve, applies defaults and validates. It returns a
// *Error listing every problem, or a usable *Config.
func Parse(ctx context.Context, data []byte, resolve SecretResolver) (*Config, error) {
	p := &parser{ctx: ctx, resolve: resolve, cfg: &Config{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Problems: []string{"not valid YAML or JSON: " + err.Error()}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == 0 || (root.Kind == yaml.ScalarNode && root.Tag == "!!null") {
		return nil, &Error{Problems: []string{"config is empty"}}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Problems: []string{fmt.Sprintf("line %d: top level must be a mapping", root.Line)}}
	}
	p.top(root)
	if len(p.problems) > 0 {
		return nil, &Error{Problems: p.problems}
	}
	return p.cfg, nil
}

type parser struct {
	ctx      context.Context
	resolve  SecretResolver
	cfg      *Config
	problems []string
}

func (p *parser) addf(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// pairs iterates a mapping node's key/value pairs.
func pairs(m *yaml.Node, fn func(key string, k, v *yaml.Node)) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		fn(m.Content[i].Value, m.Content[i], m.Content[i+1])
	}
}

func (p *parser) top(root *yaml.Node) {
	var sawGeneral, sawKeyway bool
	pairs(root, func(key string, k, v *yaml.Node) {
		switch key {
		case "general_settings":
			sawGeneral = true
			p.general(v)
		case "keyway":
			sawKeyway = true
			p.settings(v)
		default:
			p.cfg.Warnings = append(p.cfg.Warnings, fmt.Sprintf("ignoring top-level section %q: Keyway only reads general_settings and keyway", key))
		}
	})
	if !sawGeneral {
		p.addf("general_settings is missing: pass-through endpoints are read from general_settings.pass_through_endpoints")
	}
	if !sawKeyway {
		p.settings(nil)
	}
}

func (p *parser) general(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.addf("line %d: general_settings must be a mapping", n.Line)
		return
	}
	pairs(n, func(key string, k, v *yaml.Node) {
		switch key {
		case "master_key":
			var s string
			if err := v.Decode(&s); err != nil {
				p.addf("general_settings.master_key: must be a string")
				return
			}
			p.cfg.MasterKey = p.secret("general_settings.master_key", s)
		case "pass_through_endpoints":
			p.endpoints(v)
		default:
			p.cfg.Warnings = append(p.cfg.Warnings, fmt.Sprintf("ignoring general_settings.%s: not used by Keyway", key))
		}
	})
	if strings.Contains(p.cfg.MasterKey, EnvRef) {
		return // already reported
	}
	if p.cfg.MasterKey != "" && !strings.HasPrefix(p.cfg.MasterKey, "sk-") {
		p.addf("general_settings.master_key: must start with \"sk-\" (as in LiteLLM)")
	}
}

// secret resolves an os.environ/NAME reference at the tail of value. On
// failure it records a problem naming where and NAME — never a value.
func (p *parser) secret(where, value string) string {
	i := strings.Index(value, EnvRef)
	if i < 0 {
		return value
	}
	name := value[i+len(EnvRef):]
	if name == "" || strings.ContainsAny(name, " \t/") {
		p.addf("%s: %q is not a valid os.environ/NAME reference (the reference must be the tail of the value)", where, EnvRef+name)
		return value
	}
	if p.resolve == nil {
		p.addf("%s: os.environ/%s cannot be resolved: no secret resolver", where, name)
		return value
	}
	got, err := p.resolve.Resolve(p.ctx, name)
	if errors.Is(err, ErrSecretNotFound) {
		p.addf("%s: os.environ/%s is not set", where, name)
		return value
	}
	if err != nil {
		p.addf("%s: resolving os.environ/%s: %v", where, name, err)
		return value
	}
	if got == "" {
		p.addf("%s: os.environ/%s is set but empty", where, name)
		return value
	}
	return value[:i] + got
}

func (p *parser) endpoints(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.addf("line %d: general_settings.pass_through_endpoints must be a list", n.Line)
		return
	}
	seen := map[string]int{}
	for i, item := range n.Content {
		name := fmt.Sprintf("pass_through_endpoints[%d]", i)
		if item.Kind != yaml.MappingNode {
			p.addf("%s (line %d): must be a mapping with path and target", name, item.Line)
			continue
		}
		// Name the endpoint by its path as soon as we know it.
		pairs(item, func(key string, _, v *yaml.Node) {
			if key == "path" && v.Kind == yaml.ScalarNode && v.Value != "" {
				name = fmt.Sprintf("endpoint %q", v.Value)
			}
		})
		ok := true
		pairs(item, func(key string, k, _ *yaml.Node) {
			switch {
			case slices.Contains(endpointFields, key):
			case slices.Contains(litellmEndpointFields, key):
				p.addf("%s: field %q (line %d) is a LiteLLM feature Keyway does not implement; remove it", name, key, k.Line)
				ok = false
			default:
				p.addf("%s: unknown field %q (line %d)%s", name, key, k.Line, suggest(key, endpointFields))
				ok = false
			}
		})
		var raw rawEndpoint
		if err := item.Decode(&raw); err != nil {
			p.addf("%s: %s", name, typeError(err))
			continue
		}
		if !ok {
			continue
		}
		ep := p.endpoint(name, &raw)
		if ep == nil {
			continue
		}
		if prev, dup := seen[ep.Path]; dup {
			p.addf("%s: duplicate path (also pass_through_endpoints[%d])", name, prev)
			continue
		}
		seen[ep.Path] = i
		p.cfg.Endpoints = append(p.cfg.Endpoints, ep)
	}
}

func (p *parser) endpoint(name string, raw *rawEndpoint) *Endpoint {
	before := len(p.problems)
	ep := &Endpoint{
		IncludeSubpath: raw.IncludeSubpath,
		Auth:           true,
		ForwardHeaders: raw.ForwardHeaders,
		Timeout:        DefaultTimeout,
		CostPerRequest: raw.CostPerRequest,
		Headers:        http.Header{},
	}
	if raw.Auth != nil {
		ep.Auth = *raw.Auth
	}

	switch {
	case raw.Path == "":
		p.addf("%s: path is required", name)
	case !strings.HasPrefix(raw.Path, "/"):
		p.addf("%s: path must start with \"/\"", name)
	case strings.ContainsAny(raw.Path, "?#%\\") || strings.Contains(raw.Path, "//") || hasDotSegment(raw.Path):
		p.addf("%s: path must be a plain path (no query, fragment, escapes, empty or dot segments)", name)
	default:
		ep.Path = raw.Path
		if len(ep.Path) > 1 {
			ep.Path = strings.TrimSuffix(ep.Path, "/")
		}
		for _, admin := range AdminPrefixes {
			if ep.Path == "/" || underPrefix(ep.Path, admin) {
				p.addf("%s: path overlaps the admin routes (%s)", name, strings.Join(AdminPrefixes, ", "))
				break
			}
		}
	}

	switch target, err := url.Parse(raw.Target); {
	case raw.Target == "":
		p.addf("%s: target is required", name)
	case err != nil:
		p.addf("%s: target is not a URL: %v", name, err)
	case target.Scheme != "https" && target.Scheme != "http":
		p.addf("%s: target must be an absolute http:// or https:// URL, got %q", name, redactURL(target))
	case target.Host == "":
		p.addf("%s: target has no host", name)
	case target.User != nil:
		p.addf("%s: target must not carry credentials in the URL; use headers with os.environ/NAME", name)
	case target.Fragment != "":
		p.addf("%s: target must not have a fragment", name)
	default:
		ep.Target = target
	}

	if raw.Methods == nil {
		ep.Methods = slices.Clone(DefaultMethods)
	} else if len(raw.Methods) == 0 {
		p.addf("%s: methods is empty; omit it to allow all methods", name)
	}
	for _, m := range raw.Methods {
		up := strings.ToUpper(strings.TrimSpace(m))
		if !slices.Contains(DefaultMethods, up) {
			p.addf("%s: unknown method %q (allowed: %s)", name, m, strings.Join(DefaultMethods, ", "))
			continue
		}
		if !slices.Contains(ep.Methods, up) {
			ep.Methods = append(ep.Methods, up)
		}
	}

	for _, h := range slices.Sorted(maps.Keys(raw.Headers)) {
		v := raw.Headers[h]
		if h == "" || strings.ContainsAny(h, " :\r\n\t") {
			p.addf("%s: header name %q is not valid", name, h)
			continue
		}
		if isHopByHop(h) || strings.EqualFold(h, "Host") || strings.EqualFold(h, "Content-Length") {
			p.addf("%s: header %q cannot be configured (hop-by-hop or managed by the proxy)", name, h)
			continue
		}
		resolved := p.secret(fmt.Sprintf("%s: header %q", name, h), v)
		if strings.ContainsAny(resolved, "\r\n") {
			p.addf("%s: header %q has a line break in its value", name, h)
			continue
		}
		ep.Headers.Set(h, resolved)
	}

	if raw.Timeout != nil {
		switch t := *raw.Timeout; {
		case t < 0:
			p.addf("%s: timeout must not be negative, got %v", name, t)
		case t == 0:
			p.addf("%s: timeout must be more than 0 seconds; omit it for the default of %v", name, DefaultTimeout)
		default:
			ep.Timeout = time.Duration(t * float64(time.Second))
		}
	}
	if raw.CostPerRequest < 0 {
		p.addf("%s: cost_per_request must not be negative, got %v", name, raw.CostPerRequest)
	}
	if len(p.problems) > before {
		return nil
	}
	return ep
}

func (p *parser) settings(n *yaml.Node) {
	s := Settings{
		MaxRequestBodyBytes: DefaultMaxRequestBody,
		KeyCacheTTL:         DefaultKeyCacheTTL,
		ShutdownTimeout:     DefaultShutdownTimeout,
	}
	defer func() { p.cfg.Settings = s }()
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.addf("line %d: keyway must be a mapping", n.Line)
		return
	}
	pairs(n, func(key string, k, _ *yaml.Node) {
		if !slices.Contains(settingsFields, key) {
			p.addf("keyway: unknown field %q (line %d)%s", key, k.Line, suggest(key, settingsFields))
		}
	})
	var raw rawSettings
	if err := n.Decode(&raw); err != nil {
		p.addf("keyway: %s", typeError(err))
		return
	}
	if raw.MaxRequestBodyBytes != nil {
		if *raw.MaxRequestBodyBytes <= 0 {
			p.addf("keyway.max_request_body_bytes: must be more than 0, got %d", *raw.MaxRequestBodyBytes)
		} else {
			s.MaxRequestBodyBytes = *raw.MaxRequestBodyBytes
		}
	}
	dur := func(field string, v *string, dst *time.Duration, zeroOK bool) {
		if v == nil {
			return
		}
		d, err := time.ParseDuration(*v)
		switch {
		case err != nil:
			p.addf("keyway.%s: %q is not a duration like \"5s\" or \"1m\"", field, *v)
		case d < 0 || (d == 0 && !zeroOK):
			p.addf("keyway.%s: must be more than 0, got %q", field, *v)
		default:
			*dst = d
		}
	}
	dur("key_cache_ttl", raw.KeyCacheTTL, &s.KeyCacheTTL, true)
	dur("shutdown_timeout", raw.ShutdownTimeout, &s.ShutdownTimeout, false)
}

// underPrefix reports whether path is prefix or lies below it at a segment
// boundary.
func underPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
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

// redactURL prints a URL without credentials or query.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	return c.String()
}

// typeError turns a yaml.v3 decode error into a message without the
// library's prefix.
func typeError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = strings.Replace(m, "cannot unmarshal", "wrong type:", 1)
		}
		return strings.Join(msgs, "; ")
	}
	return err.Error()
}

// suggest returns ` (did you mean "x"?)` for a near-miss field name.
func suggest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(got, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return " (known fields: " + strings.Join(known, ", ") + ")"
	}
	return " (did you mean " + strconv.Quote(best) + "?)"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
