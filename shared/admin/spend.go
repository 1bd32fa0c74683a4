package admin

import (
	"slices"
	"strings"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/ledger"
)

// Spend routes: usage records and per-day totals written by metering
// (docs/metering.md).
var (
	spendLogsQuery = schema{
		"api_key":    {kind: kString},
		"user_id":    {kind: kID},
		"team_id":    {kind: kID},
		"request_id": {kind: kString},
		"start_date": {kind: kString},
		"end_date":   {kind: kString},
		"limit":      {kind: kInt},
		"cursor":     {kind: kString},
	}
	spendTotalsQuery = schema{
		"start_date": {kind: kString},
		"end_date":   {kind: kString},
		"group_by":   {kind: kString},
	}
)

// NextCursorHeader carries the cursor of the next /spend/logs page; LiteLLM's
// /spend/logs answers a bare JSON array, so the cursor cannot go in the body.
const NextCursorHeader = "X-Keyway-Next-Cursor"

const dayLayout = "2006-01-02"

// MaxReportDays bounds a per-day totals request.
const MaxReportDays = 366

// GET /spend/logs: usage records, newest first, with LiteLLM's field names.
// Admins see every record; an internal user the records of its own keys; a
// key without a user its own records. A filter naming someone else's key
// or user finds nothing (it is not an error, so it reveals nothing).
func (h *handler) spendLogs(c *call) (any, *apierr.Error) {
	if h.ledger == nil {
		return nil, apierr.Unavailable("spend logs are not available: no ledger store is configured")
	}
	v, e := c.query(spendLogsQuery)
	if e != nil {
		return nil, e
	}
	var f ledger.RecordFilter
	if tok, ok := v.str("api_key"); ok {
		if strings.HasPrefix(tok, keys.SecretPrefix) {
			tok = keys.Hash(tok)
		}
		f.Token = tok
	}
	f.UserID, _ = v.str("user_id")
	f.TeamID, _ = v.str("team_id")
	f.RequestID, _ = v.str("request_id")
	start, end, e := dateRange(v, 0)
	if e != nil {
		return nil, e
	}
	f.Start, f.End = start, end
	f.Limit = 100
	if n, ok := v.integer("limit"); ok {
		if *n < 1 || *n > ledger.MaxPage {
			return nil, apierr.BadRequest("limit", "limit must be between 1 and 1000")
		}
		f.Limit = int(*n)
	}
	f.Cursor, _ = v.str("cursor")
	if f.Cursor != "" {
		if _, err := ledger.DecodeCursor(f.Cursor); err != nil {
			return nil, apierr.BadRequest("cursor", "cursor is not one this API returned (take it from the X-Keyway-Next-Cursor header)")
		}
	}

	switch c.scope {
	case own:
		if f.UserID != "" && f.UserID != c.who.UserID() {
			return []any{}, nil
		}
		f.UserID = c.who.UserID()
	case selfKey:
		f.KeyIDs = []string{c.who.Key.TokenID}
	}
	recs, next, err := h.ledger.ListRecords(c.ctx, f)
	if err != nil {
		return nil, h.storeErr(c, err, "spend logs", "")
	}
	if next != "" {
		c.w.Header().Set(NextCursorHeader, next)
	}
	out := make([]map[string]any, 0, len(recs))
	for _, r := range recs {
		out = append(out, renderRecord(r))
	}
	return out, nil
}

// renderRecord is a usage record in LiteLLM's SpendLogs shape, plus
// Keyway's endpoint, status_code and usage_source.
func renderRecord(r *ledger.Record) map[string]any {
	return map[string]any{
		"request_id":        r.RequestID,
		"call_type":         "pass_through_endpoint",
		"api_key":           r.Token,
		"key_alias":         r.KeyAlias,
		"spend":             r.Spend.Dollars(),
		"prompt_tokens":     r.InputTokens,
		"completion_tokens": r.OutputTokens,
		"total_tokens":      r.InputTokens + r.OutputTokens,
		"cached_tokens":     r.CachedTokens,
		"model":             r.Model,
		"user":              r.UserID,
		"team_id":           r.TeamID,
		"startTime":         r.StartTime.UTC().Format(time.RFC3339Nano),
		"endTime":           r.EndTime.UTC().Format(time.RFC3339Nano),
		"status":            r.Status,
		"endpoint":          r.Endpoint,
		"status_code":       r.StatusCode,
		"usage_source":      r.UsageSource,
	}
}

// dateRange reads start_date and end_date (YYYY-MM-DD, UTC; end inclusive)
// into [start, end). defDays > 0 makes a missing range the last defDays
// days.
func dateRange(v *values, defDays int) (start, end time.Time, e *apierr.Error) {
	parse := func(name string) (time.Time, bool, *apierr.Error) {
		s, ok := v.str(name)
		if !ok || s == "" {
			return time.Time{}, false, nil
		}
		t, err := time.Parse(dayLayout, s)
		if err != nil {
			return time.Time{}, false, apierr.BadRequest(name, name+" must be a date like 2026-12-01 (YYYY-MM-DD, UTC)")
		}
		return t, true, nil
	}
	start, hasStart, e := parse("start_date")
	if e != nil {
		return start, end, e
	}
	end, hasEnd, e := parse("end_date")
	if e != nil {
		return start, end, e
	}
	if hasEnd {
		end = end.AddDate(0, 0, 1)
	}
	if defDays > 0 {
		if !hasEnd {
			end = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
		}
		if !hasStart {
			start = end.AddDate(0, 0, -defDays)
		}
	}
	if !start.IsZero() && !end.IsZero() && !start.Before(end) {
		return start, end, apierr.BadRequest("start_date", "start_date must not be after end_date (end_date defaults to today, UTC)")
	}
	return start, end, nil
}

