// Package admin is Keyway's admin API: users, teams and virtual keys,
// managed over HTTP with LiteLLM proxy's request and response shapes
// (/user/*, /key/*, /team/*), so existing LiteLLM scripts and clients keep
// working.
//
// The gateway has already classified the request as an admin route and
// authenticated it; this package decides, per operation, what the caller's
// principal may do (policy.go), validates the request (decode.go), applies
// it to the store, invalidates cached key lookups and writes one audit line
// per mutation (audit.go).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// MaxBodyBytes is the largest admin request body accepted; larger bodies
// get 413. Admin bodies are small JSON objects; the cap keeps a client from
// making the gateway buffer an unbounded body.
const MaxBodyBytes = 1 << 20

// Options configure the admin handler.
type Options struct {
	// Store keeps users, teams and keys. Required.
	Store keys.Store
	// Ledger keeps spend, usage records and per-day totals (/spend/*).
	// Nil answers those routes 503 and shows spend 0.
	Ledger ledger.Store
	// Invalidate drops cached key lookups after a change, so revocation is
	// immediate on this instance. No tokens = drop everything (user/team
	// changes). Nil means there is no cache.
	Invalidate func(tokens ...string)
	// Logger receives audit lines ("admin audit") and store errors. Nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock for expiries and timestamps. Nil means time.Now.
	Now func() time.Time
	// Config reads the config in force for GET /config/pass_through_endpoint
	// (config.go). Optional.
	Config ConfigInfo
	// MaxKeysPerUser caps how many keys a caller that is not an admin may
	// hold for its user (/key/generate answers 403 at the cap; admins are
	// not capped). 0 means DefaultMaxKeysPerUser; negative means no cap.
	// Meant to come from the keyway.max_keys_per_user setting.
	MaxKeysPerUser int
}

// DefaultMaxKeysPerUser is MaxKeysPerUser's default.
const DefaultMaxKeysPerUser = 100

// handler serves the admin API.
type handler struct {
	store      keys.Store
	ledger     ledger.Store
	invalidate func(tokens ...string)
	log        *slog.Logger
	now        func() time.Time
	maxKeys    int // per user, for callers that are not admins; < 0: none
	routes     map[string]route
	config     ConfigInfo
}

// route is one admin path: which methods it answers and what it does.
type route struct {
	method string // GET or POST
	op     op
	serve  func(h *handler, c *call) (any, *apierr.Error)
}

// call is one admin request being served.
type call struct {
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	who   *auth.Principal
	op    op
	scope scope
	// pathKey is the {key} of POST /key/{key}/regenerate.
	pathKey string
	// warnings are keyway_warnings for the fields the body set that
	// Keyway stores without enforcing (body fills them in).
	warnings []string
}

