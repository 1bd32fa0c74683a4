package admin

import (
	"slices"
	"strings"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/ledger"
)

// This file is the admin API's whole access policy: which principal may
// call which operation (the policy table), on whose records (scope), and
// which request fields only an admin may set. Handlers ask; they never
// decide.

// op is one admin operation.
type op int

// The operations, one per route.
const (
	opUserNew op = iota
	opUserInfo
	opUserUpdate
	opUserDelete
	opUserList
	opKeyGenerate
	opKeyInfo
	opKeyUpdate
	opKeyDelete
	opKeyList
	opKeyRegenerate
	opKeyBlock
	opKeyUnblock
	opTeamNew
	opTeamInfo
	opTeamUpdate
	opTeamDelete
	opTeamList
	opSpendLogs
	opSpendReport
	opSpendDaily
	opConfigEndpoints
	numOps
)

func (o op) String() string { return policy[o].route }

// scope is how far an allowed operation reaches.
type scope int

const (
	deny    scope = iota // not at all: 403
	selfKey              // only the calling key's own record
	own                  // the caller's user, keys whose user_id is the caller, teams it is in
	all                  // every record
)

// class is what kind of caller a principal is, for the policy table.
type class int

const (
	classAdmin       class = iota // master key or proxy_admin
	classAdminViewer              // proxy_admin_viewer
	classUser                     // internal_user with a user id
	classUserViewer               // internal_user_viewer with a user id
	classService                  // a key without a user (service key)
	numClasses
)

var classNames = [numClasses]string{"proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer", "a key without a user"}

// rule is one row of the policy table.
type rule struct {
	route string
	write bool
	scope [numClasses]scope // indexed by class
}

// policy is the table: route × caller class → scope. Columns, in order:
// proxy_admin (and the master key), proxy_admin_viewer, internal_user,
// internal_user_viewer, a key without a user.
var policy = [numOps]rule{
	opUserNew:       {"/user/new", true, [numClasses]scope{all, deny, deny, deny, deny}},
	opUserInfo:      {"/user/info", false, [numClasses]scope{all, all, own, own, deny}},
	opUserUpdate:    {"/user/update", true, [numClasses]scope{all, deny, own, deny, deny}},
	opUserDelete:    {"/user/delete", true, [numClasses]scope{all, deny, deny, deny, deny}},
	opUserList:      {"/user/list", false, [numClasses]scope{all, all, deny, deny, deny}},
	opKeyGenerate:   {"/key/generate", true, [numClasses]scope{all, deny, own, deny, deny}},
	opKeyInfo:       {"/key/info", false, [numClasses]scope{all, all, own, own, selfKey}},
	opKeyUpdate:     {"/key/update", true, [numClasses]scope{all, deny, own, deny, deny}},
	opKeyDelete:     {"/key/delete", true, [numClasses]scope{all, deny, own, deny, deny}},
	opKeyList:       {"/key/list", false, [numClasses]scope{all, all, own, own, deny}},
	opKeyRegenerate: {"/key/regenerate", true, [numClasses]scope{all, deny, own, deny, deny}},
	opKeyBlock:      {"/key/block", true, [numClasses]scope{all, deny, own, deny, deny}},
	opKeyUnblock:    {"/key/unblock", true, [numClasses]scope{all, deny, deny, deny, deny}},
	opTeamNew:       {"/team/new", true, [numClasses]scope{all, deny, deny, deny, deny}},
	opTeamInfo:      {"/team/info", false, [numClasses]scope{all, all, own, own, deny}},
	opTeamUpdate:    {"/team/update", true, [numClasses]scope{all, deny, deny, deny, deny}},
	opTeamDelete:    {"/team/delete", true, [numClasses]scope{all, deny, deny, deny, deny}},
	opTeamList:      {"/team/list", false, [numClasses]scope{all, all, own, own, deny}},
	opSpendLogs:     {"/spend/logs", false, [numClasses]scope{all, all, own, own, selfKey}},
	opSpendReport:   {"/global/spend/report", false, [numClasses]scope{all, all, deny, deny, deny}},
	opSpendDaily:    {"/spend/daily", false, [numClasses]scope{all, all, own, own, deny}},
	// own/selfKey: the endpoints without targets, headers or config source.
	opConfigEndpoints: {"/config/pass_through_endpoint", false, [numClasses]scope{all, all, own, own, selfKey}},
}

