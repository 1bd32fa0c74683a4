package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// /key/* routes.

// keyToken turns a key reference, a secret ("sk-…") or a token (its
// SHA-256 hex, as listings show), into a token.
func keyToken(ref, param string) (string, *apierr.Error) {
	switch {
	case ref == "":
		return "", apierr.BadRequest(param, param+" must not be empty")
	case strings.HasPrefix(ref, keys.SecretPrefix):
		return keys.Hash(ref), nil
	case keys.IsHash(ref):
		return ref, nil
	}
	return "", apierr.BadRequest(param, param+` must be a key ("sk-…") or its token (64 lowercase hex digits)`)
}

// resolveKey finds the current key a reference names. An old secret still
// in its regenerate grace period names the key it was rotated to.
func (h *handler) resolveKey(c *call, ref, param string) (*keys.Key, *apierr.Error) {
	tok, e := keyToken(ref, param)
	if e != nil {
		return nil, e
	}
	return h.keyByToken(c, tok, param)
}

func (h *handler) keyByToken(c *call, tok, param string) (*keys.Key, *apierr.Error) {
	k, err := h.store.GetKey(c.ctx, tok)
	if err != nil {
		return nil, h.storeErr(c, err, "key", param)
	}
	// A rotation record names the key it was rotated to; follow a few hops
	// in case a store keeps chains.
	for hops := 0; k.RotatedTo != ""; hops++ {
		if k.Expired(h.now()) || hops == 4 {
			// Regenerated and its grace period over: as missing.
			return nil, keyNotFound(param)
		}
		if k, err = h.store.GetKey(c.ctx, k.RotatedTo); err != nil {
			return nil, h.storeErr(c, err, "key", param)
		}
	}
	return k, nil
}

func (h *handler) keyByAlias(c *call, alias, param string) (*keys.Key, *apierr.Error) {
	k, err := h.store.GetKeyByAlias(c.ctx, alias)
	if isNotFound(err) {
		return nil, keyNotFound(param) // as canKey answers for another's key
	}
	if err != nil {
		return nil, h.storeErr(c, err, "key with key_alias "+quote(alias), param)
	}
	return k, nil
}

// aliasFree checks that alias is not used by a key other than tokenID's.
func (h *handler) aliasFree(c *call, alias, tokenID string) *apierr.Error {
	if alias == "" {
		return nil
	}
	k, err := h.store.GetKeyByAlias(c.ctx, alias)
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return h.storeErr(c, err, "key", "key_alias")
	case k.TokenID != tokenID:
		return aliasTaken(alias)
	}
	return nil
}

func aliasTaken(alias string) *apierr.Error {
	return apierr.BadRequest("key_alias", "key_alias "+quote(alias)+" is already used by another key; key_alias must be unique")
}

func isNotFound(err error) bool { return errors.Is(err, keys.ErrNotFound) }

// userExists checks that a user a request refers to exists (400 naming
// param when not: Keyway never creates users implicitly).
func (h *handler) userExists(c *call, userID, param string) *apierr.Error {
	_, err := h.store.GetUser(c.ctx, userID)
	switch {
	case isNotFound(err):
		return apierr.BadRequest(param, param+" "+quote(userID)+" does not exist; create it with /user/new first")
	case err != nil:
		return h.storeErr(c, err, "user", param)
	}
	return nil
}

// teamExists checks that a team a request refers to exists.
func (h *handler) teamExists(c *call, teamID, param string) *apierr.Error {
	_, err := h.store.GetTeam(c.ctx, teamID)
	switch {
	case isNotFound(err):
		return apierr.BadRequest(param, param+" "+quote(teamID)+" does not exist; create it with /team/new first")
	case err != nil:
		return h.storeErr(c, err, "team", param)
	}
	return nil
}

// ownerErr answers a key write the store refused because the key's user or
// team has no record. The store checks the owner inside the write (so a
// user deleted concurrently is caught too); the handlers do not read it
// first. nil when err is something else.
func ownerErr(err error) *apierr.Error {
	var owner *keys.OwnerNotFoundError
	if !errors.As(err, &owner) {
		return nil
	}
	create := "/user/new"
	if owner.Field == "team_id" {
		create = "/team/new"
	}
	return apierr.BadRequest(owner.Field, owner.Field+" "+quote(owner.ID)+" does not exist; create it with "+create+" first")
}

