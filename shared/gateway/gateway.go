// Package gateway assembles Keyway's one http.Handler: classify the request
// once, authenticate, authorize, then hand it to the admin API or the
// pass-through proxy. The same handler serves the local HTTP server and both
// Lambda response modes.
package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/metrics"
	"github.com/keywaygw/keyway/shared/reqlog"
	"github.com/keywaygw/keyway/shared/route"
)

// Forwarder streams a pass-through request to its endpoint (package proxy).
type Forwarder interface {
	Forward(w http.ResponseWriter, r *http.Request, ep *config.Endpoint, subpath string)
}

// Options are the gateway's dependencies, built once at start-up.
type Options struct {
	// Config returns the current configuration (a config.Watcher's Current).
	Config func() *config.Config
	// Auth authenticates credentials against the key store.
	Auth *auth.Authenticator
	// OnConfig is called once for each new config, before it serves a
	// request, so that settings owned by other parts (the key cache's TTL,
	// the proxy's body limit) follow a reload. Optional.
	OnConfig func(*config.Config)
	// Admin serves /key, /user and /team after authentication.
	Admin http.Handler
	// Console serves the admin console's static files under /ui (package
	// console). They are public: the page holds no data, and its API calls
	// carry the key. Nil answers /ui with 404.
	Console http.Handler
	// Proxy forwards pass-through requests.
	Proxy Forwarder
	// Logger receives one access line per request.
	Logger *slog.Logger
	// Metrics, when set, observes every request and serves /metrics (to
	// proxy admins). Nil: /metrics answers 404.
	Metrics *metrics.Metrics
	// EMF adds CloudWatch embedded-metric-format members to each access
	// line (under Lambda, where CloudWatch Logs extracts them).
	EMF bool
}

// Gateway is the http.Handler.
type Gateway struct {
	opts    Options
	logger  *slog.Logger
	current atomic.Pointer[snapshot]
	handler http.HandlerFunc // serve inside the access log, built once
}

// snapshot is what the gateway derives from one config: built once per
// config, swapped atomically on reload.
type snapshot struct {
	cfg   *config.Config
	table *route.Table
}

var _ http.Handler = (*Gateway)(nil)

// New returns the gateway handler.
func New(o Options) *Gateway {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &Gateway{opts: o, logger: o.Logger}
	g.handler = g.withAccessLog(g.serve)
	return g
}

// snapshot returns the route table for the current config, rebuilding it
// only when the config changed.
func (g *Gateway) snapshot() *snapshot {
	cfg := g.opts.Config()
	if s := g.current.Load(); s != nil && s.cfg == cfg {
		return s
	}
	s := &snapshot{cfg: cfg, table: route.New(cfg.Endpoints)}
	if g.opts.OnConfig != nil {
		g.opts.OnConfig(cfg)
	}
	g.current.Store(s)
	return s
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.handler(w, r)
}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	snap := g.snapshot()
	entry := reqlog.FromContext(r.Context())
	rt := snap.table.Classify(r)
	entry.Route = rt.Class.String()
	if rt.Endpoint != nil {
		entry.Endpoint = rt.Endpoint.Path
	}

	switch rt.Class {
	case route.Unknown:
		g.fail(w, r, apierr.NotFound(fmt.Sprintf("no route for %s %s", r.Method, rt.Path)))
		return
	case route.Health:
		if err := serveHealth(w, r, rt.Path); err != nil {
			g.fail(w, r, err)
		}
		return
	case route.Console:
		if g.opts.Console == nil {
			g.fail(w, r, apierr.NotFound("the console is not enabled on this gateway"))
			return
		}
		g.opts.Console.ServeHTTP(w, r)
		return
	case route.PassThrough:
		// A browser fetching a service worker script says so; a worker
		// from a pass-through path would share the console's origin.
		if r.Header.Get("Service-Worker") != "" {
			g.fail(w, r, apierr.Forbidden("service workers may not be registered from pass-through endpoints (they would share the gateway's origin with its console)"))
			return
		}
		if !rt.Endpoint.AllowsMethod(r.Method) {
			w.Header().Set("Allow", strings.Join(rt.Endpoint.Methods, ", "))
			g.fail(w, r, apierr.New(http.StatusMethodNotAllowed, apierr.TypeMethod,
				fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, rt.Endpoint.Path, strings.Join(rt.Endpoint.Methods, ", "))))
			return
		}
	}

	principal := &auth.Principal{Kind: auth.Anonymous}
	if needsCredential(rt) {
		p, err := g.opts.Auth.Authenticate(r.Context(), r.Header, snap.cfg.MasterKey)
		if err != nil {
			g.fail(w, r, err)
			return
		}
		principal = p
	}
	entry.Principal = principal.Actor()
	if principal.Key != nil {
		entry.UserID, entry.TeamID = principal.Key.UserID, principal.Key.TeamID
	}
	if err, reason := auth.Authorize(principal, rt); err != nil {
		entry.Denied = reason
		g.fail(w, r, err)
		return
	}

	r = r.WithContext(auth.NewContext(r.Context(), principal))
	switch rt.Class {
	case route.Admin:
		g.opts.Admin.ServeHTTP(w, r)
	case route.PassThrough:
		g.opts.Proxy.Forward(w, r, rt.Endpoint, rt.Subpath)
	case route.Metrics:
		if err := g.serveMetrics(w, r, rt.Path); err != nil {
			g.fail(w, r, err)
		}
	}
}

// serveMetrics answers GET /metrics in the Prometheus text format. The
// caller is already authorized (proxy admins only).
func (g *Gateway) serveMetrics(w http.ResponseWriter, r *http.Request, path string) *apierr.Error {
	if path != "/metrics" && path != "/metrics/" {
		return apierr.NotFound("no route for " + path)
	}
	if g.opts.Metrics == nil {
		return apierr.NotFound("metrics are not served by this instance (under Lambda they are CloudWatch EMF in the access log)")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return apierr.New(http.StatusMethodNotAllowed, apierr.TypeMethod, "/metrics accepts GET and HEAD")
	}
	w.Header().Set("Cache-Control", "no-store")
	g.opts.Metrics.Handler().ServeHTTP(w, r)
	return nil
}

// needsCredential reports whether rt is authenticated at all. An auth:false
// endpoint ignores any credential (and the proxy still strips it), so a
// stray or malformed header never turns a public call into a 401 (LiteLLM
// #23909).
func needsCredential(rt route.Route) bool {
	switch rt.Class {
	case route.Admin, route.Metrics:
		return true
	case route.PassThrough:
		return rt.Endpoint.Auth
	}
	return false
}

func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, e *apierr.Error) {
	reqlog.FromContext(r.Context()).Error = e.Message
	apierr.Write(w, e)
}

// serveHealth answers liveness probes: /health, /health/liveliness (LiteLLM's
// spelling), /health/liveness and /health/readiness. It returns the error
// to answer for any other path or method.
func serveHealth(w http.ResponseWriter, r *http.Request, path string) *apierr.Error {
	switch path {
	case "/health", "/health/liveliness", "/health/liveness", "/health/readiness":
	default:
		return apierr.NotFound("no route for " + path)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return apierr.New(http.StatusMethodNotAllowed, apierr.TypeMethod, "health accepts GET and HEAD")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write([]byte(`{"status":"healthy"}` + "\n"))
	}
	return nil
}
