package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/keys"
)

// /team/* routes. Team membership lives on the user (User.Teams); /team/new
// members_with_roles and /user/new teams, /user/update teams set it.

// applyTeam sets the present team fields on t.
func applyTeam(t *keys.Team, v *values) {
	if s, ok := v.str("team_alias"); ok {
		t.TeamAlias = s
	}
	if ss, ok := v.strs("models"); ok {
		t.Models = ss
	}
	if ss, ok := v.strs("allowed_passthrough_routes"); ok {
		t.AllowedPassthroughRoutes = ss
	}
	if b, ok := v.boolean("blocked"); ok {
		t.Blocked = b
	}
	applyLimits(&t.Limits, v)
	md, replace := v.object("metadata")
	t.Metadata = withExtras(t.Metadata, md, replace, v.extras())
}

// POST /team/new
func (h *handler) teamNew(c *call) (any, *apierr.Error) {
	v, e := c.body(teamNewSchema)
	if e != nil {
		return nil, e
	}
	tid, ok := v.str("team_id")
	if !ok {
		tid = newID()
	}
	members, _ := v.members()
	for i, m := range members {
		if e := h.userExists(c, m.UserID, fmt.Sprintf("members_with_roles[%d].user_id", i)); e != nil {
			return nil, e
		}
	}
	now := h.utcNow()
	t := &keys.Team{TeamID: tid, CreatedAt: now, UpdatedAt: now}
	applyTeam(t, v)
	if e := checkRecordSize(t); e != nil {
		return nil, e
	}
	if err := h.store.CreateTeam(c.ctx, t); err != nil {
		if errors.Is(err, keys.ErrExists) {
			return nil, apierr.BadRequest("team_id", "team_id "+quote(tid)+" already exists; team_id must be unique")
		}
		return nil, h.storeErr(c, err, "team", "team_id")
	}
	for _, m := range members {
		_, e := modifyRecord(h, c, h.store.ModifyUser, m.UserID, "user "+quote(m.UserID), "members_with_roles", func(u *keys.User) *apierr.Error {
			if !slices.Contains(u.Teams, tid) {
				u.Teams = append(u.Teams, tid)
				u.UpdatedAt = now
			}
			return nil
		})
		if e != nil {
			return nil, e
		}
	}
	if len(members) > 0 {
		h.invalidate()
	}
	h.audit(c, "team.new", slog.String("target", tid), slog.Int("members", len(members)))
	return renderTeam(t), nil
}

// GET /team/info?team_id=
func (h *handler) teamInfo(c *call) (any, *apierr.Error) {
	v, e := c.query(teamInfoQuery)
	if e != nil {
		return nil, e
	}
	tid, ok := v.str("team_id")
	if !ok {
		return nil, apierr.BadRequest("team_id", "team_id is required")
	}
	if e := h.canTeam(c, tid, "team_id"); e != nil {
		return nil, e
	}
	t, err := h.store.GetTeam(c.ctx, tid)
	if err != nil {
		return nil, h.storeErr(c, err, "team "+quote(tid), "team_id")
	}
	ks, err := h.store.ListKeys(c.ctx, keys.KeyFilter{TeamID: tid})
	if err != nil {
		return nil, h.storeErr(c, err, "keys", "team_id")
	}
	// A member sees the team, but only its own keys in it.
	kept := ks[:0]
	for _, k := range ks {
		if c.canKey(k, "") == nil {
			kept = append(kept, k)
		}
	}
	info := renderTeam(t)
	if e := h.fillSpend(c, teamTarget(info, t)); e != nil {
		return nil, e
	}
	return map[string]any{"team_id": tid, "team_info": info, "keys": renderKeys(kept)}, nil
}

// POST /team/update
func (h *handler) teamUpdate(c *call) (any, *apierr.Error) {
	v, e := c.body(teamUpdateSchema)
	if e != nil {
		return nil, e
	}
	tid, ok := v.str("team_id")
	if !ok {
		return nil, apierr.BadRequest("team_id", "team_id is required")
	}
	now := h.utcNow()
	t, e := modifyRecord(h, c, h.store.ModifyTeam, tid, "team "+quote(tid), "team_id", func(t *keys.Team) *apierr.Error {
		applyTeam(t, v)
		t.UpdatedAt = now
		return checkRecordSize(t)
	})
	if e != nil {
		return nil, e
	}
	// The change is written: drop cached principals and log it now, even
	// if ending the grace below fails.
	h.invalidate() // cached principals carry their team (blocked, routes)
	h.audit(c, "team.update", slog.String("target", tid), slog.Any("fields", without(v.names(), "team_id")))
	if blocked, _ := v.boolean("blocked"); blocked {
		if e := h.endGrace(c, keys.KeyFilter{TeamID: tid}); e != nil {
			return nil, e
		}
	}
	data := renderTeam(t)
	if e := h.fillSpend(c, teamTarget(data, t)); e != nil {
		return nil, e
	}
	return map[string]any{"team_id": tid, "data": data}, nil
}