// keyWriteErr maps the error of CreateKey, UpdateKey or RotateKey: a
// missing owner is a 400 naming user_id or team_id, anything else the store
// error (a missing key is a 404).
func (h *handler) keyWriteErr(c *call, err error) *apierr.Error {
	if e := ownerErr(err); e != nil {
		return e
	}
	return h.storeErr(c, err, "key", "key")
}

// actorID is what created_by / updated_by record: the caller's user id, or
// its Actor name ("master key", "key sk-...abcd"). A user id that reads
// like an Actor name (only possible for records from before ids were
// validated) is recorded as "user <id>", so "master key" always means the
// master key.
func (c *call) actorID() string {
	if uid := c.who.UserID(); uid != "" {
		if reservedID(uid) {
			return "user " + uid
		}
		return uid
	}
	return c.who.Actor()
}

// applyLimits sets the present limit fields.
func applyLimits(l *keys.Limits, v *values) {
	if f, ok := v.number("max_budget"); ok {
		l.MaxBudget = f
	}
	if f, ok := v.number("soft_budget"); ok {
		l.SoftBudget = f
	}
	if s, ok := v.str("budget_duration"); ok {
		l.BudgetDuration = s
	}
	if n, ok := v.integer("tpm_limit"); ok {
		l.TPMLimit = n
	}
	if n, ok := v.integer("rpm_limit"); ok {
		l.RPMLimit = n
	}
	if n, ok := v.integer("max_parallel_requests"); ok {
		l.MaxParallelRequests = n
	}
}

// applyKey sets the present key fields on k (not user_id, team_id or the
// secret, which the handlers decide).
func applyKey(k *keys.Key, v *values, now time.Time) {
	if s, ok := v.str("key_alias"); ok {
		k.KeyAlias = s
	}
	if s, ok := v.str("duration"); ok {
		d, _ := parseDuration(s)
		t := d.after(now)
		k.Expires = &t
	}
	if ss, ok := v.strs("models"); ok {
		k.Models = ss
	}
	applyLimits(&k.Limits, v)
	if ss, ok := v.strs("allowed_routes"); ok {
		k.AllowedRoutes = ss
	}
	if ss, ok := v.strs("allowed_passthrough_routes"); ok {
		k.AllowedPassthroughRoutes = ss
	}
	if s, ok := v.str("key_type"); ok {
		k.KeyType = s
	}
	if b, ok := v.boolean("blocked"); ok {
		k.Blocked = b
	}
	md, replace := v.object("metadata")
	k.Metadata = withExtras(k.Metadata, md, replace, v.extras())
}

// changeKey applies an update or regenerate request to k after the policy
// checks: checkKeyChange (which reads the store) then applyKeyChange.
func (h *handler) changeKey(c *call, k *keys.Key, v *values) *apierr.Error {
	if e := h.checkKeyChange(c, k, v); e != nil {
		return e
	}
	return h.applyKeyChange(c, k, v, h.utcNow())
}

// checkKeyChange is the part of the policy checks of an update or
// regenerate that reads the store (team membership, alias use), made
// against the key as found (pre).
func (h *handler) checkKeyChange(c *call, pre *keys.Key, v *values) *apierr.Error {
	if e := c.checkFields(v); e != nil {
		return e
	}
	if uid, ok := v.str("user_id"); ok && uid != pre.UserID {
		if _, e := c.keyOwner(uid, true); e != nil {
			return e
		}
	}
	if tid, ok := v.str("team_id"); ok && tid != pre.TeamID {
		if e := h.canTeam(c, tid, "team_id"); e != nil {
			return e
		}
	}
	if alias, ok := v.str("key_alias"); ok {
		if e := h.aliasFree(c, alias, pre.TokenID); e != nil {
			return e
		}
	}
	if s, ok := v.str("duration"); ok {
		d, _ := parseDuration(s)
		if e := c.checkExpiry(new(d.after(h.utcNow()))); e != nil {
			return e
		}
	}
	return nil
}