// GET /spend/daily?group_by=key|user|team|endpoint&start_date&end_date:
// Keyway's per-day totals, kept as charges happen (no scans). Default: the
// last 30 days, grouped by key. Internal users see their own keys (by key)
// or themselves (by user) only.
func (h *handler) spendDaily(c *call) (any, *apierr.Error) {
	g, start, end, totals, e := h.totals(c)
	if e != nil {
		return nil, e
	}
	days := make([]map[string]any, 0, len(totals))
	for _, t := range totals {
		days = append(days, map[string]any{
			"date": t.Day, "id": t.ID, "spend": t.Spend.Dollars(), "requests": t.Requests,
			"prompt_tokens": t.InputTokens, "completion_tokens": t.OutputTokens,
		})
	}
	return map[string]any{
		"group_by":   string(g),
		"start_date": start.Format(dayLayout),
		"end_date":   end.AddDate(0, 0, -1).Format(dayLayout),
		"days":       days,
	}, nil
}

// GET /global/spend/report?group_by=team|api_key|user|endpoint: LiteLLM's
// report shape, one entry per day with the groups' totals under their
// LiteLLM names (teams, api_keys, users) or "endpoints".
func (h *handler) spendReport(c *call) (any, *apierr.Error) {
	g, _, _, totals, e := h.totals(c)
	if e != nil {
		return nil, e
	}
	list := map[ledger.GroupBy]string{ledger.ByTeam: "teams", ledger.ByKey: "api_keys", ledger.ByUser: "users", ledger.ByEndpoint: "endpoints"}[g]
	nameField := map[ledger.GroupBy]string{ledger.ByTeam: "team_name", ledger.ByKey: "api_key", ledger.ByUser: "user_id", ledger.ByEndpoint: "endpoint"}[g]
	var out []map[string]any
	byDay := map[string]int{}
	for _, t := range totals {
		i, ok := byDay[t.Day]
		if !ok {
			i = len(out)
			byDay[t.Day] = i
			out = append(out, map[string]any{"group_by_day": t.Day, list: []map[string]any{}})
		}
		out[i][list] = append(out[i][list].([]map[string]any), map[string]any{
			nameField: t.ID, "total_spend": t.Spend.Dollars(), "requests": t.Requests,
			"prompt_tokens": t.InputTokens, "completion_tokens": t.OutputTokens,
		})
	}
	if out == nil {
		out = []map[string]any{}
	}
	return out, nil
}

// totals reads and scopes a per-day totals request.
func (h *handler) totals(c *call) (ledger.GroupBy, time.Time, time.Time, []ledger.DayTotal, *apierr.Error) {
	var zero time.Time
	if h.ledger == nil {
		return "", zero, zero, nil, apierr.Unavailable("spend totals are not available: no ledger store is configured")
	}
	v, e := c.query(spendTotalsQuery)
	if e != nil {
		return "", zero, zero, nil, e
	}
	g := ledger.ByKey
	if s, ok := v.str("group_by"); ok && s != "" {
		switch s {
		case "key", "api_key":
			g = ledger.ByKey
		case "user":
			g = ledger.ByUser
		case "team":
			g = ledger.ByTeam
		case "endpoint":
			g = ledger.ByEndpoint
		default:
			return "", zero, zero, nil, apierr.BadRequest("group_by", "group_by must be one of key (api_key), user, team, endpoint")
		}
	}
	start, end, e := dateRange(v, 30)
	if e != nil {
		return "", zero, zero, nil, e
	}
	if end.Sub(start) > MaxReportDays*24*time.Hour {
		return "", zero, zero, nil, apierr.BadRequest("start_date", "a report covers at most 366 days")
	}
	var allowed func(id string) bool
	if c.scope != all {
		switch g {
		case ledger.ByUser:
			uid := c.who.UserID()
			allowed = func(id string) bool { return id == uid }
		case ledger.ByKey:
			ks, err := h.store.ListKeys(c.ctx, keys.KeyFilter{UserID: c.who.UserID()})
			if err != nil {
				return "", zero, zero, nil, h.storeErr(c, err, "keys", "")
			}
			mine := make([]string, 0, len(ks))
			for _, k := range ks {
				mine = append(mine, k.TokenID)
			}
			allowed = func(id string) bool { return slices.Contains(mine, id) }
		default:
			return "", zero, zero, nil, apierr.Forbidden(c.callerClass() + " may only group its spend by key or user").WithParam("group_by")
		}
	}
	totals, err := h.ledger.Totals(c.ctx, g, start.Format(dayLayout), end.AddDate(0, 0, -1).Format(dayLayout))
	if err != nil {
		return "", zero, zero, nil, h.storeErr(c, err, "spend totals", "")
	}
	if allowed != nil {
		totals = slices.DeleteFunc(totals, func(t ledger.DayTotal) bool { return !allowed(t.ID) })
	}
	return g, start, end, totals, nil
}
