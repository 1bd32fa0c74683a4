// Package keys is Keyway's identity model: virtual keys, users and teams, the
// Store that keeps them, and the rules that make a key usable.
//
// A virtual key is "sk-" followed by at least 128 random bits. Only its
// unsalted SHA-256 hex (the same hash LiteLLM stores, so LiteLLM keys can be
// imported) is ever persisted; the secret is shown once, at creation.
package keys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Role is a LiteLLM user role.
type Role string

// The roles Keyway knows. The zero Role is not a role.
const (
	RoleProxyAdmin         Role = "proxy_admin"
	RoleProxyAdminViewer   Role = "proxy_admin_viewer"
	RoleInternalUser       Role = "internal_user"
	RoleInternalUserViewer Role = "internal_user_viewer"
)

// Roles lists every valid role, for validation messages.
var Roles = []Role{RoleProxyAdmin, RoleProxyAdminViewer, RoleInternalUser, RoleInternalUserViewer}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, v := range Roles {
		if r == v {
			return true
		}
	}
	return false
}

// ReadOnly reports whether r may only read (the viewer roles).
func (r Role) ReadOnly() bool {
	return r == RoleProxyAdminViewer || r == RoleInternalUserViewer
}

// Admin reports whether r sees every user, team and key.
func (r Role) Admin() bool { return r == RoleProxyAdmin || r == RoleProxyAdminViewer }

// Limits are the budget and rate fields shared by keys, users and teams.
// They are stored and returned; enforcement is the limits subsystem's.
type Limits struct {
	MaxBudget           *float64 `json:"max_budget"`
	BudgetDuration      string   `json:"budget_duration,omitempty"`
	SoftBudget          *float64 `json:"soft_budget,omitempty"`
	TPMLimit            *int64   `json:"tpm_limit"`
	RPMLimit            *int64   `json:"rpm_limit"`
	MaxParallelRequests *int64   `json:"max_parallel_requests"`
}

// User is a LiteLLM user.
type User struct {
	UserID    string         `json:"user_id"`
	UserEmail string         `json:"user_email,omitempty"`
	UserAlias string         `json:"user_alias,omitempty"`
	UserRole  Role           `json:"user_role"`
	Teams     []string       `json:"teams"`
	Models    []string       `json:"models"`
	Metadata  map[string]any `json:"metadata"`
	Blocked   bool           `json:"blocked"`
	Spend     float64        `json:"spend"`
	Limits
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// Version is the store's revision of the record (see Store): set by
	// every read and write, checked by UpdateUser. Not part of the JSON
	// shape.
	Version int64 `json:"-"`
}

// Team is a LiteLLM team.
type Team struct {
	TeamID                   string         `json:"team_id"`
	TeamAlias                string         `json:"team_alias,omitempty"`
	Models                   []string       `json:"models"`
	Metadata                 map[string]any `json:"metadata"`
	AllowedPassthroughRoutes []string       `json:"allowed_passthrough_routes"`
	Blocked                  bool           `json:"blocked"`
	Spend                    float64        `json:"spend"`
	Limits
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// Version is the store's revision of the record, checked by
	// UpdateTeam. Not part of the JSON shape.
	Version int64 `json:"-"`
}