// applyKeyChange sets the request's fields on k, and only those. It reads
// nothing from the store, so it can run inside keys.Store.ModifyKey on the
// latest record; the store refuses a user or team that does not exist.
func (h *handler) applyKeyChange(c *call, k *keys.Key, v *values, now time.Time) *apierr.Error {
	if uid, ok := v.str("user_id"); ok && uid != k.UserID {
		owner, e := c.keyOwner(uid, true)
		if e != nil {
			return e
		}
		k.UserID = owner
	}
	if tid, ok := v.str("team_id"); ok {
		k.TeamID = tid
	}
	applyKey(k, v, now)
	k.UpdatedAt = now
	k.UpdatedBy = c.actorID()
	return checkRecordSize(k)
}

// errAliasTaken is modifyKey's answer when the key_alias the change gives
// the key is held by another key; the handler names the alias.
var errAliasTaken = apierr.BadRequest("key_alias", "key_alias is already used by another key; key_alias must be unique")

// fnErr carries a handler's answer out of a keys.Store Modify* function.
type fnErr struct{ e *apierr.Error }

func (f fnErr) Error() string { return f.e.Message }

// asAPI returns the answer a Modify* function gave, or nil.
func asAPI(err error) *apierr.Error {
	var f fnErr
	if errors.As(err, &f) {
		return f.e
	}
	return nil
}

// modifyKey runs change on the latest record of the current key under
// token, in one store step (keys.Store.ModifyKey): a concurrent write to
// the key (a block, a restriction) is never undone, and a loop of other
// writes cannot starve this one. change must not read the store. canKey is
// checked again on the latest record (its owner may have changed).
func (h *handler) modifyKey(c *call, token, param string, change func(k *keys.Key) *apierr.Error) (*keys.Key, *apierr.Error) {
	var k *keys.Key
	e := h.retrying(c, func() *apierr.Error {
		var err error
		k, err = h.store.ModifyKey(c.ctx, token, func(k *keys.Key) error {
			if e := c.canKey(k, param); e != nil {
				return fnErr{e}
			}
			if e := change(k); e != nil {
				return fnErr{e}
			}
			return nil
		})
		if e := asAPI(err); e != nil {
			return e
		}
		if errors.Is(err, keys.ErrExists) {
			return errAliasTaken
		}
		if err != nil {
			return h.keyWriteErr(c, err)
		}
		return nil
	})
	return k, e
}

// underKeyCap refuses a new key for userID when a caller that is not an
// admin already holds MaxKeysPerUser keys for it, so that no internal user
// can grow its records without limit. Admins are not capped. Concurrent
// creates may overshoot by the number in flight; the cap bounds growth, it
// is not an exact quota.
func (h *handler) underKeyCap(c *call, userID string) *apierr.Error {
	if c.scope == all || h.maxKeys < 0 || userID == "" {
		return nil
	}
	ks, err := h.store.ListKeys(c.ctx, keys.KeyFilter{UserID: userID})
	if err != nil {
		return h.storeErr(c, err, "keys", "user_id")
	}
	if len(ks) >= h.maxKeys {
		return apierr.Forbidden(fmt.Sprintf("user %s already has %d keys, the most keyway.max_keys_per_user allows; delete one first or ask a proxy admin", quote(userID), len(ks))).WithParam("user_id")
	}
	return nil
}

// stableID is the id DeleteKeyByID takes: the key's TokenID, or its token
// for a record written without one.
func stableID(k *keys.Key) string {
	if k.TokenID != "" {
		return k.TokenID
	}
	return k.Token
}

// invalidateKey drops cached lookups of k. A key that was ever regenerated
// may have rotation records (old secrets in a grace period) whose cached
// lookups hold a copy of k, and the store cannot list them cheaply: drop
// everything then.
func (h *handler) invalidateKey(k *keys.Key) {
	h.invalidate(k.Token)
	if k.TokenID != "" && k.TokenID != k.Token {
		h.invalidate()
	}
}

// created is the response for a new secret: the key record plus key, the
// plaintext, returned this once.
func created(k *keys.Key, secret string, v *values) map[string]any {
	m := renderKey(k)
	m["key"] = secret
	if d, ok := v.str("duration"); ok {
		m["duration"] = d
	} else {
		m["duration"] = nil
	}
	return m
}

