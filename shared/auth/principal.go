package auth

import (
	"context"

	"github.com/keywaygw/keyway/shared/keys"
)

// Kind is how a caller authenticated.
type Kind int

// The kinds of principal.
const (
	Anonymous  Kind = iota // no credential (only auth:false endpoints and health)
	Master                 // the configured master key: a proxy admin
	VirtualKey             // a virtual key from the store
)

// Principal is who is calling. Authentication only fills it in; Authorize
// and the admin API decide what it may do.
type Principal struct {
	Kind Kind
	// Key is the key record that authenticated (the current record, when an
	// old secret was used within a regenerate grace period). Nil unless
	// Kind == VirtualKey.
	Key *keys.Key
	// User is the key's user, nil for a key without one or whose user is
	// gone. A missing user is never a reason to deny.
	User *keys.User
	// Team is the key's team, nil when the key has none.
	Team *keys.Team
	// Role is the effective role: proxy_admin for the master key, the user's
	// role for a key with a user, internal_user for a key without one.
	Role keys.Role
	// OldSecret is set when the secret that authenticated is an old one,
	// inside the grace period of a /key/regenerate: Key is then the current
	// record with Expires no later than the grace end. An old secret may do
	// what the key may, except regenerate, delete or block its own key, or
	// make anything that outlives its grace end (docs/security.md).
	OldSecret bool
}

// UserID is the key's user id, or "".
func (p *Principal) UserID() string {
	if p.Key != nil {
		return p.Key.UserID
	}
	return ""
}

// MasterActor is Actor's name for the master key. User ids may not take
// this form (admin validates ids), so a created_by or audit actor of
// MasterActor can only come from the master key.
const MasterActor = "master key"

// Actor names the principal in audit and access logs, never with a secret:
// "master key", "user alice", "key sk-...abcd".
func (p *Principal) Actor() string {
	switch {
	case p == nil || p.Kind == Anonymous:
		return "anonymous"
	case p.Kind == Master:
		return MasterActor
	case p.Key.UserID != "":
		return "user " + p.Key.UserID
	default:
		return "key " + p.Key.KeyName
	}
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the request's principal, or an anonymous one.
func FromContext(ctx context.Context) *Principal {
	if p, ok := ctx.Value(ctxKey{}).(*Principal); ok {
		return p
	}
	return &Principal{Kind: Anonymous}
}
