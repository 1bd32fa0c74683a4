package admin

import (
	"log/slog"

	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// audit writes the one "admin audit" line of a mutation: who (the
// principal's Actor, never a secret), what (action), and on which id. Keys
// are named by key_name ("sk-...abcd") and a token prefix, never by secret.
func (h *handler) audit(c *call, action string, attrs ...slog.Attr) {
	base := []slog.Attr{
		slog.String("actor", c.who.Actor()),
		slog.String("action", action),
	}
	if id := reqlog.FromContext(c.ctx).RequestID; id != "" {
		base = append(base, slog.String("request_id", id))
	}
	h.log.LogAttrs(c.ctx, slog.LevelInfo, "admin audit", append(base, attrs...)...)
}

// keyAttrs names a key in an audit line.
func keyAttrs(k *keys.Key) []slog.Attr {
	out := []slog.Attr{
		slog.String("target", k.KeyName),
		slog.String("token_prefix", tokenPrefix(k.Token)),
	}
	if k.UserID != "" {
		out = append(out, slog.String("user_id", k.UserID))
	}
	if k.TeamID != "" {
		out = append(out, slog.String("team_id", k.TeamID))
	}
	return out
}

// tokenPrefix is the first 12 hex digits of a token: enough to find the
// record, useless to authenticate.
func tokenPrefix(token string) string {
	if len(token) > 12 {
		return token[:12]
	}
	return token
}
