// Package metrics turns each request's reqlog.Entry into metrics: Prometheus
// counters and histograms for the local server and containers (served on
// /metrics to proxy admins), and CloudWatch embedded metric format (EMF)
// fields on the access-log line under Lambda, where a scrape cannot reach a
// sandbox and API calls would cost latency.
//
// Every label set is bounded: endpoints are configured paths (never the
// request path), model names are capped per process with the rest folded
// into "other", deny reasons and store operations come from fixed sets, and
// no key, key id or secret is ever a label.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keywaygw/keyway/shared/reqlog"
)

// Other is the label value that absorbs values beyond a label's cap.
const Other = "other"

// Default caps on distinct label values per process.
const (
	// DefaultMaxModels bounds the model label of keyway_tokens_total.
	DefaultMaxModels = 100
	// DefaultMaxEndpoints bounds the endpoint label: configured paths, so
	// only a long series of reloads with new paths could reach it.
	DefaultMaxEndpoints = 256
	// maxLabelLen: longer values are folded into Other rather than stored.
	maxLabelLen = 128
)

// Config reload results (keyway_config_reloads_total's result label).
const (
	ReloadSuccess   = "success"
	ReloadUnchanged = "unchanged"
	ReloadFailure   = "failure"
)

// Buckets for request and time-to-first-byte histograms, in seconds: from
// a cached key refusal (sub-millisecond) to a long streamed completion (the
// endpoint timeout defaults to 600 s).
var Buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Options tune a Metrics. The zero value is the default.
type Options struct {
	// MaxModels caps distinct model names (default DefaultMaxModels).
	MaxModels int
	// MaxEndpoints caps distinct endpoint paths (default DefaultMaxEndpoints).
	MaxEndpoints int
	// NoRuntime leaves out the Go runtime and process collectors (tests).
	NoRuntime bool
}

// Metrics holds Keyway's Prometheus collectors in its own registry. It is
// safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	ttfb        *prometheus.HistogramVec
	tokens      *prometheus.CounterVec
	spend       *prometheus.CounterVec
	denied      *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	softBudget  *prometheus.CounterVec

	models    *capped
	endpoints *capped

	handler http.Handler // Handler's, built once
}

// New returns a Metrics with every collector registered.
func New(o Options) *Metrics {
	if o.MaxModels <= 0 {
		o.MaxModels = DefaultMaxModels
	}
	if o.MaxEndpoints <= 0 {
		o.MaxEndpoints = DefaultMaxEndpoints
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyway_requests_total",
			Help: "Requests answered, by route class, configured endpoint path and status code.",
		}, []string{"route", "endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyway_request_duration_seconds",
			Help:    "Time from the request's arrival until its response was complete (streams included).",
			Buckets: Buckets,
		}, []string{"route", "endpoint"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyway_upstream_time_to_first_byte_seconds",
			Help:    "Time from the request's arrival until the upstream's response headers arrived.",
			Buckets: Buckets,
		}, []string{"endpoint"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyway_tokens_total",
			Help: "Metered tokens, by endpoint, model (capped; the rest is \"other\") and type (input or output).",
		}, []string{"endpoint", "model", "type"}),
		spend: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyway_spend_dollars_total",
			Help: "Metered cost charged to keys, in dollars, by endpoint.",
		}, []string{"endpoint"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyway_denied_total",
			Help: "Requests the gateway refused, by reason.",
		}, []string{"reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyway_config_reloads_total",
			Help: "Background config reloads, by result (success, unchanged, failure).",
		}, []string{"result"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyway_store_errors_total",
			Help: "Key store errors, by operation (answered 503, fail closed; a failed settle after the response left its charge unrecorded).",
		}, []string{"operation"}),
		softBudget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyway_soft_budget_crossed_total",
			Help: "Times a key's, user's or team's spend crossed its soft_budget (once per budget period each), by kind.",
		}, []string{"kind"}),
		models:    newCapped(o.MaxModels),
		endpoints: newCapped(o.MaxEndpoints),
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	m.reg.MustRegister(m.requests, m.duration, m.ttfb, m.tokens, m.spend, m.denied, m.reloads, m.storeErrors, m.softBudget)
	if !o.NoRuntime {
		m.reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	// Results and reasons are known up front: expose them at 0 so that
	// rate() and alerts work before the first event.
	for _, r := range []string{ReloadSuccess, ReloadUnchanged, ReloadFailure} {
		m.reloads.WithLabelValues(r)
	}
	for _, r := range denyReasons {
		m.denied.WithLabelValues(r)
	}
	return m
}

// Registry is the registry the collectors live in (tests, extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format. Access control
// is the gateway's (the /metrics route class is admin-only).
func (m *Metrics) Handler() http.Handler { return m.handler }

