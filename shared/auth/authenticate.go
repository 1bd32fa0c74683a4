// Package auth turns a request's credential into a Principal
// (authentication) and decides whether that principal may use a classified
// route (authorization). The two steps are separate: Authenticate only says
// who is calling; Authorize is the one function of (principal, route) that
// says yes or no.
package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keywaygw/keyway/shared/apierr"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// KeyReader is what authentication needs from a key store.
type KeyReader interface {
	GetKey(ctx context.Context, token string) (*keys.Key, error)
	GetUser(ctx context.Context, userID string) (*keys.User, error)
	GetTeam(ctx context.Context, teamID string) (*keys.Team, error)
}

var _ KeyReader = keys.Store(nil)

// Authenticator resolves credentials to principals, with a short in-process
// cache in front of the store.
type Authenticator struct {
	store  KeyReader
	cache  *Cache
	logger *slog.Logger
	now    func() time.Time
}

// NewAuthenticator returns an Authenticator reading from store through cache
// (nil cache: every lookup goes to the store).
func NewAuthenticator(store KeyReader, cache *Cache, logger *slog.Logger) *Authenticator {
	if logger == nil {
		logger = slog.Default()
	}
	return &Authenticator{store: store, cache: cache, logger: logger, now: time.Now}
}

// Authenticate returns who is calling. No credential is an anonymous
// principal, not an error: Authorize decides whether anonymous is enough.
// masterKey is the current config's master key ("" for none).
//
// Errors: 401 for a malformed, unknown or expired key; 503 when the store
// cannot answer (fail closed, never a pass).
func (a *Authenticator) Authenticate(ctx context.Context, h http.Header, masterKey string) (*Principal, *apierr.Error) {
	secret, _ := Credential(h)
	if secret == "" {
		return &Principal{Kind: Anonymous}, nil
	}
	if masterKey != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(masterKey)) == 1 {
		return &Principal{Kind: Master, Role: keys.RoleProxyAdmin}, nil
	}
	entry := reqlog.FromContext(ctx)
	if !strings.HasPrefix(secret, keys.SecretPrefix) {
		entry.Denied = reqlog.DenyBadKey
		return nil, apierr.Unauthorized("virtual key expected: keys start with \"sk-\"")
	}
	token := keys.Hash(secret)
	res, err := a.lookup(ctx, token)
	if err != nil {
		a.logger.ErrorContext(ctx, "key store unavailable", "key", keys.Abbrev(secret), "err", err)
		entry.Denied, entry.StoreOp = reqlog.DenyStore, StoreOpKeyLookup
		return nil, apierr.Unavailable("the key store is unavailable; try again")
	}
	now := a.now()
	switch {
	case res.key == nil:
		entry.Denied = reqlog.DenyBadKey
		return nil, apierr.Unauthorized("invalid API key")
	case res.rotatedExpired || res.key.Expired(now):
		entry.Denied = reqlog.DenyExpired
		return nil, apierr.New(http.StatusUnauthorized, apierr.TypeExpiredKey,
			"Authentication Error, the API key has expired")
	}
	p := &Principal{Kind: VirtualKey, Key: res.key, User: res.user, Team: res.team, Role: keys.RoleInternalUser, OldSecret: res.oldSecret}
	if res.user != nil && res.user.UserRole.Valid() {
		p.Role = res.user.UserRole
	}
	return p, nil
}

// StoreOpKeyLookup names the store operation of authentication's key
// lookup in reqlog.Entry.StoreOp (the store-error metrics' label).
const StoreOpKeyLookup = "key_lookup"

// lookupResult is a resolved key with its user and team, as cached.
// key == nil means "no such key" (a negative entry).
type lookupResult struct {
	key            *keys.Key
	user           *keys.User
	team           *keys.Team
	rotatedExpired bool // an old secret whose regenerate grace period is over
	oldSecret      bool // an old secret inside its grace period (key is the current record)
}

func (a *Authenticator) lookup(ctx context.Context, token string) (*lookupResult, error) {
	if res, ok := a.cache.get(token, a.now()); ok {
		return res, nil
	}
	gen := a.cache.generation()
	res, err := a.resolve(ctx, token)
	if err != nil {
		return nil, err // errors are never cached
	}
	a.cache.put(token, res, a.now(), gen)
	return res, nil
}

// resolve reads a key, follows a regenerate rotation record, and loads the
// key's user and team. A user or team that no longer exists is nil, never a
// reason to deny (a deleted user's keys are deleted with it).
func (a *Authenticator) resolve(ctx context.Context, token string) (*lookupResult, error) {
	k, err := a.store.GetKey(ctx, token)
	if errors.Is(err, keys.ErrNotFound) {
		return &lookupResult{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	res := &lookupResult{}
	if k.RotatedTo != "" {
		res.oldSecret = true
		if k.Expired(a.now()) {
			return &lookupResult{key: k, rotatedExpired: true}, nil
		}
		graceEnd := k.Expires
		k, err = a.store.GetKey(ctx, k.RotatedTo)
		if errors.Is(err, keys.ErrNotFound) {
			return &lookupResult{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading rotated key: %w", err)
		}
		// The old secret is valid until the earlier of the grace end and the
		// key's own expiry.
		if graceEnd == nil {
			// A rotation record always has its grace end; fail closed.
			return &lookupResult{key: k, rotatedExpired: true}, nil
		}
		if k.Expires == nil || graceEnd.Before(*k.Expires) {
			c := *k
			c.Expires = graceEnd
			k = &c
		}
	}
	res.key = k
	if k.UserID != "" {
		u, err := a.store.GetUser(ctx, k.UserID)
		switch {
		case errors.Is(err, keys.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("reading key's user: %w", err)
		default:
			res.user = u
		}
	}
	if k.TeamID != "" {
		t, err := a.store.GetTeam(ctx, k.TeamID)
		switch {
		case errors.Is(err, keys.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("reading key's team: %w", err)
		default:
			res.team = t
		}
	}
	return res, nil
}

// Invalidate drops cached lookups for tokens, or every lookup when none are
// given. The admin API calls it after each change, so revocation on this
// instance is immediate; other instances see it within the cache TTL.
func (a *Authenticator) Invalidate(tokens ...string) { a.cache.invalidate(tokens...) }