// Key is a stored virtual key. Token is the SHA-256 hex of the secret and the
// store's primary key. TokenID is stable across /key/regenerate, which moves
// the record to a new Token.
type Key struct {
	Token                    string         `json:"token"`
	TokenID                  string         `json:"token_id"`
	KeyName                  string         `json:"key_name"`
	KeyAlias                 string         `json:"key_alias,omitempty"`
	UserID                   string         `json:"user_id,omitempty"`
	TeamID                   string         `json:"team_id,omitempty"`
	Expires                  *time.Time     `json:"expires"`
	Blocked                  bool           `json:"blocked"`
	AllowedRoutes            []string       `json:"allowed_routes"`
	AllowedPassthroughRoutes []string       `json:"allowed_passthrough_routes"`
	Models                   []string       `json:"models"`
	Metadata                 map[string]any `json:"metadata"`
	KeyType                  string         `json:"key_type,omitempty"`
	Spend                    float64        `json:"spend"`
	Limits
	// LimitedBy lists the stable ids (TokenID) of the keys whose limits and
	// counters this key also counts against: a key minted by a limited
	// key (an internal user's) shares the minting key's budget and rates
	// rather than starting fresh ones, and so on up the chain.
	LimitedBy []string  `json:"limited_by,omitempty"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// RotatedTo is set on the record an old secret leaves behind when
	// /key/regenerate is called with a grace period: until Expires, the old
	// secret authenticates as the key stored under RotatedTo. Such records
	// are not listed.
	RotatedTo string `json:"rotated_to,omitempty"`

	// Version is the store's revision of the record, checked by UpdateKey
	// and RotateKey. Not part of the JSON shape.
	Version int64 `json:"-"`
}

// Expired reports whether k has an expiry at or before now.
func (k *Key) Expired(now time.Time) bool {
	return k.Expires != nil && !now.Before(*k.Expires)
}

// Store errors. Stores wrap them; callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConflict is the error of a write whose record changed since the
	// caller read it (its Version is not the stored one): the caller reads
	// the record again, applies its change to the fresh copy and retries,
	// or gives up with 409. Nothing was written.
	ErrConflict = errors.New("the record changed since it was read")
	// ErrTooManyGraceSecrets is RotateKey's error when the key already has
	// MaxGraceSecrets old secrets inside a grace period. Nothing was written.
	ErrTooManyGraceSecrets = errors.New("too many old secrets in a grace period")
)

// MaxGraceSecrets is how many unexpired rotation records (old secrets still
// inside a /key/regenerate grace period) one key may have. Both stores hold
// the same limit: the DynamoDB store moves or removes all of them in one
// transaction of at most 100 items. Expired rotation records do not count.
const MaxGraceSecrets = 64

// OwnerNotFoundError is the error of a key write whose user or team has no
// record: CreateKey, UpdateKey and RotateKey check the owner inside the
// write, so this is the one authoritative "no such user/team" answer. It
// wraps ErrNotFound.
type OwnerNotFoundError struct {
	// Field is the key field naming the missing owner: "user_id" or "team_id".
	Field string
	// ID is the missing user or team id.
	ID string
}

func (e *OwnerNotFoundError) Error() string {
	kind := "user"
	if e.Field == "team_id" {
		kind = "team"
	}
	return fmt.Sprintf("%s %q: %v", kind, e.ID, ErrNotFound)
}

// Unwrap makes errors.Is(err, ErrNotFound) hold.
func (e *OwnerNotFoundError) Unwrap() error { return ErrNotFound }

// KeyFilter selects keys for ListKeys. Empty fields match everything; both
// set means keys of that user in that team.
type KeyFilter struct {
	UserID string
	TeamID string
}

// Store keeps users, teams and keys. Implementations must be safe for
// concurrent use and must pass the conformance suite in keystest.
//
// Writes that must not clobber are conditional: Create* fail with ErrExists
// when the id (or a key's token or alias) is taken; Update* and Delete* fail
// with ErrNotFound when the record is gone. List* return records sorted by
// id (keys by CreatedAt, then Token).
//
// Writes never undo each other. Every record carries a Version: Get*,
// List* and Create* set it on the record they return or were given, and
// UpdateUser, UpdateTeam, UpdateKey and RotateKey write only when the
// record's Version is still the stored one, failing with ErrConflict (and
// writing nothing) otherwise; on success they advance the given record's
// Version. A caller that reads, changes and writes back therefore never
// overwrites a change it did not see (a block, a demotion, a restriction):
// on ErrConflict it reads again and re-applies only the fields it meant to
// change. Spend fields are stored as given; counters that change on the
// request path live elsewhere (the ledger), never in these records.
//
// A key never gets a user or team that does not exist. CreateKey, and
// UpdateKey and RotateKey when they give the key a UserID or TeamID other
// than the one stored, fail with an *OwnerNotFoundError (which wraps
// ErrNotFound) when that UserID or TeamID is non-empty and has no record, and
// write nothing. The check is part of the write itself (one transaction),
// not a read before it: a key created or moved while its user is being
// deleted either is refused or is removed by DeleteUser, so no key
// outlives its user. An unchanged UserID or TeamID is not checked again: a
// key may already name a team that DeleteTeam has since removed (DeleteTeam
// keeps the team's keys) or a user that has no record (data written before
// this rule, or imported), and it must stay possible to block, update or
// rotate such a key.
type Store interface {
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, userID string) (*User, error)
	UpdateUser(ctx context.Context, u *User) error
	// ModifyUser applies fn to the stored user and writes the result, as
	// one atomic step: fn always sees the latest record, so what it does
	// not change stays as any concurrent writer left it. fn may run more
	// than once (it must only change the record it is given, and must not
	// call the store); its error aborts with nothing written. It returns
	// the record written. ErrNotFound when there is no user; ErrConflict
	// only when concurrent writers kept winning for a bounded number of
	// tries (DynamoDB; never on bbolt, which runs fn inside its write
	// transaction). This, not Get-then-Update, is how a change that must
	// win (a block, a demotion) is written: it cannot be starved by a loop
	// of other writes to the record.
	ModifyUser(ctx context.Context, userID string, fn func(*User) error) (*User, error)
	// DeleteUser removes the user and every key it owns (including rotation
	// records), so that nothing left behind can authenticate. It returns the
	// tokens removed. Keys that name userID are removed even when the user
	// record is already gone; only when there is neither a user record nor
	// a key naming it does DeleteUser fail with ErrNotFound.
	DeleteUser(ctx context.Context, userID string) (deletedTokens []string, err error)
	ListUsers(ctx context.Context) ([]*User, error)
	// ListUserPage returns the users at positions offset … offset+limit-1
	// in id order, and how many users there are, reading and decoding only
	// that page (see each store for what the total costs). offset < 0 or
	// limit < 1 is an error.
	ListUserPage(ctx context.Context, offset, limit int) (page []*User, total int, err error)

	CreateTeam(ctx context.Context, t *Team) error
	GetTeam(ctx context.Context, teamID string) (*Team, error)
	UpdateTeam(ctx context.Context, t *Team) error
	// ModifyTeam is ModifyUser for a team.
	ModifyTeam(ctx context.Context, teamID string, fn func(*Team) error) (*Team, error)
	DeleteTeam(ctx context.Context, teamID string) error
	ListTeams(ctx context.Context) ([]*Team, error)

	// CreateKey stores k under k.Token. It fails with ErrExists when the
	// token, or a non-empty KeyAlias, is already used, and with ErrNotFound
	// when a non-empty UserID or TeamID has no record (see above).
	CreateKey(ctx context.Context, k *Key) error
	// GetKey is the request-path lookup: one read by token.
	GetKey(ctx context.Context, token string) (*Key, error)
	// GetKeyByAlias finds a current (not rotated) key by its alias.
	GetKeyByAlias(ctx context.Context, alias string) (*Key, error)
	// UpdateKey replaces the key stored under k.Token if its version is
	// still k.Version (else ErrConflict). Changing KeyAlias to one in use
	// fails with ErrExists; changing UserID or TeamID to one without a
	// record fails with ErrNotFound. A write that leaves the key blocked
	// also removes every rotation record pointing at it, in the same
	// write: blocking a key ends its old secrets' grace for good, so
	// unblocking never revives them.
	UpdateKey(ctx context.Context, k *Key) error
	// ModifyKey is ModifyUser for the current key stored under token, with
	// UpdateKey's rules for the result (alias, owners, blocking ends grace);
	// fn may not change Token, TokenID or RotatedTo. A rotation record is
	// ErrNotFound.
	ModifyKey(ctx context.Context, token string, fn func(*Key) error) (*Key, error)
	// DeleteKey removes the record stored under token: for a current key,
	// with every rotation record pointing at it; for a rotation record,
	// just that record.
	DeleteKey(ctx context.Context, token string) error
	// DeleteKeyByID removes the current key whose TokenID is tokenID,
	// whatever its token is now (a /key/regenerate between finding the key
	// and deleting it moves the key to a new token, never out of reach),
	// together with every rotation record pointing at it. It returns the
	// tokens removed, the current one first; ErrNotFound when no current
	// key has that id.
	DeleteKeyByID(ctx context.Context, tokenID string) (deletedTokens []string, err error)
	// EndGrace removes every rotation record pointing at the current key
	// stored under token, so that its old secrets stop working now, and
	// returns their tokens; the key's fields are unchanged, but a store may
	// advance its Version (DynamoDB keeps the back-references in the key
	// item), so a writer holding an earlier read gets ErrConflict and must
	// read again. Blocking a user or a team ends the grace of its keys this
	// way (blocking a key does it in the same write). ErrNotFound when token is not a current key.
	EndGrace(ctx context.Context, token string) (ended []string, err error)
	// ListKeys returns current keys (not rotation records) matching f.
	ListKeys(ctx context.Context, f KeyFilter) ([]*Key, error)
	// ListKeyPage returns one page of the current keys matching f: those
	// at positions offset … offset+limit-1 in listing order, and how many
	// match in all. It reads and decodes only the page, never every key
	// (the stores keep ordered indexes; see each store for what the total
	// costs). Listing order is the stores' index order, the same on every
	// store: with f.UserID or f.TeamID set, CreatedAt then Token; with
	// neither, by UserID, then CreatedAt, then Token, as the byte order of
	// KeyListOrder. offset < 0 or limit < 1 is an error.
	ListKeyPage(ctx context.Context, f KeyFilter, offset, limit int) (page []*Key, total int, err error)
	// RotateKey atomically moves the key stored under oldToken to
	// next.Token (next carries every field to keep, and the Version of the
	// stored key it was made from: ErrConflict when that changed). If
	// graceUntil is non-nil, oldToken stays behind
	// as a rotation record pointing at next.Token that expires then;
	// otherwise oldToken is removed (with the key's earlier rotation
	// records). More than MaxGraceSecrets unexpired rotation records fail
	// with ErrTooManyGraceSecrets; expired ones are removed, not counted.
	// A next.UserID or next.TeamID that differs from the stored key's and
	// has no record fails with ErrNotFound. On success next.Version is the
	// new record's.
	RotateKey(ctx context.Context, oldToken string, next *Key, graceUntil *time.Time) error

	Close() error
}

// SecretPrefix starts every virtual key and the master key.
const SecretPrefix = "sk-"

// MinCustomKeyLen is the shortest custom key value /key/generate accepts:
// "sk-" plus 22 characters of a base64url alphabet carries at least 128 bits
// when random; shorter values are guessable and refused.
const MinCustomKeyLen = len(SecretPrefix) + 22

// NewSecret returns "sk-" followed by 192 random bits, base64url-encoded.
func NewSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns the unsalted SHA-256 hex of a secret, as LiteLLM's hash_token.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// IsHash reports whether s looks like a stored token (64 lowercase hex).
func IsHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Abbrev is the only form of a secret that may be logged or listed:
// "sk-...abcd".
func Abbrev(secret string) string {
	if len(secret) < 8 || !strings.HasPrefix(secret, SecretPrefix) {
		return "sk-...****"
	}
	return SecretPrefix + "..." + secret[len(secret)-4:]
}

// listTimeLayout renders CreatedAt in listing sort keys: fixed width, so
// byte order is time order (for years 0–9999).
const listTimeLayout = "20060102T150405.000000000Z"

// KeyListOrder is k's sort key in an unfiltered listing,
// "U#<user_id>#<created>#<token>": ListKeyPage lists keys in the byte order
// of these strings. It is also the DynamoDB store's gsi1 sort key and the
// bbolt store's key_order entry, which is what makes the order the same on
// both.
func KeyListOrder(k *Key) string { return "U#" + k.UserID + "#" + OwnerListOrder(k) }

// OwnerListOrder is k's sort key within one user's or one team's listing,
// "<created>#<token>" (the DynamoDB store's gsi2 sort key).
func OwnerListOrder(k *Key) string {
	return storedTime(k.CreatedAt).UTC().Format(listTimeLayout) + "#" + k.Token
}

// storedTime is t as the stores keep it: both write RFC 3339, whose offset
// has no seconds, so an instant in a zone whose offset has seconds (local
// mean time) comes back as another instant. The sort keys are made from
// that one, so that a key's entries are named the same from the caller's
// value and from the stored record, and pages follow ListKeys' order.
func storedTime(t time.Time) time.Time {
	if _, off := t.Zone(); off%60 == 0 {
		return t
	}
	b, err := t.MarshalJSON()
	if err != nil {
		return t // no store can write it
	}
	var u time.Time
	if u.UnmarshalJSON(b) != nil {
		return t
	}
	return u
}