// newSecret is a caller's custom value (already validated) or a fresh one.
func (h *handler) newSecret(c *call, v *values, field string) (string, *apierr.Error) {
	if s, ok := v.str(field); ok {
		return s, nil
	}
	s, err := keys.NewSecret()
	if err != nil {
		h.log.Error("admin: no randomness for a new key", "op", c.op.String(), "err", err.Error())
		return "", apierr.Unavailable("could not generate a key; retry later")
	}
	return s, nil
}

// POST /key/generate
func (h *handler) keyGenerate(c *call) (any, *apierr.Error) {
	v, e := c.body(keyGenerateSchema)
	if e != nil {
		return nil, e
	}
	if e := c.checkFields(v); e != nil {
		return nil, e
	}
	uid, present := v.str("user_id")
	owner, e := c.keyOwner(uid, present)
	if e != nil {
		return nil, e
	}
	// The store refuses an owner (user or team) that does not exist, inside
	// the write; see ownerErr.
	tid, hasTeam := v.str("team_id")
	if hasTeam {
		if e := h.canTeam(c, tid, "team_id"); e != nil {
			return nil, e
		}
	} else if ck := c.boundBy(); ck != nil {
		// The calling key's team binds the keys it makes (its
		// restrictions apply to them); the store checks that it exists.
		tid = ck.TeamID
	}
	alias, _ := v.str("key_alias")
	if e := h.aliasFree(c, alias, ""); e != nil {
		return nil, e
	}
	secret, e := h.newSecret(c, v, "key")
	if e != nil {
		return nil, e
	}
	k, e := h.createKey(c, secret, owner, tid, v)
	if e != nil {
		return nil, e
	}
	return created(k, secret, v), nil
}

// createKey stores a new key for secret and audits it.
func (h *handler) createKey(c *call, secret, owner, teamID string, v *values) (*keys.Key, *apierr.Error) {
	now := h.utcNow()
	k := &keys.Key{
		Token:     keys.Hash(secret),
		KeyName:   keys.Abbrev(secret),
		UserID:    owner,
		TeamID:    teamID,
		CreatedBy: c.actorID(),
		UpdatedBy: c.actorID(),
		CreatedAt: now,
		UpdatedAt: now,
	}
	k.TokenID = k.Token
	applyKey(k, v, now)
	soft, _ := v.number("soft_budget")
	c.inherit(k, soft)
	if e := checkRecordSize(k); e != nil {
		return nil, e
	}
	if e := h.underKeyCap(c, owner); e != nil {
		return nil, e
	}
	if err := h.store.CreateKey(c.ctx, k); err != nil {
		if errors.Is(err, keys.ErrExists) {
			if _, custom := v.str("key"); custom {
				if _, gerr := h.store.GetKey(c.ctx, k.Token); gerr == nil {
					return nil, apierr.BadRequest("key", "key: this key value is already in use; choose another")
				}
			}
			return nil, aliasTaken(k.KeyAlias)
		}
		return nil, h.keyWriteErr(c, err)
	}
	// A custom value may have been tried before and cached as unknown.
	h.invalidate(k.Token)
	h.audit(c, "key.generate", keyAttrs(k)...)
	return k, nil
}

// GET /key/info[?key=sk-…|token]: no key means the calling key itself.
func (h *handler) keyInfo(c *call) (any, *apierr.Error) {
	v, e := c.query(keyInfoQuery)
	if e != nil {
		return nil, e
	}
	var k *keys.Key
	if ref, ok := v.str("key"); ok {
		k, e = h.resolveKey(c, ref, "key")
	} else if c.who.Key != nil {
		k, e = h.keyByToken(c, c.who.Key.Token, "key")
	} else {
		e = apierr.BadRequest("key", "key is required: the master key is not a virtual key")
	}
	if e != nil {
		return nil, e
	}
	if e := c.canKey(k, "key"); e != nil {
		return nil, e
	}
	// LiteLLM echoes the key it was given; Keyway returns the token, so a
	// secret is never sent back.
	info := renderKey(k)
	if e := h.fillSpend(c, keyTarget(info, k)); e != nil {
		return nil, e
	}
	return map[string]any{"key": k.Token, "info": info}, nil
}

