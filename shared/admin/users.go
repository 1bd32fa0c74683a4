package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/keys"
)

// /user/* routes.

// applyUser sets the present user fields on u.
func applyUser(u *keys.User, v *values) {
	if s, ok := v.str("user_email"); ok {
		u.UserEmail = s
	}
	if s, ok := v.str("user_alias"); ok {
		u.UserAlias = s
	}
	if s, ok := v.str("user_role"); ok {
		u.UserRole = keys.Role(s)
	}
	if ss, ok := v.strs("models"); ok {
		u.Models = ss
	}
	if b, ok := v.boolean("blocked"); ok {
		u.Blocked = b
	}
	applyLimits(&u.Limits, v)
	md, replace := v.object("metadata")
	u.Metadata = withExtras(u.Metadata, md, replace, v.extras())
}

// checkTeams checks that every team in ids exists; param names the list.
func (h *handler) checkTeams(c *call, ids []string, param string) *apierr.Error {
	for i, id := range ids {
		if e := h.teamExists(c, id, fmt.Sprintf("%s[%d]", param, i)); e != nil {
			return e
		}
	}
	return nil
}

// newKeyFields are the /user/new fields that describe the key it creates.
var newKeyFields = []string{"duration", "key_alias"}

// POST /user/new: creates a user and, unless auto_create_key is false, a
// key for it (LiteLLM's default), returned once in key.
func (h *handler) userNew(c *call) (any, *apierr.Error) {
	v, e := c.body(userNewSchema)
	if e != nil {
		return nil, e
	}
	uid, ok := v.str("user_id")
	if !ok {
		uid = newID()
	}
	teams, _ := v.strs("teams")
	if e := h.checkTeams(c, teams, "teams"); e != nil {
		return nil, e
	}
	// team_id joins teams; one already in teams was checked above.
	teamID, hasTeam := v.str("team_id")
	if hasTeam && !slices.Contains(teams, teamID) {
		if e := h.teamExists(c, teamID, "team_id"); e != nil {
			return nil, e
		}
		teams = append(teams, teamID)
	}
	autoKey := true
	if b, ok := v.boolean("auto_create_key"); ok {
		autoKey = b
	}
	if autoKey {
		alias, _ := v.str("key_alias")
		if e := h.aliasFree(c, alias, ""); e != nil {
			return nil, e
		}
	} else {
		for _, f := range newKeyFields {
			if v.has(f) {
				return nil, apierr.BadRequest(f, f+" describes the key /user/new creates, but auto_create_key is false")
			}
		}
	}
	now := h.utcNow()
	u := &keys.User{
		UserID:    uid,
		UserRole:  keys.RoleInternalUser,
		Teams:     teams,
		CreatedAt: now,
		UpdatedAt: now,
	}
	applyUser(u, v)
	if u.Teams == nil {
		u.Teams = []string{}
	}
	if e := checkRecordSize(u); e != nil {
		return nil, e
	}
	if err := h.store.CreateUser(c.ctx, u); err != nil {
		if errors.Is(err, keys.ErrExists) {
			return nil, apierr.BadRequest("user_id", "user_id "+quote(uid)+" already exists; user_id must be unique")
		}
		return nil, h.storeErr(c, err, "user", "user_id")
	}
	h.audit(c, "user.new", slog.String("target", uid), slog.String("user_role", string(u.UserRole)))
	resp := renderUser(u)
	if !autoKey {
		return resp, nil
	}
	kv := &values{m: map[string]any{}, s: keyGenerateSchema}
	for _, f := range append(newKeyFields, "models") {
		if val, ok := v.m[f]; ok {
			kv.m[f] = val
		}
	}
	secret, e := h.newSecret(c, kv, "key")
	var k *keys.Key
	if e == nil {
		k, e = h.createKey(c, secret, uid, teamID, kv)
	}
	if e != nil {
		// Leave nothing half-made: the user came with a key or not at all.
		if _, err := h.store.DeleteUser(c.ctx, uid); err == nil {
			h.audit(c, "user.delete", slog.String("target", uid), slog.String("reason", "rolled back: its key could not be created"))
		}
		return nil, e
	}
	for f, val := range created(k, secret, kv) {
		switch f {
		case "key", "key_name", "token", "token_id", "expires", "key_alias", "duration", "team_id":
			resp[f] = val
		}
	}
	return resp, nil
}