// classify places a principal in the policy table. ok is false for a role
// Keyway does not know, which is denied everything (fail closed).
func classify(p *auth.Principal) (c class, ok bool) {
	if p.Kind == auth.Master {
		return classAdmin, true
	}
	if p.Kind != auth.VirtualKey || p.Key == nil {
		return 0, false
	}
	switch {
	case p.Role == keys.RoleProxyAdmin:
		return classAdmin, true
	case p.Role == keys.RoleProxyAdminViewer:
		return classAdminViewer, true
	case p.UserID() == "":
		return classService, true
	case p.Role == keys.RoleInternalUser:
		return classUser, true
	case p.Role == keys.RoleInternalUserViewer:
		return classUserViewer, true
	}
	return 0, false
}

// authorize is the route-level decision: may p call o at all, and how far
// does it reach. A denial is a 403 with the reason.
func authorize(p *auth.Principal, o op) (scope, *apierr.Error) {
	cl, ok := classify(p)
	if !ok {
		return deny, apierr.Forbidden("role " + quote(string(p.Role)) + " is not a Keyway role; it may not use the admin API")
	}
	rl := policy[o]
	// A secret in its grace period after /key/regenerate is the secret
	// being replaced, perhaps because it leaked: it may keep calling
	// pass-through routes and read the admin API until its grace ends, but
	// write nothing, so it can never block, delete, move or restrict its
	// key, user or team, nor mint a key that could (the holder of the
	// current secret keeps control).
	if p.OldSecret && rl.write {
		return deny, apierr.Forbidden("an old secret (in its grace period after /key/regenerate) may only read the admin API; " + rl.route + " needs the current secret")
	}
	if s := rl.scope[cl]; s != deny {
		return s, nil
	}
	name := classNames[cl]
	switch {
	case cl == classService:
		return deny, apierr.Forbidden("a key without a user may only read itself (GET /key/info with no parameters); " + rl.route + " is not allowed")
	case rl.write && (cl == classAdminViewer || cl == classUserViewer):
		return deny, apierr.Forbidden(name + " is read-only: it may not call " + rl.route)
	default:
		return deny, apierr.Forbidden(name + " may not call " + rl.route + "; only proxy_admin may")
	}
}

// callerClass is c's class (authorize has already accepted it).
func (c *call) callerClass() string {
	cl, _ := classify(c.who)
	return classNames[cl]
}

// A record the caller may not see is answered exactly like a missing one
// (same status, message and param), so that a scoped caller cannot learn
// which user ids exist or that a key exists (docs/security.md,
// "Enumeration"). The two answers below are the ones storeErr gives for a
// missing key and a missing user.

// keyNotFound is the answer for a key that does not exist or that the
// caller may not see.
func keyNotFound(param string) *apierr.Error {
	return apierr.NotFound("key not found").WithParam(param)
}

// userNotFound is the answer for a user that does not exist or that the
// caller may not see.
func userNotFound(userID, param string) *apierr.Error {
	return apierr.NotFound("user " + quote(userID) + " not found").WithParam(param)
}

// canKey decides whether the caller may act on key k. A key outside the
// caller's reach is "not found", never "not yours".
func (c *call) canKey(k *keys.Key, param string) *apierr.Error {
	switch c.scope {
	case all:
		return nil
	case own:
		if uid := c.who.UserID(); uid != "" && k.UserID == uid {
			return nil
		}
	case selfKey:
		if c.who.Key != nil && k.TokenID == c.who.Key.TokenID {
			return nil
		}
	}
	return keyNotFound(param)
}

// canUser decides whether the caller may act on the user userID; param is
// the request field that named it. Another user is "not found".
func (c *call) canUser(userID, param string) *apierr.Error {
	if c.scope == all {
		return nil
	}
	if c.scope == own && userID != "" && userID == c.who.UserID() {
		return nil
	}
	return userNotFound(userID, param)
}

// keyOwner decides the user_id a new or updated key may get: a scoped
// caller's keys always belong to itself (an absent user_id means itself).
func (c *call) keyOwner(requested string, present bool) (string, *apierr.Error) {
	if c.scope == all {
		return requested, nil
	}
	if !present || requested == c.who.UserID() && requested != "" {
		return c.who.UserID(), nil
	}
	// The same 403 for every other user_id, existing or not: it names
	// nothing and reveals nothing (the acceptance scenario expects 401/403
	// here, not 404).
	return "", apierr.Forbidden(c.callerClass() + " may only give keys to its own user").WithParam("user_id")
}

// canTeam decides whether the caller may read or use team teamID (param
// names the field): admins any, others only teams they are in.
func (h *handler) canTeam(c *call, teamID, param string) *apierr.Error {
	if c.scope == all {
		return nil
	}
	in, e := h.memberOf(c, teamID)
	if e != nil {
		return e
	}
	if !in {
		return apierr.Forbidden(c.callerClass() + " may only use teams it is in; " + param + " " + quote(teamID) + " is not one of them").WithParam(param)
	}
	return nil
}