// New returns the admin API handler. Requests must carry an authenticated
// principal (auth.NewContext); an anonymous request is answered 401.
func New(o Options) http.Handler {
	h := &handler{store: o.Store, ledger: o.Ledger, invalidate: o.Invalidate, log: o.Logger, now: o.Now, config: o.Config, maxKeys: o.MaxKeysPerUser}
	if h.maxKeys == 0 {
		h.maxKeys = DefaultMaxKeysPerUser
	}
	if h.invalidate == nil {
		h.invalidate = func(...string) {}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.routes = map[string]route{
		"/user/new":    {http.MethodPost, opUserNew, (*handler).userNew},
		"/user/info":   {http.MethodGet, opUserInfo, (*handler).userInfo},
		"/user/update": {http.MethodPost, opUserUpdate, (*handler).userUpdate},
		"/user/delete": {http.MethodPost, opUserDelete, (*handler).userDelete},
		"/user/list":   {http.MethodGet, opUserList, (*handler).userList},

		"/key/generate":   {http.MethodPost, opKeyGenerate, (*handler).keyGenerate},
		"/key/info":       {http.MethodGet, opKeyInfo, (*handler).keyInfo},
		"/key/update":     {http.MethodPost, opKeyUpdate, (*handler).keyUpdate},
		"/key/delete":     {http.MethodPost, opKeyDelete, (*handler).keyDelete},
		"/key/list":       {http.MethodGet, opKeyList, (*handler).keyList},
		"/key/regenerate": {http.MethodPost, opKeyRegenerate, (*handler).keyRegenerate},
		"/key/block":      {http.MethodPost, opKeyBlock, (*handler).keyBlock},
		"/key/unblock":    {http.MethodPost, opKeyUnblock, (*handler).keyUnblock},

		"/team/new":    {http.MethodPost, opTeamNew, (*handler).teamNew},
		"/team/info":   {http.MethodGet, opTeamInfo, (*handler).teamInfo},
		"/team/update": {http.MethodPost, opTeamUpdate, (*handler).teamUpdate},
		"/team/delete": {http.MethodPost, opTeamDelete, (*handler).teamDelete},
		"/team/list":   {http.MethodGet, opTeamList, (*handler).teamList},

		"/spend/logs":          {http.MethodGet, opSpendLogs, (*handler).spendLogs},
		"/global/spend/report": {http.MethodGet, opSpendReport, (*handler).spendReport},
		"/spend/daily":         {http.MethodGet, opSpendDaily, (*handler).spendDaily},

		"/config/pass_through_endpoint": {http.MethodGet, opConfigEndpoints, (*handler).configEndpoints},
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	rt, ok := h.routes[path]
	c := &call{w: w, r: r, ctx: r.Context(), who: auth.FromContext(r.Context())}
	if !ok {
		// POST /key/{key}/regenerate: LiteLLM's path form of /key/regenerate.
		if seg := strings.Split(strings.TrimPrefix(path, "/"), "/"); len(seg) == 3 && seg[0] == "key" && seg[2] == "regenerate" && seg[1] != "" {
			rt, ok = h.routes["/key/regenerate"], true
			c.pathKey = seg[1]
		}
	}
	if !ok {
		h.fail(w, r, apierr.NotFound("no admin route "+strconv.Quote(redactPath(path))+"; see docs/admin-api.md for the routes"))
		return
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", rt.method)
		h.fail(w, r, apierr.New(http.StatusMethodNotAllowed, apierr.TypeMethod,
			"method "+r.Method+" not allowed on "+redactPath(path)+"; use "+rt.method))
		return
	}
	if c.who == nil || c.who.Kind == auth.Anonymous {
		// The gateway rejects anonymous admin calls before they get here;
		// fail closed if it ever does not.
		h.fail(w, r, apierr.Unauthorized("the admin API needs a key"))
		return
	}
	c.op = rt.op
	sc, e := authorize(c.who, rt.op)
	if e != nil {
		h.fail(w, r, e)
		return
	}
	c.scope = sc
	resp, e := rt.serve(h, c)
	if e != nil {
		h.fail(w, r, e)
		return
	}
	if len(c.warnings) > 0 {
		h.log.Warn("admin write set fields Keyway does not enforce", "op", rt.op.String(), "actor", c.who.Actor(),
			"request_id", reqlog.FromContext(c.ctx).RequestID, "fields", warningSummary(c.warnings))
	}
	writeJSON(w, http.StatusOK, withWarnings(resp, c.warnings))
}

// redactPath shows a request path in a message without a key in it:
// LiteLLM's /key/{key}/regenerate puts a secret in the path, and error
// messages reach the access log.
func redactPath(path string) string {
	seg := strings.Split(path, "/")
	for i, s := range seg {
		if strings.HasPrefix(s, keys.SecretPrefix) {
			seg[i] = keys.Abbrev(s)
		}
	}
	return strings.Join(seg, "/")
}

// fail writes e and notes its reason for the access log line.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, e *apierr.Error) {
	reqlog.FromContext(r.Context()).Error = e.Message
	apierr.Write(w, e)
}

// writeJSON sends v as a JSON response. Admin responses can carry a new
// secret, so they are never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		apierr.Write(w, apierr.New(http.StatusInternalServerError, apierr.TypeInternal, "encoding the response failed"))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(body)+1))
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// errConflict is the answer to a write that kept losing races with other
// writes to the same record (keys.ErrConflict on every attempt): nothing
// was written, and the client may retry. It is one value, so retrying can
// tell it apart from every other answer.
var errConflict = apierr.New(http.StatusConflict, "conflict",
	"the record was changed by another request while this one was applied; nothing was written, retry")

// maxWriteAttempts bounds how often a read-modify-write is tried before
// answering errConflict.
const maxWriteAttempts = 8

// retrying runs attempt, a read-check-change-write from a fresh read,
// until it does not lose a race (errConflict), at most maxWriteAttempts
// times with a short random back-off so two writers cannot stay in
// lock-step. Each attempt re-reads the record and re-applies only the
// request's fields, so a concurrent change it did not make (a block, a
// demotion) is never written back over.
func (h *handler) retrying(c *call, attempt func() *apierr.Error) *apierr.Error {
	for i := range maxWriteAttempts {
		if i > 0 {
			d := time.Duration(rand.Int64N(int64(2*time.Millisecond) << min(i, 4)))
			select {
			case <-c.ctx.Done():
				return h.storeErr(c, c.ctx.Err(), "", "")
			case <-time.After(d):
			}
		}
		if e := attempt(); e != errConflict {
			return e
		}
	}
	return errConflict
}

// modifyRecord runs change on the latest stored user or team id in one
// store step (write: keys.Store.ModifyUser or ModifyTeam), retrying lost
// races: only the request's fields change, so a concurrent change (a
// block, a demotion) is never undone. A store error is answered naming
// what and param.
func modifyRecord[T any](h *handler, c *call, write func(context.Context, string, func(*T) error) (*T, error), id, what, param string, change func(*T) *apierr.Error) (*T, *apierr.Error) {
	var rec *T
	e := h.retrying(c, func() *apierr.Error {
		var err error
		rec, err = write(c.ctx, id, func(r *T) error {
			if e := change(r); e != nil {
				return fnErr{e}
			}
			return nil
		})
		if e := asAPI(err); e != nil {
			return e
		}
		if err != nil {
			return h.storeErr(c, err, what, param)
		}
		return nil
	})
	return rec, e
}

// storeErr maps a store error to the response: ErrNotFound is a 404 naming
// what, ErrExists a 400 naming the field, ErrConflict errConflict (409),
// anything else a 503 (fail closed), logged without secrets (stores only
// ever see hashes).
func (h *handler) storeErr(c *call, err error, what, param string) *apierr.Error {
	switch {
	case errors.Is(err, keys.ErrConflict):
		return errConflict
	case errors.Is(err, keys.ErrTooManyGraceSecrets):
		return apierr.BadRequest("grace_period", fmt.Sprintf("this key already has %d old secrets in a grace period (the limit); regenerate without grace_period, or wait for one to end", keys.MaxGraceSecrets))
	case errors.Is(err, keys.ErrNotFound):
		return apierr.NotFound(what + " not found").WithParam(param)
	case errors.Is(err, keys.ErrExists):
		return apierr.BadRequest(param, what+" already exists; "+param+" must be unique")
	case errors.Is(err, context.Canceled):
		return apierr.New(apierr.StatusClientClosed, apierr.TypeBadRequest, "client closed the request")
	}
	reqlog.FromContext(c.ctx).StoreOp = c.op.String()
	h.log.Error("admin store error", "op", c.op.String(), "actor", c.who.Actor(),
		"request_id", reqlog.FromContext(c.ctx).RequestID, "err", err.Error())
	return apierr.Unavailable("the key store is unavailable; retry later")
}