// POST /key/update: the key is named by key (secret or token) or, without
// key, by key_alias.
func (h *handler) keyUpdate(c *call) (any, *apierr.Error) {
	v, e := c.body(keyUpdateSchema)
	if e != nil {
		return nil, e
	}
	var k *keys.Key
	ref, byKey := v.str("key")
	alias, _ := v.str("key_alias")
	if !byKey && alias == "" {
		return nil, apierr.BadRequest("key", "key (the key or its token) or key_alias is required")
	}
	param := "key"
	if byKey {
		k, e = h.resolveKey(c, ref, param)
	} else {
		param = "key_alias"
		k, e = h.keyByAlias(c, alias, param)
	}
	if e != nil {
		return nil, e
	}
	if e := c.canKey(k, param); e != nil {
		return nil, e
	}
	if e := h.checkKeyChange(c, k, v); e != nil {
		return nil, e
	}
	newAlias, _ := v.str("key_alias")
	now := h.utcNow()
	k, e = h.modifyKey(c, k.Token, "key", func(k *keys.Key) *apierr.Error {
		return h.applyKeyChange(c, k, v, now)
	})
	if e == errAliasTaken {
		return nil, aliasTaken(newAlias)
	}
	if e != nil {
		return nil, e
	}
	h.invalidateKey(k)
	h.audit(c, "key.update", append(keyAttrs(k), slog.Any("fields", without(v.names(), "key")))...)
	if v.has("user_id") || v.has("team_id") {
		// Moved to a blocked user or team: its grace ends as if the key
		// had been theirs when they were blocked.
		blocked, e := h.ownerBlocked(c, k)
		if e == nil && blocked {
			e = h.endGraceOf(c, k.Token)
		}
		if e != nil {
			return nil, e
		}
	}
	m := renderKey(k)
	m["key"] = k.Token
	if e := h.fillSpend(c, keyTarget(m, k)); e != nil {
		return nil, e
	}
	return m, nil
}

func without(names []string, drop string) []string {
	out := names[:0:0]
	for _, n := range names {
		if n != drop {
			out = append(out, n)
		}
	}
	return out
}

// POST /key/delete {keys: [...]} | {key_aliases: [...]}: every key is
// found and checked before any is deleted.
func (h *handler) keyDelete(c *call) (any, *apierr.Error) {
	v, e := c.body(keyDeleteSchema)
	if e != nil {
		return nil, e
	}
	refs, _ := v.strs("keys")
	aliases, _ := v.strs("key_aliases")
	if len(refs)+len(aliases) == 0 {
		return nil, apierr.BadRequest("keys", "keys (a list of keys or tokens) or key_aliases is required")
	}
	var targets []*keys.Key
	seen := map[string]bool{}
	deleted := []string{}
	add := func(k *keys.Key, param string) *apierr.Error {
		if e := c.canKey(k, param); e != nil {
			return e
		}
		if !seen[stableID(k)] {
			seen[stableID(k)] = true
			targets = append(targets, k)
		}
		return nil
	}
	for i, ref := range refs {
		param := fmt.Sprintf("keys[%d]", i)
		k, e := h.resolveKey(c, ref, param)
		if e != nil {
			return nil, e
		}
		if e := add(k, param); e != nil {
			return nil, e
		}
		deleted = append(deleted, k.Token)
	}
	for i, alias := range aliases {
		param := fmt.Sprintf("key_aliases[%d]", i)
		k, e := h.keyByAlias(c, alias, param)
		if e != nil {
			return nil, e
		}
		if e := add(k, param); e != nil {
			return nil, e
		}
		deleted = append(deleted, alias)
	}
	for _, k := range targets {
		// By the stable id: a regenerate since the key was found moved it
		// to a new token, and every secret of it must go. Gone already (a
		// concurrent delete) is what was asked.
		gone, err := h.store.DeleteKeyByID(c.ctx, stableID(k))
		if err != nil && !isNotFound(err) {
			return nil, h.storeErr(c, err, "key", "keys")
		}
		h.invalidate(gone...)
		h.invalidateKey(k)
		h.audit(c, "key.delete", keyAttrs(k)...)
	}
	return map[string]any{"deleted_keys": deleted}, nil
}