// memberOf reports whether the caller is in team teamID: its user lists
// the team (read fresh, not from the cached principal), or its key is bound
// to it.
func (h *handler) memberOf(c *call, teamID string) (bool, *apierr.Error) {
	if c.who.Key != nil && c.who.Key.TeamID == teamID {
		return true, nil
	}
	uid := c.who.UserID()
	if uid == "" {
		return false, nil
	}
	u, err := h.store.GetUser(c.ctx, uid)
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, h.storeErr(c, err, "user", "user_id")
	}
	return slices.Contains(u.Teams, teamID), nil
}

// A key that reaches only its own records (an internal_user's key) must not
// be able to turn itself into a key that reaches further: the restrictions
// an admin put on it (allowed_routes, allowed_passthrough_routes, its team,
// its limits, its expiry) bind every key it makes. Admins (scope all) are
// not bound. The functions below are that rule; docs/admin-api.md
// ("Restrictions carry over") describes it.

// boundBy is the calling key whose restrictions bind what the caller
// creates or changes: the caller's own key when its reach is limited to its
// own records (scope own); nil for the master key and admins.
func (c *call) boundBy() *keys.Key {
	if c.scope != own || c.who.Key == nil {
		return nil
	}
	return c.who.Key
}

// inherit gives a key the calling key creates the calling key's
// restrictions: its allowed routes, allowed pass-through routes, models and
// limits (fields the caller may not set itself), its team when the request
// names none, and an expiry no later than its own. Called after the
// request's fields are applied; the team is the handler's (it also checks
// membership when the request names one).
func (c *call) inherit(k *keys.Key, soft *float64) {
	if b := c.expiryBound(); b != nil && (k.Expires == nil || k.Expires.After(*b)) {
		t := *b
		k.Expires = &t
	}
	ck := c.boundBy()
	if ck == nil {
		return
	}
	k.AllowedRoutes = slices.Clone(ck.AllowedRoutes)
	k.AllowedPassthroughRoutes = slices.Clone(ck.AllowedPassthroughRoutes)
	k.Models = slices.Clone(ck.Models)
	k.Limits = cloneLimits(ck.Limits)
	// The copy of the limits must not come with fresh counters: the new key
	// counts against the minting key's too (and its chain's), so minting
	// keys never multiplies a key's budget or rates.
	if ledger.LimitsOf(ck.Limits).Enforced() && len(ck.LimitedBy) < maxLimitChain {
		k.LimitedBy = append(slices.Clone(ck.LimitedBy), stableID(ck))
	} else {
		k.LimitedBy = slices.Clone(ck.LimitedBy)
	}
	if soft != nil {
		k.SoftBudget = soft // a soft budget only warns; the caller may set it
	}
	if ck.Expires != nil && (k.Expires == nil || k.Expires.After(*ck.Expires)) {
		t := *ck.Expires
		k.Expires = &t
	}
}

// maxLimitChain bounds LimitedBy: each entry is one more party (one more
// item in the admission's transaction).
const maxLimitChain = 8

func cloneLimits(l keys.Limits) keys.Limits {
	cp := func(p *float64) *float64 {
		if p == nil {
			return nil
		}
		v := *p
		return &v
	}
	ci := func(p *int64) *int64 {
		if p == nil {
			return nil
		}
		v := *p
		return &v
	}
	return keys.Limits{
		MaxBudget:           cp(l.MaxBudget),
		BudgetDuration:      l.BudgetDuration,
		SoftBudget:          cp(l.SoftBudget),
		TPMLimit:            ci(l.TPMLimit),
		RPMLimit:            ci(l.RPMLimit),
		MaxParallelRequests: ci(l.MaxParallelRequests),
	}
}

// expiryBound is the latest expiry the caller may give a key: the calling
// key's own expiry when the caller is bound by its key (scope own). Nil: no
// bound. (An old secret in its grace period writes nothing: authorize.)
func (c *call) expiryBound() *time.Time {
	if ck := c.boundBy(); ck != nil {
		return ck.Expires
	}
	return nil
}

// checkExpiry refuses an expiry (from duration) later than expiryBound: a
// key may not extend itself, nor another key of its user, past its own
// expiry.
func (c *call) checkExpiry(expires *time.Time) *apierr.Error {
	b := c.expiryBound()
	if b == nil || expires == nil || !expires.After(*b) {
		return nil
	}
	return apierr.Forbidden(c.callerClass() + " may not set duration past the calling key's own expiry (" +
		b.UTC().Format(time.RFC3339) + "); ask a proxy admin for a longer-lived key").WithParam("duration")
}

