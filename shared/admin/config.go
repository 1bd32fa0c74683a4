package admin

import (
	"net/url"
	"slices"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/config"
)

// GET /config/pass_through_endpoint: the configured pass-through endpoints,
// read-only, in LiteLLM's PassThroughEndpointResponse shape
// ({"endpoints": [...]}) where it fits, for the console's endpoints view and
// its status line.
//
// Never a header value: configured headers usually carry upstream secrets,
// so only their names are listed (header_names, instead of LiteLLM's
// headers map). The target is shown without query or user info.
//
// Admins (both roles) see everything. Internal users and service keys see
// what they need to call the gateway — path, methods, auth, pricing — but
// not the upstream target, the header names or the config source: those
// describe the operator's setup, not the caller's.

// ConfigInfo is what the admin API reads about the config in force. Both
// funcs are optional; without Endpoints the route lists none.
type ConfigInfo struct {
	// Endpoints returns the current pass-through endpoints.
	Endpoints func() []*config.Endpoint
	// Status returns the config's source and load times (config.Watcher's
	// Status).
	Status func() config.Status
}

var configEndpointsQuery = schema{"endpoint_id": {kind: kString}}

// endpointView is one endpoint in the response.
type endpointView struct {
	ID             string       `json:"id"`
	Path           string       `json:"path"`
	Target         string       `json:"target,omitempty"`
	IncludeSubpath bool         `json:"include_subpath"`
	Auth           bool         `json:"auth"`
	Methods        []string     `json:"methods"`
	ForwardHeaders bool         `json:"forward_headers"`
	HeaderNames    []string     `json:"header_names,omitempty"`
	Timeout        float64      `json:"timeout"`
	CostPerRequest float64      `json:"cost_per_request"`
	Keyway         meteringView `json:"keyway"`
}

// meteringView is an endpoint's keyway: pricing, with the config's names.
type meteringView struct {
	Usage                   string                 `json:"usage"`
	InputCostPerToken       float64                `json:"input_cost_per_token"`
	OutputCostPerToken      float64                `json:"output_cost_per_token"`
	CacheReadInputTokenCost *float64               `json:"cache_read_input_token_cost"`
	ModelCosts              map[string]pricingView `json:"model_costs,omitempty"`
}

type pricingView struct {
	InputCostPerToken       float64  `json:"input_cost_per_token"`
	OutputCostPerToken      float64  `json:"output_cost_per_token"`
	CacheReadInputTokenCost *float64 `json:"cache_read_input_token_cost"`
}

// configStatusView is the status line: where the config comes from and when
// this instance loaded it.
type configStatusView struct {
	Source    string    `json:"source,omitempty"`
	LoadedAt  time.Time `json:"loaded_at"`
	CheckedAt time.Time `json:"checked_at"`
}

type configEndpointsResponse struct {
	Endpoints []endpointView    `json:"endpoints"`
	Status    *configStatusView `json:"keyway_status,omitempty"`
}

func (h *handler) configEndpoints(c *call) (any, *apierr.Error) {
	v, e := c.query(configEndpointsQuery)
	if e != nil {
		return nil, e
	}
	full := c.scope == all
	var eps []*config.Endpoint
	if h.config.Endpoints != nil {
		eps = h.config.Endpoints()
	}
	id, byID := v.str("endpoint_id")
	resp := configEndpointsResponse{Endpoints: []endpointView{}}
	for _, ep := range eps {
		if byID && ep.Path != id {
			continue
		}
		resp.Endpoints = append(resp.Endpoints, viewEndpoint(ep, full))
	}
	if byID && len(resp.Endpoints) == 0 {
		return nil, apierr.NotFound("no pass-through endpoint with path " + quote(id)).WithParam("endpoint_id")
	}
	if h.config.Status != nil {
		st := h.config.Status()
		sv := &configStatusView{LoadedAt: st.LoadedAt, CheckedAt: st.CheckedAt}
		if full {
			sv.Source = st.Source
		}
		resp.Status = sv
	}
	return resp, nil
}

func viewEndpoint(ep *config.Endpoint, full bool) endpointView {
	m := ep.Metering
	out := endpointView{
		ID:             ep.Path,
		Path:           ep.Path,
		IncludeSubpath: ep.IncludeSubpath,
		Auth:           ep.Auth,
		Methods:        slices.Clone(ep.Methods),
		ForwardHeaders: ep.ForwardHeaders,
		Timeout:        ep.Timeout.Seconds(),
		CostPerRequest: ep.CostPerRequest,
		Keyway: meteringView{
			Usage:                   string(m.Usage),
			InputCostPerToken:       m.Prices.InputCostPerToken,
			OutputCostPerToken:      m.Prices.OutputCostPerToken,
			CacheReadInputTokenCost: m.Prices.CacheReadInputTokenCost,
		},
	}
	if out.Keyway.Usage == "" {
		out.Keyway.Usage = "auto"
	}
	if len(m.ModelCosts) > 0 {
		out.Keyway.ModelCosts = make(map[string]pricingView, len(m.ModelCosts))
		for model, p := range m.ModelCosts {
			out.Keyway.ModelCosts[model] = pricingView(p)
		}
	}
	if full {
		out.Target = safeTarget(ep.Target)
		for name := range ep.Headers {
			out.HeaderNames = append(out.HeaderNames, name)
		}
		slices.Sort(out.HeaderNames)
	}
	return out
}

// safeTarget shows an upstream URL without user info, query or fragment,
// which could carry a credential.
func safeTarget(u *url.URL) string {
	if u == nil {
		return ""
	}
	s := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return s.String()
}