// endGrace ends the regenerate grace periods of every key matching f, as
// blocking a user (f.UserID) or a team (f.TeamID) must: otherwise a leaked
// old secret would work again the moment the user or team is unblocked.
// (Blocking a key does the same in the key's own write.) It runs after the
// block is written, so the old secrets are refused in between too. A key
// regenerated since the listing is followed to its current token, so the
// secret that regenerate just put in grace is ended as well; a regenerate
// that writes after the block ends its own grace (keyRegenerate).
func (h *handler) endGrace(c *call, f keys.KeyFilter) *apierr.Error {
	ks, err := h.store.ListKeys(c.ctx, f)
	if err != nil {
		return h.storeErr(c, err, "keys", "")
	}
	for _, k := range ks {
		if e := h.endGraceOf(c, k.Token); e != nil {
			return e
		}
	}
	return nil
}

// endGraceOf ends the grace of the key under tok, following it to its
// current token when it was regenerated since tok was read.
func (h *handler) endGraceOf(c *call, tok string) *apierr.Error {
	for range 8 {
		ended, err := h.store.EndGrace(c.ctx, tok)
		if err == nil {
			h.invalidate(ended...)
			return nil
		}
		if !isNotFound(err) {
			return h.storeErr(c, err, "key", "")
		}
		// Regenerated since (tok is now a rotation record), or deleted.
		r, err := h.store.GetKey(c.ctx, tok)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return h.storeErr(c, err, "key", "")
		}
		if r.RotatedTo == "" {
			return nil
		}
		tok = r.RotatedTo
	}
	// Regenerated again at every step: each of those regenerates wrote
	// after the block and ended its own grace (keyRegenerate).
	return nil
}

// ownerBlocked reports whether the user or the team of k is blocked (a
// missing user or team is not).
func (h *handler) ownerBlocked(c *call, k *keys.Key) (bool, *apierr.Error) {
	if k.UserID != "" {
		u, err := h.store.GetUser(c.ctx, k.UserID)
		if err != nil && !isNotFound(err) {
			return false, h.storeErr(c, err, "user", "")
		}
		if err == nil && u.Blocked {
			return true, nil
		}
	}
	if k.TeamID != "" {
		t, err := h.store.GetTeam(c.ctx, k.TeamID)
		if err != nil && !isNotFound(err) {
			return false, h.storeErr(c, err, "team", "")
		}
		if err == nil && t.Blocked {
			return true, nil
		}
	}
	return false, nil
}