// canReissue decides whether a caller bound by its key may take a new
// secret for key k (/key/regenerate): only when k reaches no further than
// the calling key, that is, when the caller could have made k itself with
// /key/generate. Otherwise a restricted key could regenerate an
// unrestricted key of the same user and hold its secret. The calling key
// itself always qualifies.
func (h *handler) canReissue(c *call, k *keys.Key) *apierr.Error {
	ck := c.boundBy()
	if ck == nil || k.TokenID == ck.TokenID {
		return nil
	}
	wider := ""
	switch {
	case !within(k.AllowedRoutes, ck.AllowedRoutes):
		wider = "allowed_routes"
	case !within(k.AllowedPassthroughRoutes, ck.AllowedPassthroughRoutes):
		wider = "allowed_passthrough_routes"
	case !within(k.Models, ck.Models):
		wider = "models"
	case ck.Expires != nil && (k.Expires == nil || k.Expires.After(*ck.Expires)):
		wider = "expires"
	case !limitsWithin(k.Limits, ck.Limits):
		wider = "limits"
	case ck.TeamID != "" && k.TeamID == "":
		wider = "team_id"
	case ck.TeamID != "" && k.TeamID != ck.TeamID:
		in, e := h.memberOf(c, k.TeamID)
		if e != nil {
			return e
		}
		if !in {
			wider = "team_id"
		}
	}
	if wider == "" {
		return nil
	}
	return apierr.Forbidden(c.callerClass() + " may not regenerate key " + k.KeyName + ": it reaches further than the calling key (" +
		wider + "); only a proxy admin may").WithParam("key")
}

// within reports whether the restriction list got is at least as narrow as
// bound: bound empty means no restriction; otherwise got must be non-empty
// and each of its entries one of bound's.
func within(got, bound []string) bool {
	if len(bound) == 0 {
		return true
	}
	if len(got) == 0 {
		return false
	}
	for _, g := range got {
		if !slices.Contains(bound, g) {
			return false
		}
	}
	return true
}

// limitsWithin reports whether every limit bound sets is also set, no
// higher, in got (and the budget period is the same).
func limitsWithin(got, bound keys.Limits) bool {
	f := func(g, b *float64) bool { return b == nil || g != nil && *g <= *b }
	i := func(g, b *int64) bool { return b == nil || g != nil && *g <= *b }
	return f(got.MaxBudget, bound.MaxBudget) && i(got.TPMLimit, bound.TPMLimit) &&
		i(got.RPMLimit, bound.RPMLimit) && i(got.MaxParallelRequests, bound.MaxParallelRequests) &&
		(bound.BudgetDuration == "" || got.BudgetDuration == bound.BudgetDuration)
}

// adminOnlyFields are request fields that raise a limit, a role or an
// access right, or that identify a user to admins. Only a caller with scope all may set them; anyone else gets
// a 403 naming the field (they may not raise their own limits or roles).
var adminOnlyFields = map[string]bool{
	"max_budget":                 true,
	"budget_duration":            true,
	"tpm_limit":                  true,
	"rpm_limit":                  true,
	"max_parallel_requests":      true,
	"allowed_routes":             true,
	"allowed_passthrough_routes": true,
	"user_role":                  true,
	"models":                     true,
	"teams":                      true,
	"spend":                      true,
	"model_max_budget":           true,
	"model_rpm_limit":            true,
	"model_tpm_limit":            true,
	"temp_budget_increase":       true,
	"temp_budget_expiry":         true,
	"permissions":                true,
	// An email identifies a user to admins (/user/update by user_email):
	// a user may not take another's.
	"user_email": true,
}

// checkFields refuses admin-only fields from a scoped caller, and
// blocked=false (unblocking), in the order the fields sort.
func (c *call) checkFields(v *values) *apierr.Error {
	if c.scope == all {
		return nil
	}
	for _, name := range v.names() {
		if adminOnlyFields[name] {
			return apierr.Forbidden(c.callerClass() + " may not set " + name + ": only a proxy admin may set limits, budgets, models, routes, roles or emails").WithParam(name)
		}
		if name == "blocked" {
			if b, _ := v.boolean("blocked"); !b && c.op != opKeyGenerate {
				return apierr.Forbidden(c.callerClass() + " may not set blocked to false: only a proxy admin may unblock").WithParam("blocked")
			}
		}
	}
	return nil
}

// filterUser decides a listing's user_id filter: a scoped caller lists only
// its own records (no filter means itself; another user is a 403).
func (c *call) filterUser(userID string) (string, *apierr.Error) {
	if c.scope == all {
		return userID, nil
	}
	if userID == "" {
		return c.who.UserID(), nil
	}
	if e := c.canUser(userID, "user_id"); e != nil {
		return "", e
	}
	return userID, nil
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
