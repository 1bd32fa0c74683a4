// Package config loads, provisions and validates Keyway's configuration.
//
// A LiteLLM proxy config is a valid Keyway config: Keyway reads
// general_settings.master_key and general_settings.pass_through_endpoints and
// accepts every other LiteLLM section with one warning each. Keyway-only
// settings live under a top-level `keyway:` section so that a LiteLLM config
// never changes meaning.
//
// The lifecycle is load → provision → validate, all at start-up or reload:
// Parse returns a fully resolved *Config (targets parsed, secrets resolved,
// defaults applied) or one error listing every problem. Nothing is parsed per
// request.
package config

import (
	"net/http"
	"net/url"
	"time"
)

// Defaults for fields the config leaves unset.
const (
	DefaultTimeout         = 600 * time.Second
	DefaultMaxRequestBody  = 10 << 20 // 10 MiB, API Gateway's payload limit
	DefaultKeyCacheTTL     = 5 * time.Second
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultSpendLogsRetention is how long usage records are kept.
	DefaultSpendLogsRetention = 30 * 24 * time.Hour
	// DefaultMaxKeysPerUser caps the keys a non-admin may hold for its user.
	DefaultMaxKeysPerUser = 100
)

// DefaultMethods is what an endpoint without `methods` allows. Unlike LiteLLM
// (GET, POST, PUT, DELETE, PATCH) Keyway also allows HEAD and OPTIONS so that
// CORS preflights and existence checks reach the upstream.
var DefaultMethods = []string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodHead, http.MethodOptions,
}

// AdminPrefixes are the gateway's own route prefixes. A pass-through path may
// not equal or live under one of them, so that one route classifier can tell
// admin calls from pass-through calls without ambiguity.
var AdminPrefixes = []string{"/key", "/user", "/team", "/spend", "/global", "/config", "/health", "/metrics", "/ui"}

// Config is a loaded, provisioned and validated configuration. It is
// immutable once returned by Parse; a reload builds a new one.
type Config struct {
	// MasterKey is the resolved proxy-admin key; empty means no master key
	// (admin API unusable, auth:true endpoints need virtual keys).
	MasterKey string
	// Endpoints are the pass-through endpoints in config order.
	Endpoints []*Endpoint
	// Settings are the keyway: section with defaults applied.
	Settings Settings
	// Warnings are non-fatal notes (ignored LiteLLM sections), one each.
	Warnings []string
}

// Endpoint is one pass-through endpoint, provisioned.
type Endpoint struct {
	// Path is the route prefix on the gateway, e.g. "/v1/ocr". It starts with
	// "/" and has no trailing slash (except the root "/").
	Path string
	// Target is the parsed upstream URL.
	Target *url.URL
	// IncludeSubpath also serves Path/anything, appended to Target's path.
	// Default false: only Path itself is served.
	IncludeSubpath bool
	// Auth requires a virtual key (or the master key). Default true, so a
	// public endpoint must say `auth: false`.
	Auth bool
	// Methods is the set of allowed methods, upper-case, without duplicates,
	// in DefaultMethods order; others get 405. Default DefaultMethods.
	Methods []string
	// Headers are set on every upstream request, with os.environ/ references
	// already resolved. They win over forwarded client headers.
	Headers http.Header
	// ForwardHeaders forwards the client's end-to-end headers (never its
	// credential). Default false.
	ForwardHeaders bool
	// Timeout bounds the wait for upstream response headers, not the body, so
	// long streams live. Default general_settings.pass_through_request_timeout
	// when set (as in LiteLLM), else 600s.
	Timeout time.Duration
	// CostPerRequest is dollars charged per call to the key, its user and
	// its team (spend, budgets), on top of any token prices. Default 0.
	CostPerRequest float64
	// Metering is the endpoint's keyway: mapping (usage parsing, token
	// prices). Default: usage auto, no token prices.
	Metering Metering
}

// MaxCostPerRequest bounds cost_per_request (dollars), so that every cost
// is representable in integer nano-dollars.
const MaxCostPerRequest = 1e6

// AllowsMethod reports whether m is in the endpoint's methods.
func (e *Endpoint) AllowsMethod(m string) bool {
	for _, allowed := range e.Methods {
		if allowed == m {
			return true
		}
	}
	return false
}

// Settings is the Keyway-only `keyway:` section. The yaml tags name the keys
// (the parser reads them by name and reports unknown ones).
type Settings struct {
	// MaxRequestBodyBytes caps a request body; larger bodies get 413 before
	// anything is forwarded when the length is known, and are cut off
	// otherwise. Default 10 MiB (API Gateway's own limit).
	MaxRequestBodyBytes int64 `yaml:"max_request_body_bytes"`
	// KeyCacheTTL is how long a key lookup (found or not found) is trusted by
	// the in-process cache; it is the worst-case delay before a revocation
	// made on another instance takes effect. Default 5s; 0 disables the cache.
	KeyCacheTTL time.Duration `yaml:"key_cache_ttl"`
	// ShutdownTimeout bounds how long in-flight requests may run after
	// SIGTERM in local mode. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// SpendLogsRetention is how long usage records (/spend/logs) are kept.
	// Default 30 days.
	SpendLogsRetention time.Duration `yaml:"spend_logs_retention"`
	// MaxKeysPerUser caps how many keys a caller that is not an admin may
	// hold for its user (/key/generate answers 403 at the cap). 0 means no
	// cap. Default 100.
	MaxKeysPerUser int64 `yaml:"max_keys_per_user"`
}