// GET /key/list: one page of keys, read from the store a page at a time
// (keys.Store.ListKeyPage), so a listing costs the same with 100 keys or
// 100,000. key_hash and key_alias name at most one key, which is looked up
// directly; organization_id, kept in key metadata, is the one filter that
// reads every key in the caller's scope.
func (h *handler) keyList(c *call) (any, *apierr.Error) {
	v, e := c.query(keyListQuery)
	if e != nil {
		return nil, e
	}
	page, size, e := pageParams(v, "size", 10)
	if e != nil {
		return nil, e
	}
	uid, _ := v.str("user_id")
	if uid, e = c.filterUser(uid); e != nil {
		return nil, e
	}
	tid, _ := v.str("team_id")
	alias, byAlias := v.str("key_alias")
	hash, byHash := v.str("key_hash")
	if byHash && strings.HasPrefix(hash, keys.SecretPrefix) {
		hash = keys.Hash(hash)
	}
	org, byOrg := v.str("organization_id")
	matches := func(k *keys.Key) bool {
		return k.RotatedTo == "" && c.canKey(k, "") == nil &&
			(uid == "" || k.UserID == uid) && (tid == "" || k.TeamID == tid) &&
			(!byAlias || k.KeyAlias == alias) && (!byHash || k.Token == hash) &&
			(!byOrg || extraString(k.Metadata, "organization_id") == org)
	}
	var (
		shown []*keys.Key
		total int
	)
	switch {
	case c.scope != all && uid == "":
		// A scoped caller without a user id owns no listing.
	case byHash || byAlias || byOrg:
		var found []*keys.Key
		var err error
		switch {
		case byHash:
			var k *keys.Key
			if keys.IsHash(hash) {
				k, err = h.store.GetKey(c.ctx, hash)
			}
			found = append(found, k)
		case byAlias:
			var k *keys.Key
			k, err = h.store.GetKeyByAlias(c.ctx, alias)
			found = append(found, k)
		default:
			found, err = h.store.ListKeys(c.ctx, keys.KeyFilter{UserID: uid, TeamID: tid})
		}
		if err != nil && !isNotFound(err) {
			return nil, h.storeErr(c, err, "keys", "")
		}
		var kept []*keys.Key
		for _, k := range found {
			if k != nil && matches(k) {
				kept = append(kept, k)
			}
		}
		lo, hi, _ := pages(len(kept), page, size)
		shown, total = kept[lo:hi], len(kept)
	default:
		ks, n, err := h.store.ListKeyPage(c.ctx, keys.KeyFilter{UserID: uid, TeamID: tid}, (page-1)*size, size)
		if err != nil {
			return nil, h.storeErr(c, err, "keys", "")
		}
		total = n
		for _, k := range ks {
			if matches(k) { // what the filter selected; the policy has the last word
				shown = append(shown, k)
			}
		}
	}
	count := (total + size - 1) / size
	var list any
	if full, _ := v.boolean("return_full_object"); full {
		rendered := renderKeys(shown)
		targets := make([]spendTarget, len(rendered))
		for i, k := range shown {
			targets[i] = keyTarget(rendered[i], k)
		}
		if e := h.fillSpend(c, targets...); e != nil {
			return nil, e
		}
		list = rendered
	} else {
		tokens := make([]string, 0, len(shown))
		for _, k := range shown {
			tokens = append(tokens, k.Token)
		}
		list = tokens
	}
	return map[string]any{"keys": list, "total_count": total, "current_page": page, "total_pages": count}, nil
}

// extraString reads a stored extra field.
func extraString(md map[string]any, name string) string {
	ex, _ := md[extrasKey].(map[string]any)
	s, _ := ex[name].(string)
	return s
}

// pageParams reads page (≥ 1, default 1) and a page size (1..100).
func pageParams(v *values, sizeName string, def int) (page, size int, e *apierr.Error) {
	page, size = 1, def
	if n, ok := v.integer("page"); ok {
		if *n < 1 || *n > 1<<31 {
			return 0, 0, apierr.BadRequest("page", "page must be at least 1")
		}
		page = int(*n)
	}
	if n, ok := v.integer(sizeName); ok {
		if *n < 1 || *n > 100 {
			return 0, 0, apierr.BadRequest(sizeName, sizeName+" must be between 1 and 100")
		}
		size = int(*n)
	}
	return page, size, nil
}