// Observe records one finished request: status is what the client got
// (499 if it went away), d the time until the response was complete.
func (m *Metrics) Observe(e *reqlog.Entry, status int, d time.Duration) {
	route := routeLabel(e.Route)
	endpoint := m.endpoints.fold(e.Endpoint)
	m.requests.WithLabelValues(route, endpoint, codeLabel(status)).Inc()
	m.duration.WithLabelValues(route, endpoint).Observe(d.Seconds())
	if e.UpstreamTTFB > 0 {
		m.ttfb.WithLabelValues(endpoint).Observe(e.UpstreamTTFB.Seconds())
	}
	if e.InputTokens > 0 || e.OutputTokens > 0 {
		// A model the endpoint prices (model_costs) always has its own
		// series: the config bounds that set. Others share the capped set,
		// first come, so names an upstream or caller makes up cannot crowd
		// out the priced ones.
		model := e.PricedModel
		if model == "" {
			model = m.models.fold(e.Model)
		}
		if model == "" {
			model = "unknown"
		}
		if e.InputTokens > 0 {
			m.tokens.WithLabelValues(endpoint, model, "input").Add(float64(e.InputTokens))
		}
		if e.OutputTokens > 0 {
			m.tokens.WithLabelValues(endpoint, model, "output").Add(float64(e.OutputTokens))
		}
	}
	if e.CostNanos > 0 {
		m.spend.WithLabelValues(endpoint).Add(float64(e.CostNanos) / 1e9)
	}
	if e.Denied != "" {
		m.denied.WithLabelValues(DenyReason(e.Denied)).Inc()
	}
	if e.StoreOp != "" {
		m.storeErrors.WithLabelValues(storeOpLabel(e.StoreOp)).Inc()
	}
}

// ConfigReload counts one background config reload by result (ReloadSuccess,
// ReloadUnchanged, ReloadFailure; anything else is "other"). It has the
// shape of config.Watcher's reload hook.
func (m *Metrics) ConfigReload(result string) {
	switch result {
	case ReloadSuccess, ReloadUnchanged, ReloadFailure:
	default:
		result = Other
	}
	m.reloads.WithLabelValues(result).Inc()
}

// SoftBudgetCrossed counts one soft_budget crossing of a key, user or team
// (kind; anything else is "other"). Nil-safe, so it can be wired
// unconditionally.
func (m *Metrics) SoftBudgetCrossed(kind string) {
	if m == nil {
		return
	}
	switch kind {
	case "key", "user", "team":
	default:
		kind = Other
	}
	m.softBudget.WithLabelValues(kind).Inc()
}

// denyReasons is the bounded set of reqlog.Deny* reasons.
var denyReasons = []string{
	reqlog.DenyNoKey, reqlog.DenyBadKey, reqlog.DenyExpired, reqlog.DenyBlocked,
	reqlog.DenyRoute, reqlog.DenyRole, reqlog.DenyRate, reqlog.DenyTokens,
	reqlog.DenyParallel, reqlog.DenyBudget, reqlog.DenyStore, reqlog.DenyBadRequest,
}

// DenyReason returns reason if it is one of the reqlog.Deny* constants, and
// Other otherwise, so that a new reason cannot grow a label set unseen.
func DenyReason(reason string) string {
	for _, r := range denyReasons {
		if r == reason {
			return r
		}
	}
	return Other
}

// routeLabel is the route class (route.Class.String()), or Other for a
// value that is not one.
func routeLabel(route string) string {
	switch route {
	case "pass_through", "admin", "health", "metrics", "console", "unknown":
		return route
	case "":
		return "unknown"
	}
	return Other
}

// codeLabel is the status as a string; values outside HTTP's range fold into
// Other (an upstream may send any three digits).
func codeLabel(status int) string {
	if status < 100 || status > 599 {
		return Other
	}
	return strconv.Itoa(status)
}

// StatusClass is "2xx" … "5xx" (499, the client going away, is "4xx"), or
// Other.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return Other
	}
	return strconv.Itoa(status/100) + "xx"
}

// storeOpLabel keeps store-operation names short and plain: they come from a
// fixed set in code (auth.StoreOpKeyLookup, the admin operations).
func storeOpLabel(op string) string {
	if len(op) > 64 {
		return Other
	}
	return op
}

// capped admits the first max distinct values of a label and folds every
// later new value into Other, so that label cardinality stays bounded no
// matter what callers or upstreams send.
type capped struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newCapped(max int) *capped {
	return &capped{max: max, seen: make(map[string]struct{})}
}

func (c *capped) fold(v string) string {
	if v == "" {
		return ""
	}
	if len(v) > maxLabelLen {
		return Other
	}
	c.mu.RLock()
	_, ok := c.seen[v]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.max {
		return Other
	}
	c.seen[v] = struct{}{}
	return v
}
