package admin

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// A field the admin API accepts but does not enforce must say so, loudly:
// a write that sets one answers with "keyway_warnings", one sentence per
// field, and the audit log carries the same. The fields are LiteLLM's, so
// LiteLLM scripts keep working, but nobody is left believing a key is
// restricted when it is not.

// WarningsField is the response member that lists them.
const WarningsField = "keyway_warnings"

// notEnforced explains, per field, what Keyway does with it instead.
var notEnforced = map[string]string{
	"models": "models is stored and returned but not enforced: pass-through endpoints are not restricted by model; " +
		"restrict a key with allowed_routes / allowed_passthrough_routes",
	"spend": "spend cannot be set: it is kept by the usage ledger and only metered calls change it " +
		"(use budget_duration to have it return to 0 each period)",
	"key_type": "key_type is stored and returned but not enforced: the key may call every route its role and " +
		"allowed_routes admit; restrict it with allowed_routes",
	"members_with_roles": "members_with_roles adds the team to each user's teams; the roles are stored and " +
		"returned but not enforced (every member has the same rights in the team)",
}

// unenforcedWarnings lists a warning for each field of a request body
// (decoded against schema s) that Keyway stores without enforcing. null and
// empty values set nothing and warn of nothing.
func unenforcedWarnings(body map[string]json.RawMessage, s schema) []string {
	var out []string
	for name, v := range body {
		v = bytes.TrimSpace(v)
		if len(v) == 0 || string(v) == "null" || string(v) == "[]" || string(v) == "{}" || string(v) == `""` {
			continue
		}
		if why, ok := notEnforced[name]; ok {
			out = append(out, why)
			continue
		}
		if f, ok := s[name]; ok && f.extra {
			out = append(out, name+" is LiteLLM's and is stored and returned but not enforced by Keyway")
		}
	}
	sort.Strings(out)
	return out
}

// withWarnings adds the warnings to a JSON-object response.
func withWarnings(resp any, warnings []string) any {
	if len(warnings) == 0 {
		return resp
	}
	if m, ok := resp.(map[string]any); ok {
		m[WarningsField] = warnings
	}
	return resp
}

// warningSummary is the audit form: the field names only.
func warningSummary(ws []string) string {
	names := make([]string, 0, len(ws))
	for _, w := range ws {
		names = append(names, strings.Fields(w)[0])
	}
	return strings.Join(names, ",")
}