// POST /key/regenerate {key, new_key?, grace_period?, …} and
// POST /key/{key}/regenerate: a new secret for the same key (same
// token_id); with grace_period the old secret keeps working that long.
func (h *handler) keyRegenerate(c *call) (any, *apierr.Error) {
	v, e := c.body(keyRegenerateSchema)
	if e != nil {
		return nil, e
	}
	ref := c.pathKey
	if ref == "" {
		ref, _ = v.str("key")
	}
	if ref == "" {
		return nil, apierr.BadRequest("key", "key (the key or its token) is required")
	}
	secret, e := h.newSecret(c, v, "new_key")
	if e != nil {
		return nil, e
	}
	var old, next keys.Key
	var graceUntil *time.Time
	e = h.retrying(c, func() *apierr.Error {
		k, e := h.resolveKey(c, ref, "key")
		if e != nil {
			return e
		}
		if e := c.canKey(k, "key"); e != nil {
			return e
		}
		if e := h.canReissue(c, k); e != nil {
			return e
		}
		old, next = *k, *k
		if e := h.changeKey(c, &next, v); e != nil {
			return e
		}
		next.Token = keys.Hash(secret)
		next.KeyName = keys.Abbrev(secret)
		next.RotatedTo = ""
		if next.Token == old.Token {
			return apierr.BadRequest("new_key", "new_key must differ from the current key")
		}
		graceUntil = nil
		if g, ok := v.str("grace_period"); ok && !next.Blocked {
			// A blocked key has no old secrets (blocking ended them); a
			// regenerate must not bring one back. Nor may the key of a
			// blocked user or team (blocking them ended its grace).
			if d, _ := parseDuration(g); !d.zero() {
				blocked, e := h.ownerBlocked(c, &next)
				if e != nil {
					return e
				}
				if !blocked {
					t := d.after(h.utcNow())
					graceUntil = &t
				}
			}
		}
		if err := h.store.RotateKey(c.ctx, old.Token, &next, graceUntil); err != nil {
			if errors.Is(err, keys.ErrExists) {
				if v.has("new_key") {
					return apierr.BadRequest("new_key", "new_key: this key value is already in use; choose another")
				}
				return aliasTaken(next.KeyAlias)
			}
			return h.keyWriteErr(c, err)
		}
		return nil
	})
	if e != nil {
		return nil, e
	}
	// The old token's cached lookup must go now (or when the grace period
	// ends, which the cache's own expiry check handles); the new one may
	// have been cached as unknown.
	h.invalidate(old.Token, next.Token)
	if old.TokenID != old.Token {
		h.invalidate() // older rotation records may hold cached copies
	}
	attrs := append(keyAttrs(&next), slog.String("previous", old.KeyName), slog.String("previous_token_prefix", tokenPrefix(old.Token)))
	if graceUntil != nil {
		attrs = append(attrs, slog.Time("grace_until", *graceUntil))
	}
	h.audit(c, "key.regenerate", attrs...)
	if graceUntil != nil {
		// The user or team may have been blocked since the check above,
		// and its endGrace may have run before this rotation was written:
		// the block must end this grace too. (Read after the write: a
		// block written before it is seen here, one written after it
		// lists the key and ends its grace itself.)
		blocked, e := h.ownerBlocked(c, &next)
		if e == nil && blocked {
			e = h.endGraceOf(c, next.Token)
		}
		if e != nil {
			// The key is rotated: the caller must still get its new
			// secret. The old one is refused while the owner is blocked;
			// say loudly that its grace could not be ended.
			h.log.Error("admin: a key regenerated while its user or team was being blocked keeps its old secret's grace",
				"op", c.op.String(), "actor", c.who.Actor(), "token_prefix", tokenPrefix(next.Token),
				"request_id", reqlog.FromContext(c.ctx).RequestID, "err", e.Error())
		}
	}
	resp := created(&next, secret, v)
	if e := h.fillSpend(c, keyTarget(resp, &next)); e != nil { // spend follows the key
		return nil, e
	}
	return resp, nil
}

// POST /key/block {key}
func (h *handler) keyBlock(c *call) (any, *apierr.Error) { return h.setBlocked(c, true) }

// POST /key/unblock {key}
func (h *handler) keyUnblock(c *call) (any, *apierr.Error) { return h.setBlocked(c, false) }

func (h *handler) setBlocked(c *call, blocked bool) (any, *apierr.Error) {
	v, e := c.body(keyBlockSchema)
	if e != nil {
		return nil, e
	}
	ref, _ := v.str("key")
	if ref == "" {
		return nil, apierr.BadRequest("key", "key (the key or its token) is required")
	}
	k, e := h.resolveKey(c, ref, "key")
	if e != nil {
		return nil, e
	}
	if e := c.canKey(k, "key"); e != nil {
		return nil, e
	}
	now := h.utcNow()
	k, e = h.modifyKey(c, k.Token, "key", func(k *keys.Key) *apierr.Error {
		k.Blocked = blocked
		k.UpdatedAt = now
		k.UpdatedBy = c.actorID()
		return nil
	})
	if e != nil {
		return nil, e
	}
	// Blocking removed the key's old secrets (keys.Store.UpdateKey); their
	// cached lookups go with everything else a regenerated key may have.
	h.invalidateKey(k)
	action := "key.unblock"
	if blocked {
		action = "key.block"
	}
	h.audit(c, action, keyAttrs(k)...)
	m := renderKey(k)
	if e := h.fillSpend(c, keyTarget(m, k)); e != nil {
		return nil, e
	}
	return m, nil
}
