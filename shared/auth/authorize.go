package auth

import (
	"fmt"
	"slices"
	"strings"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/reqlog"
	"github.com/keywaygw/keyway/shared/route"
)

// PassThroughGroups are LiteLLM route-group names that, in a key's
// allowed_routes, admit every pass-through endpoint (LiteLLM PR #15115 counts
// registered pass-through routes as LLM API routes).
var PassThroughGroups = []string{"llm_api_routes", "openai_routes", "pass_through_routes"}

// IsPassThroughGroup reports whether name is one of PassThroughGroups.
func IsPassThroughGroup(name string) bool {
	return slices.Contains(PassThroughGroups, strings.ToLower(name))
}

// Authorize is the one decision of whether principal p may use route rt. It
// returns nil to admit, or the error to answer.
//
// Health is open. A pass-through endpoint with auth: false is open. Every
// other route needs a principal: the master key may do anything; a virtual
// key must be active (not blocked, nor its user or team) and, on a
// pass-through route, not a viewer and allowed by its route restrictions.
// On admin routes a key's allowed_routes apply too; the admin API then
// checks each operation, knowing what is being read or changed.
//
// Unlike LiteLLM, a valid key's user role never decides whether it may call
// a pass-through endpoint: a missing user (a team or service key) is not a
// reason to deny (LiteLLM #23915's "Your role=unknown").
//
// The metrics route (/metrics) is for proxy admins only: the master key or
// a key whose user has the proxy_admin role.
//
// A refusal also names its reason, from the bounded reqlog.Deny* set (for
// the access log and the denial metrics); the reason is "" when it admits.
func Authorize(p *Principal, rt route.Route) (*apierr.Error, string) {
	switch rt.Class {
	case route.Health:
		return nil, ""
	case route.Unknown:
		return apierr.NotFound("no route for " + rt.Path), ""
	case route.PassThrough:
		if !rt.Endpoint.Auth {
			return nil, ""
		}
	}
	switch p.Kind {
	case Anonymous:
		return apierr.Unauthorized("no API key: send \"Authorization: Bearer sk-...\" or \"x-api-key: sk-...\""), reqlog.DenyNoKey
	case Master:
		return nil, ""
	}
	k := p.Key
	switch {
	case k.Blocked:
		return apierr.Forbidden("this key is blocked"), reqlog.DenyBlocked
	case p.User != nil && p.User.Blocked:
		return apierr.Forbidden(fmt.Sprintf("the key's user %q is blocked", p.User.UserID)), reqlog.DenyBlocked
	case p.Team != nil && p.Team.Blocked:
		return apierr.Forbidden(fmt.Sprintf("the key's team %q is blocked", p.Team.TeamID)), reqlog.DenyBlocked
	}
	if rt.Class == route.Metrics && p.Role != keys.RoleProxyAdmin {
		return apierr.Forbidden("/metrics is for proxy admins (the master key or a proxy_admin user's key)"), reqlog.DenyRole
	}
	if rt.Class == route.Admin || rt.Class == route.Metrics {
		// allowed_routes restricts every route, as in LiteLLM: a key limited
		// to some endpoints must not reach the admin API and mint itself an
		// unrestricted key. Route groups name pass-through endpoints only.
		if len(k.AllowedRoutes) > 0 && !allowedByRoutes(rt.Path, k.AllowedRoutes, false) {
			return apierr.Forbidden(fmt.Sprintf("this key's allowed_routes do not include %s", rt.Path)), reqlog.DenyRoute
		}
		return nil, ""
	}
	if p.Role.ReadOnly() {
		return apierr.Forbidden(fmt.Sprintf("role %s is read-only and cannot call pass-through endpoints", p.Role)), reqlog.DenyRole
	}
	if len(k.AllowedRoutes) > 0 && !allowedByRoutes(rt.Path, k.AllowedRoutes, true) {
		return apierr.Forbidden(fmt.Sprintf("this key's allowed_routes do not include %s", rt.Path)), reqlog.DenyRoute
	}
	if len(k.AllowedPassthroughRoutes) > 0 && !allowedByRoutes(rt.Path, k.AllowedPassthroughRoutes, false) {
		return apierr.Forbidden(fmt.Sprintf("this key's allowed_passthrough_routes do not include %s", rt.Path)), reqlog.DenyRoute
	}
	if p.Team != nil && len(p.Team.AllowedPassthroughRoutes) > 0 && !allowedByRoutes(rt.Path, p.Team.AllowedPassthroughRoutes, false) {
		return apierr.Forbidden(fmt.Sprintf("team %q's allowed_passthrough_routes do not include %s", p.Team.TeamID, rt.Path)), reqlog.DenyRoute
	}
	return nil, ""
}

// allowedByRoutes reports whether path matches one of patterns, exact or as
// a prefix at a segment boundary (route.MatchesPrefix). With groups, LiteLLM
// route-group names that cover pass-through endpoints match too.
func allowedByRoutes(path string, patterns []string, groups bool) bool {
	for _, pat := range patterns {
		if groups && IsPassThroughGroup(pat) {
			return true
		}
		if route.MatchesPrefix(path, pat) {
			return true
		}
	}
	return false
}