// GET /user/info[?user_id=]: no user_id means the caller's own user.
func (h *handler) userInfo(c *call) (any, *apierr.Error) {
	v, e := c.query(userInfoQuery)
	if e != nil {
		return nil, e
	}
	uid, ok := v.str("user_id")
	if !ok {
		if uid = c.who.UserID(); uid == "" {
			return nil, apierr.BadRequest("user_id", "user_id is required: the calling key has no user")
		}
	}
	if e := c.canUser(uid, "user_id"); e != nil {
		return nil, e
	}
	u, err := h.store.GetUser(c.ctx, uid)
	if err != nil {
		return nil, h.storeErr(c, err, "user "+quote(uid), "user_id")
	}
	ks, err := h.store.ListKeys(c.ctx, keys.KeyFilter{UserID: uid})
	if err != nil {
		return nil, h.storeErr(c, err, "keys", "user_id")
	}
	teams := []map[string]any{}
	for _, tid := range u.Teams {
		t, err := h.store.GetTeam(c.ctx, tid)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, h.storeErr(c, err, "team", "user_id")
		}
		teams = append(teams, renderTeam(t))
	}
	info := renderUser(u)
	if e := h.fillSpend(c, userTarget(info, u)); e != nil {
		return nil, e
	}
	return map[string]any{"user_id": uid, "user_info": info, "keys": renderKeys(ks), "teams": teams}, nil
}

// POST /user/update: the user is named by user_id or, without it, by a
// user_email that matches exactly one user.
func (h *handler) userUpdate(c *call) (any, *apierr.Error) {
	v, e := c.body(userUpdateSchema)
	if e != nil {
		return nil, e
	}
	uid, ok := v.str("user_id")
	if !ok {
		email, _ := v.str("user_email")
		if email == "" {
			return nil, apierr.BadRequest("user_id", "user_id (or user_email) is required")
		}
		if uid, e = h.userByEmail(c, email); e != nil {
			return nil, e
		}
	}
	if e := c.canUser(uid, "user_id"); e != nil {
		return nil, e
	}
	if e := c.checkFields(v); e != nil {
		return nil, e
	}
	teams, _ := v.strs("teams")
	if e := h.checkTeams(c, teams, "teams"); e != nil {
		return nil, e
	}
	// One store step on the latest record (keys.Store.ModifyUser): only
	// the request's fields change, so a concurrent demotion or block is
	// never undone, and a loop of self-updates cannot starve an admin's.
	now := h.utcNow()
	u, e := modifyRecord(h, c, h.store.ModifyUser, uid, "user "+quote(uid), "user_id", func(u *keys.User) *apierr.Error {
		applyUser(u, v)
		if v.has("teams") {
			u.Teams = teams
		}
		u.UpdatedAt = now
		return checkRecordSize(u)
	})
	if e != nil {
		return nil, e
	}
	// The change is written: drop cached principals and log it now, even
	// if ending the grace below fails.
	h.invalidate() // a cached principal carries its user (role, blocked)
	h.audit(c, "user.update", slog.String("target", uid), slog.Any("fields", without(v.names(), "user_id")))
	if blocked, _ := v.boolean("blocked"); blocked {
		if e := h.endGrace(c, keys.KeyFilter{UserID: uid}); e != nil {
			return nil, e
		}
	}
	data := renderUser(u)
	if e := h.fillSpend(c, userTarget(data, u)); e != nil {
		return nil, e
	}
	return map[string]any{"user_id": uid, "data": data}, nil
}

func (h *handler) userByEmail(c *call, email string) (string, *apierr.Error) {
	if c.scope != all {
		// A scoped caller may only name itself: compare with its own
		// record alone, and answer anything else as no match, so that
		// the answer says nothing about other users.
		uid := c.who.UserID()
		if u, err := h.store.GetUser(c.ctx, uid); err == nil && uid != "" && u.UserEmail == email {
			return uid, nil
		} else if err != nil && !isNotFound(err) {
			return "", h.storeErr(c, err, "users", "user_email")
		}
		return "", apierr.NotFound("no user has this user_email").WithParam("user_email")
	}
	us, err := h.store.ListUsers(c.ctx)
	if err != nil {
		return "", h.storeErr(c, err, "users", "user_email")
	}
	var found []string
	for _, u := range us {
		if u.UserEmail == email {
			found = append(found, u.UserID)
		}
	}
	switch len(found) {
	case 0:
		return "", apierr.NotFound("no user has this user_email").WithParam("user_email")
	case 1:
		return found[0], nil
	}
	return "", apierr.BadRequest("user_email", fmt.Sprintf("user_email matches %d users; name the user by user_id", len(found)))
}