// POST /team/delete {team_ids: [...]}: deletes the teams, the keys bound to
// them (as LiteLLM does), and their membership on users. An id without a
// team record whose keys remain is swept too: 404 only when there is
// neither a team nor a key.
//
// Keys go first, then the team, then the keys once more: the store refuses
// a key for a team that no longer exists, so a key created (or moved into
// the team) while it is being deleted is either refused or found by the
// second sweep. An interruption leaves the team with fewer keys, never a
// key that has lost its team's restrictions.
func (h *handler) teamDelete(c *call) (any, *apierr.Error) {
	v, e := c.body(teamDeleteSchema)
	if e != nil {
		return nil, e
	}
	ids, _ := v.strs("team_ids")
	if len(ids) == 0 {
		return nil, apierr.BadRequest("team_ids", "team_ids (a non-empty list of team ids) is required")
	}
	if e := h.checkDeletable(c, "team", "team_ids", ids, func(id string) error {
		_, err := h.store.GetTeam(c.ctx, id)
		return err
	}, func(id string) keys.KeyFilter { return keys.KeyFilter{TeamID: id} }); e != nil {
		return nil, e
	}
	deletedKeys := []string{}
	deletedTeams := []string{}
	defer h.invalidate()
	for _, id := range ids {
		if slices.Contains(deletedTeams, id) {
			continue
		}
		n := 0
		sweep := func() *apierr.Error {
			ks, err := h.store.ListKeys(c.ctx, keys.KeyFilter{TeamID: id})
			if err != nil {
				return h.storeErr(c, err, "keys", "team_ids")
			}
			for _, k := range ks {
				gone, err := h.store.DeleteKeyByID(c.ctx, stableID(k))
				if err != nil && !isNotFound(err) {
					return h.storeErr(c, err, "key", "team_ids")
				}
				h.invalidate(gone...)
				deletedKeys = append(deletedKeys, k.Token)
				n++
				h.audit(c, "key.delete", append(keyAttrs(k), slog.String("reason", "team "+id+" deleted"))...)
			}
			return nil
		}
		if e := sweep(); e != nil {
			return nil, e
		}
		if err := h.store.DeleteTeam(c.ctx, id); err != nil && !isNotFound(err) {
			return nil, h.storeErr(c, err, "team", "team_ids")
		}
		if e := sweep(); e != nil {
			return nil, e
		}
		if e := h.dropMembership(c, id); e != nil {
			return nil, e
		}
		deletedTeams = append(deletedTeams, id)
		h.audit(c, "team.delete", slog.String("target", id), slog.Int("keys_deleted", n))
	}
	return map[string]any{"deleted_teams": deletedTeams, "deleted_keys": deletedKeys}, nil
}

// dropMembership removes team tid from every user that lists it.
func (h *handler) dropMembership(c *call, tid string) *apierr.Error {
	us, err := h.store.ListUsers(c.ctx)
	if err != nil {
		return h.storeErr(c, err, "users", "team_ids")
	}
	for _, u := range us {
		if !slices.Contains(u.Teams, tid) {
			continue
		}
		e := h.retrying(c, func() *apierr.Error {
			_, err := h.store.ModifyUser(c.ctx, u.UserID, func(u *keys.User) error {
				if slices.Contains(u.Teams, tid) {
					u.Teams = slices.DeleteFunc(u.Teams, func(s string) bool { return s == tid })
					u.UpdatedAt = h.utcNow()
				}
				return nil
			})
			if err != nil && !isNotFound(err) {
				return h.storeErr(c, err, "user", "team_ids")
			}
			return nil
		})
		if e != nil {
			return e
		}
	}
	return nil
}

// GET /team/list[?user_id=&organization_id=]: admins see every team (or a
// user's), others the teams they are in.
func (h *handler) teamList(c *call) (any, *apierr.Error) {
	v, e := c.query(teamListQuery)
	if e != nil {
		return nil, e
	}
	uid, byUser := v.str("user_id")
	if byUser {
		if e := c.canUser(uid, "user_id"); e != nil {
			return nil, e
		}
	}
	var only []string // nil: no membership filter
	switch {
	case c.scope != all:
		if c.who.Key != nil && c.who.Key.TeamID != "" {
			only = append(only, c.who.Key.TeamID)
		}
		uid, byUser = c.who.UserID(), true
		fallthrough
	case byUser:
		u, err := h.store.GetUser(c.ctx, uid)
		switch {
		case err == nil:
			only = append(only, u.Teams...)
		case !isNotFound(err):
			return nil, h.storeErr(c, err, "user", "user_id")
		case c.scope == all:
			return nil, apierr.NotFound("user " + quote(uid) + " not found").WithParam("user_id")
		}
		if only == nil {
			only = []string{}
		}
	}
	var ts []*keys.Team
	if only == nil {
		var err error
		if ts, err = h.store.ListTeams(c.ctx); err != nil {
			return nil, h.storeErr(c, err, "teams", "")
		}
	} else {
		// A member's teams: read those, not every team.
		slices.Sort(only)
		for _, id := range slices.Compact(only) {
			t, err := h.store.GetTeam(c.ctx, id)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return nil, h.storeErr(c, err, "teams", "")
			}
			ts = append(ts, t)
		}
	}
	org, byOrg := v.str("organization_id")
	list := []map[string]any{}
	var targets []spendTarget
	for _, t := range ts {
		if byOrg && extraString(t.Metadata, "organization_id") != org {
			continue
		}
		list = append(list, renderTeam(t))
		targets = append(targets, teamTarget(list[len(list)-1], t))
	}
	if e := h.fillSpend(c, targets...); e != nil {
		return nil, e
	}
	return list, nil
}
