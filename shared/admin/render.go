package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"time"

	"github.com/keywaygw/keyway/shared/keys"
)

// extrasKey is the metadata entry that holds the LiteLLM fields Keyway
// accepts but does not enforce (tags, guardrails, aliases, …). Responses
// return them at the top level, as LiteLLM does, and hide the entry from
// metadata; requests may not set it.
const extrasKey = "keyway_litellm_fields"

// withExtras returns metadata md (possibly replaced by newMD) with extras
// merged into its extrasKey entry. A field given again replaces its old
// value; the others are kept.
func withExtras(md map[string]any, newMD map[string]any, replaceMD bool, extras map[string]any) map[string]any {
	old, _ := md[extrasKey].(map[string]any)
	var out map[string]any
	if replaceMD {
		out = maps.Clone(newMD)
	} else {
		out = maps.Clone(md)
		delete(out, extrasKey)
	}
	if out == nil {
		out = map[string]any{}
	}
	ex := maps.Clone(old)
	if len(extras) > 0 {
		if ex == nil {
			ex = map[string]any{}
		}
		for k, v := range extras {
			ex[k] = jsonValue(v)
		}
	}
	if len(ex) > 0 {
		out[extrasKey] = ex
	}
	return out
}

// jsonValue normalises v to what it reads back as from JSON, so a record
// looks the same before and after a store round trip.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// render turns a stored record into a LiteLLM-shaped JSON object: the
// record's fields, with the extras hoisted out of metadata.
func render(rec any) map[string]any {
	b, _ := json.Marshal(rec)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	dec.Decode(&m)
	if md, ok := m["metadata"].(map[string]any); ok {
		if ex, ok := md[extrasKey].(map[string]any); ok {
			for k, v := range ex {
				if _, taken := m[k]; !taken {
					m[k] = v
				}
			}
			delete(md, extrasKey)
		}
	}
	if m["metadata"] == nil {
		m["metadata"] = map[string]any{}
	}
	return m
}

// renderKey is a stored key as LiteLLM shows it: never the secret, only
// token (the SHA-256 hex) and key_name ("sk-...abcd").
func renderKey(k *keys.Key) map[string]any {
	m := render(k)
	delete(m, "rotated_to")
	for _, f := range []string{"models", "allowed_routes", "allowed_passthrough_routes"} {
		if m[f] == nil {
			m[f] = []any{}
		}
	}
	return m
}

func renderKeys(ks []*keys.Key) []map[string]any {
	out := make([]map[string]any, 0, len(ks))
	for _, k := range ks {
		out = append(out, renderKey(k))
	}
	return out
}

func renderUser(u *keys.User) map[string]any {
	m := render(u)
	for _, f := range []string{"models", "teams"} {
		if m[f] == nil {
			m[f] = []any{}
		}
	}
	return m
}

func renderTeam(t *keys.Team) map[string]any {
	m := render(t)
	for _, f := range []string{"models", "allowed_passthrough_routes"} {
		if m[f] == nil {
			m[f] = []any{}
		}
	}
	return m
}

// newID returns a random UUID (version 4), LiteLLM's default user_id and
// team_id.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// utcNow is the handler's clock in UTC, to the microsecond (what every
// store keeps).
func (h *handler) utcNow() time.Time { return h.now().UTC().Truncate(time.Microsecond) }

// pages returns the bounds of page p (1-based) of size n over total items,
// and the number of pages.
func pages(total, p, n int) (lo, hi, count int) {
	count = (total + n - 1) / n
	lo = min((p-1)*n, total)
	hi = min(lo+n, total)
	return lo, hi, count
}
