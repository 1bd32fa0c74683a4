// Package route is Keyway's one route classifier. Every request is
// classified exactly once, before any check, into an admin route, a
// pass-through route (with its endpoint), health, or unknown. Authentication
// and authorization then work from that one answer, so two checks can never
// disagree about what a route is — the cause of LiteLLM's "Only proxy admin
// can be used … Your role=unknown" on pass-through endpoints (LiteLLM issues
// #23915, #36280, #36508).
package route

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/keywaygw/keyway/shared/config"
)

// Class is what a request is.
type Class int

// The classes.
const (
	Unknown     Class = iota // no route: 404
	Health                   // /health and below: liveness, no auth
	Admin                    // /key, /user, /team and below: the admin API
	PassThrough              // a configured pass-through endpoint
	Metrics                  // /metrics: Prometheus exposition, proxy admins only
	// Console is /ui and below: the admin console's static page and
	// assets, served without a key (the page's API calls carry the key).
	Console
)

func (c Class) String() string {
	switch c {
	case Health:
		return "health"
	case Admin:
		return "admin"
	case PassThrough:
		return "pass_through"
	case Metrics:
		return "metrics"
	case Console:
		return "console"
	}
	return "unknown"
}

// ConsolePrefix is where the admin console is served.
const ConsolePrefix = "/ui"

// Route is the classification of one request.
type Route struct {
	Class Class
	// Endpoint is the matched endpoint for PassThrough.
	Endpoint *config.Endpoint
	// Subpath is the still-escaped part of the request path after
	// Endpoint.Path: "" or starting with "/". Only non-empty when the endpoint
	// has include_subpath.
	Subpath string
	// Path is the request's escaped path, as classified.
	Path string
}

// Table classifies requests against a config's endpoints. It is built once
// per config and safe for concurrent use.
type Table struct {
	byLength []*config.Endpoint // longest path first
}

// New builds a Table. Endpoints are matched longest path first.
func New(endpoints []*config.Endpoint) *Table {
	sorted := slices.Clone(endpoints)
	slices.SortStableFunc(sorted, func(a, b *config.Endpoint) int {
		return cmp.Compare(len(b.Path), len(a.Path))
	})
	return &Table{byLength: sorted}
}

// Classify decides what r is. It reads the escaped path, so an encoded slash
// (%2F) is never taken for a segment boundary.
func (t *Table) Classify(r *http.Request) Route {
	return t.ClassifyPath(r.URL.EscapedPath())
}

// ClassifyPath classifies an escaped request path.
func (t *Table) ClassifyPath(path string) Route {
	if path == "" {
		path = "/"
	}
	// The gateway's own routes are exactly the prefixes config reserves,
	// so that no pass-through endpoint can be shadowed by one.
	for _, prefix := range config.AdminPrefixes {
		if underPrefix(path, prefix) {
			return Route{Class: reservedClass(prefix), Path: path}
		}
	}
	for _, ep := range t.byLength {
		if path == ep.Path {
			return Route{Class: PassThrough, Endpoint: ep, Path: path}
		}
		if ep.IncludeSubpath && strings.HasPrefix(path, ep.Path) && path[len(ep.Path)] == '/' {
			return Route{Class: PassThrough, Endpoint: ep, Subpath: path[len(ep.Path):], Path: path}
		}
		// A trailing slash on the exact path is the same route.
		if !ep.IncludeSubpath && path == ep.Path+"/" {
			return Route{Class: PassThrough, Endpoint: ep, Path: path}
		}
	}
	return Route{Class: Unknown, Path: path}
}

// reservedClass is the class of the routes under one of
// config.AdminPrefixes: the admin API (/key, /user, /team, /spend, /global,
// and /config with the admin read routes about the config), unless it is
// one of these.
func reservedClass(prefix string) Class {
	switch prefix {
	case "/health":
		return Health
	case "/metrics":
		return Metrics
	case ConsolePrefix:
		return Console
	}
	return Admin
}

// underPrefix reports whether path is prefix or below it at a segment
// boundary.
func underPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// MatchesPrefix reports whether path equals a route pattern or lies below it
// at a segment boundary; a pattern ending in "/*" or "*" is a prefix too.
// It is the one rule for allowed_routes and allowed_passthrough_routes, so
// "/v1/ocr" allows "/v1/ocr/x" but never "/v1/ocrx".
func MatchesPrefix(path, pattern string) bool {
	switch {
	case pattern == "*" || pattern == "/*":
		return true
	case strings.HasSuffix(pattern, "/*"):
		pattern = strings.TrimSuffix(pattern, "/*")
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(path, strings.TrimSuffix(pattern, "*"))
	}
	if len(pattern) > 1 {
		pattern = strings.TrimSuffix(pattern, "/")
	}
	if pattern == "/" {
		return true
	}
	return underPrefix(path, pattern)
}