// POST /user/delete {user_ids: [...]}: deletes the users and every key
// they own (rotation records included). All users are checked first. An id
// without a user record whose keys remain (left by an interrupted delete,
// or written before the store refused keys of missing users) is swept too:
// 404 only when there is neither a user nor a key.
func (h *handler) userDelete(c *call) (any, *apierr.Error) {
	v, e := c.body(userDeleteSchema)
	if e != nil {
		return nil, e
	}
	ids, _ := v.strs("user_ids")
	if len(ids) == 0 {
		return nil, apierr.BadRequest("user_ids", "user_ids (a non-empty list of user ids) is required")
	}
	if e := h.checkDeletable(c, "user", "user_ids", ids, func(id string) error {
		_, err := h.store.GetUser(c.ctx, id)
		return err
	}, func(id string) keys.KeyFilter { return keys.KeyFilter{UserID: id} }); e != nil {
		return nil, e
	}
	deletedKeys := []string{}
	deletedUsers := []string{}
	for _, id := range ids {
		if slices.Contains(deletedUsers, id) {
			continue
		}
		toks, err := h.store.DeleteUser(c.ctx, id)
		if err != nil && !isNotFound(err) {
			h.invalidate(deletedKeys...)
			return nil, h.storeErr(c, err, "user", "user_ids")
		}
		h.invalidate(toks...)
		deletedKeys = append(deletedKeys, toks...)
		deletedUsers = append(deletedUsers, id)
		h.audit(c, "user.delete", slog.String("target", id), slog.Int("keys_deleted", len(toks)))
	}
	h.invalidate()
	return map[string]any{"deleted_users": deletedUsers, "deleted_keys": deletedKeys}, nil
}

// GET /user/list[?page=&page_size=&role=&user_ids=a,b]
func (h *handler) userList(c *call) (any, *apierr.Error) {
	v, e := c.query(userListQuery)
	if e != nil {
		return nil, e
	}
	page, size, e := pageParams(v, "page_size", 25)
	if e != nil {
		return nil, e
	}
	role, byRole := v.str("role")
	ids, byIDs := v.strs("user_ids")
	var (
		shown []*keys.User
		total int
	)
	switch {
	case byIDs || byRole:
		var us []*keys.User
		if byIDs {
			// Named users: read each, in id order as a listing would be.
			slices.Sort(ids)
			for _, id := range slices.Compact(ids) {
				u, err := h.store.GetUser(c.ctx, id)
				if isNotFound(err) {
					continue
				}
				if err != nil {
					return nil, h.storeErr(c, err, "users", "user_ids")
				}
				us = append(us, u)
			}
		} else {
			// No index covers roles: read every user.
			var err error
			if us, err = h.store.ListUsers(c.ctx); err != nil {
				return nil, h.storeErr(c, err, "users", "")
			}
		}
		var kept []*keys.User
		for _, u := range us {
			if !byRole || string(u.UserRole) == role {
				kept = append(kept, u)
			}
		}
		lo, hi, _ := pages(len(kept), page, size)
		shown, total = kept[lo:hi], len(kept)
	default:
		us, n, err := h.store.ListUserPage(c.ctx, (page-1)*size, size)
		if err != nil {
			return nil, h.storeErr(c, err, "users", "")
		}
		shown, total = us, n
	}
	count := (total + size - 1) / size
	list := make([]map[string]any, 0, len(shown))
	targets := make([]spendTarget, 0, len(shown))
	for _, u := range shown {
		list = append(list, renderUser(u))
		targets = append(targets, userTarget(list[len(list)-1], u))
	}
	if e := h.fillSpend(c, targets...); e != nil {
		return nil, e
	}
	return map[string]any{"users": list, "total": total, "page": page, "page_size": size, "total_pages": count}, nil
}

// checkDeletable checks, before anything is deleted, that every id names a
// record (get), or at least keys that still name it (filter), which the
// delete then sweeps as orphans. It answers 404 for an id with neither, and
// the store's error for anything else.
func (h *handler) checkDeletable(c *call, what, field string, ids []string, get func(id string) error, filter func(id string) keys.KeyFilter) *apierr.Error {
	for i, id := range ids {
		param := fmt.Sprintf("%s[%d]", field, i)
		err := get(id)
		if isNotFound(err) {
			ks, lerr := h.store.ListKeys(c.ctx, filter(id))
			if lerr != nil {
				return h.storeErr(c, lerr, "keys", param)
			}
			if len(ks) > 0 {
				continue // no record, but keys naming it: delete them
			}
		}
		if err != nil {
			return h.storeErr(c, err, what+" "+quote(id), param)
		}
	}
	return nil
}
