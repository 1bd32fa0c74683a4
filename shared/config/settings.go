package config

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// LambdaTimeout is the default endpoint timeout (seconds until the upstream
// sends response headers) under Lambda, in place of DefaultTimeout's 600s.
// Behind a REGIONAL API Gateway REST API, a streamed response that carries
// no bytes for 300 seconds is cut by API Gateway (its idle timeout); while
// Keyway waits for upstream headers the caller receives nothing, so a longer
// wait could only bill Lambda time for an answer nobody can receive. 270s
// leaves 30s for authentication and admission before the wait starts.
// An explicit timeout or general_settings.pass_through_request_timeout still
// wins.
const LambdaTimeout = 270 * time.Second

type defaultsKey struct{}

// WithLambdaDefaults returns a ctx under which Parse (and Load, and a
// Watcher's reloads) apply the Lambda defaults: LambdaTimeout for endpoints
// without a timeout.
func WithLambdaDefaults(ctx context.Context) context.Context {
	return context.WithValue(ctx, defaultsKey{}, LambdaTimeout)
}

// defaultEndpointTimeout is the endpoint timeout that applies under ctx when
// the config sets none.
func defaultEndpointTimeout(ctx context.Context) time.Duration {
	if ctx != nil {
		if d, ok := ctx.Value(defaultsKey{}).(time.Duration); ok {
			return d
		}
	}
	return DefaultTimeout
}

// settingsFields are the keys of the keyway: section.
var settingsFields = []string{"max_request_body_bytes", "key_cache_ttl", "shutdown_timeout", "spend_logs_retention", "max_keys_per_user"}

// settings reads the keyway: section (n may be nil when it is absent) and
// applies defaults.
func (p *parser) settings(n *yaml.Node) {
	s := Settings{
		MaxRequestBodyBytes: DefaultMaxRequestBody,
		KeyCacheTTL:         DefaultKeyCacheTTL,
		ShutdownTimeout:     DefaultShutdownTimeout,
		SpendLogsRetention:  DefaultSpendLogsRetention,
		MaxKeysPerUser:      DefaultMaxKeysPerUser,
	}
	defer func() { p.cfg.Settings = s }()
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.addf("keyway must be a mapping, got %s (line %d)", describe(n), n.Line)
		return
	}
	for _, f := range p.fields(sectionKeyway, n) {
		if isNull(f.v) {
			continue // unset: the default applies
		}
		field := "keyway." + f.key
		switch f.key {
		case "max_request_body_bytes":
			if b, ok := p.integer(field, f.v); ok {
				if b <= 0 {
					p.addf("%s must be more than 0, got %d", field, b)
				} else {
					s.MaxRequestBodyBytes = b
				}
			}
		case "key_cache_ttl":
			if d, ok := p.duration(field, f.v); ok {
				if d < 0 {
					p.addf("%s must not be negative (0 disables the cache), got %v", field, d)
				} else {
					s.KeyCacheTTL = d
				}
			}
		case "shutdown_timeout":
			if d, ok := p.duration(field, f.v); ok {
				if d <= 0 {
					p.addf("%s must be more than 0, got %v", field, d)
				} else {
					s.ShutdownTimeout = d
				}
			}
		case "max_keys_per_user":
			if n, ok := p.integer(field, f.v); ok {
				if n < 0 || n > 1_000_000 {
					p.addf("%s must be from 0 (no cap) to 1000000, got %d", field, n)
				} else {
					s.MaxKeysPerUser = n
				}
			}
		case "spend_logs_retention":
			if d, ok := p.days(field, f.v); ok {
				if d < time.Hour {
					p.addf("%s must be at least 1h, got %v", field, d)
				} else {
					s.SpendLogsRetention = d
				}
			}
		default:
			if !slices.Contains(settingsFields, f.key) {
				p.addf("keyway: unknown field %q (line %d)%s", f.key, f.k.Line, suggest(f.key, settingsFields))
			}
		}
	}
}

// days reads a duration that may also be written in whole days ("30d"),
// as retention periods are.
func (p *parser) days(field string, n *yaml.Node) (time.Duration, bool) {
	v := deref(n)
	if v.Kind == yaml.ScalarNode && v.Tag == "!!str" && strings.HasSuffix(v.Value, "d") {
		d, err := strconv.Atoi(strings.TrimSuffix(v.Value, "d"))
		if err != nil || d <= 0 || d > 3650 {
			p.addf("%s: %q is not a number of days from 1d to 3650d", field, truncate(v.Value))
			return 0, false
		}
		return time.Duration(d) * 24 * time.Hour, true
	}
	return p.duration(field, n)
}
