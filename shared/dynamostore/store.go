// Package dynamostore is Keyway's key store on Amazon DynamoDB
// (KEYWAY_STORE=dynamodb:TABLE): users, teams and virtual keys in one table.
//
// The request path costs one strongly consistent GetItem by key hash. Admin
// listings are Queries on the table's global secondary indexes, never Scans.
// Writes that must not clobber are conditional, and multi-item changes
// (alias claims, regenerate, delete) are transactions. docs/storage.md
// documents the item layout, every access pattern and its cost.
package dynamostore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keywaygw/keyway/shared/keys"
)

// Store is a keys.Store on one DynamoDB table. It is safe for concurrent use.
type Store struct {
	client *dynamodb.Client
	table  string
	// ctrs is the ledger's counters cache (ledgercache.go).
	ctrs *counterCache
}

var _ keys.Store = (*Store)(nil)

// New returns a Store on table. Build client with NewClient (or pass
// ClientOptions) so calls are retried within bounded time. The table must
// have the definition of TableInput.
func New(client *dynamodb.Client, table string) *Store {
	return &Store{client: client, table: table, ctrs: newCounterCache()}
}

// Table is the table's name.
func (st *Store) Table() string { return st.table }

// Close implements keys.Store. The SDK client holds no resources that need
// releasing.
func (st *Store) Close() error { return nil }

// Ping checks that the table is reachable, for readiness checks.
func (st *Store) Ping(ctx context.Context) error {
	if _, err := st.getItem(ctx, keyPK("ping")); err != nil {
		return fmt.Errorf("dynamodb table %s: %w", st.table, err)
	}
	return nil
}

// Conditions shared by the entity writes.
const (
	condAbsent  = "attribute_not_exists(pk)"
	condPresent = "attribute_exists(pk)"
)

// CreateUser implements keys.Store.
func (st *Store) CreateUser(ctx context.Context, u *keys.User) error {
	if u.UserID == "" {
		return fmt.Errorf("creating user: empty user id")
	}
	it, err := encodeUser(u, 1)
	if err != nil {
		return fmt.Errorf("creating user: %w", err)
	}
	if err := st.write(ctx, []op{st.put(it, condAbsent, nil, nil, keys.ErrExists)}); err != nil {
		return fmt.Errorf("creating user %q: %w", u.UserID, err)
	}
	u.Version = 1
	return nil
}

// GetUser implements keys.Store.
func (st *Store) GetUser(ctx context.Context, userID string) (*keys.User, error) {
	if userID == "" {
		return nil, fmt.Errorf("getting user: %w", keys.ErrNotFound)
	}
	it, err := st.getItem(ctx, userPK(userID))
	if err != nil {
		return nil, fmt.Errorf("getting user %q: %w", userID, err)
	}
	if it == nil {
		return nil, fmt.Errorf("getting user %q: %w", userID, keys.ErrNotFound)
	}
	return decodeUser(it)
}

// UpdateUser implements keys.Store.
func (st *Store) UpdateUser(ctx context.Context, u *keys.User) error {
	if u.UserID == "" {
		return fmt.Errorf("updating user: %w", keys.ErrNotFound)
	}
	it, err := encodeUser(u, u.Version+1)
	if err != nil {
		return fmt.Errorf("updating user: %w", err)
	}
	if err := st.putVersioned(ctx, it, userPK(u.UserID), u.Version); err != nil {
		return fmt.Errorf("updating user %q: %w", u.UserID, err)
	}
	u.Version++
	return nil
}

// ModifyUser implements keys.Store: read, fn, put conditional on the
// version read, again from a fresh read when another write came between.
func (st *Store) ModifyUser(ctx context.Context, userID string, fn func(*keys.User) error) (*keys.User, error) {
	u, ver, err := modify(ctx, st, userPK(userID), decodeUser, encodeUser, func(u *keys.User) error {
		if err := fn(u); err != nil {
			return err
		}
		if u.UserID != userID {
			return fmt.Errorf("user_id cannot change")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("modifying user %q: %w", userID, err)
	}
	u.Version = ver
	return u, nil
}

// ModifyTeam implements keys.Store as ModifyUser.
func (st *Store) ModifyTeam(ctx context.Context, teamID string, fn func(*keys.Team) error) (*keys.Team, error) {
	t, ver, err := modify(ctx, st, teamPK(teamID), decodeTeam, encodeTeam, func(t *keys.Team) error {
		if err := fn(t); err != nil {
			return err
		}
		if t.TeamID != teamID {
			return fmt.Errorf("team_id cannot change")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("modifying team %q: %w", teamID, err)
	}
	t.Version = ver
	return t, nil
}

// modify is ModifyUser and ModifyTeam: read the item at key, decode, apply
// fn, encode at the next version, put conditional on the version read. It
// returns the record as written and the version it was written at.
func modify[T any](ctx context.Context, st *Store, key item, decode func(item) (*T, error),
	encode func(*T, int64) (item, error), fn func(*T) error) (*T, int64, error) {
	for try := range maxModifyTries {
		if err := backoff(ctx, try); err != nil {
			return nil, 0, err
		}
		it, err := st.getItem(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		if it == nil {
			return nil, 0, keys.ErrNotFound
		}
		r, err := decode(it)
		if err != nil {
			return nil, 0, err
		}
		if err := fn(r); err != nil {
			return nil, 0, err
		}
		ver := itemVersion(it)
		out, err := encode(r, ver+1)
		if err != nil {
			return nil, 0, err
		}
		err = st.write(ctx, []op{st.putAtVersion(out, ver)})
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return r, ver + 1, nil
	}
	return nil, 0, errConflict
}

// ListUsers implements keys.Store: one Query on gsi1's USERS partition.
func (st *Store) ListUsers(ctx context.Context) ([]*keys.User, error) {
	items, err := st.query(ctx, &dynamodb.QueryInput{
		IndexName:                 aws.String(IndexByUser),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: item{":p": s(gsiUsers)},
	})
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	users := make([]*keys.User, 0, len(items))
	for _, it := range items {
		u, err := decodeUser(it)
		if err != nil {
			return nil, fmt.Errorf("listing users: %w", err)
		}
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b *keys.User) int { return cmp.Compare(a.UserID, b.UserID) })
	return users, nil
}

// ListUserPage implements keys.Store: gsi1's USERS partition is sorted by
// user id, so the Query walks forward until it has passed offset users and
// decoded limit more. The total is the same Query with Select COUNT, which
// DynamoDB answers without returning items but still reads the partition
// (one round trip per 1 MB of user items).
func (st *Store) ListUserPage(ctx context.Context, offset, limit int) ([]*keys.User, int, error) {
	if offset < 0 || limit < 1 {
		return nil, 0, fmt.Errorf("listing users: offset %d, limit %d: want offset >= 0, limit >= 1", offset, limit)
	}
	page, total, err := queryPage(ctx, st, &dynamodb.QueryInput{
		IndexName:                 aws.String(IndexByUser),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: item{":p": s(gsiUsers)},
	}, offset, limit, decodeUser)
	if err != nil {
		return nil, 0, fmt.Errorf("listing users: %w", err)
	}
	return page, total, nil
}

// CreateTeam implements keys.Store.
func (st *Store) CreateTeam(ctx context.Context, t *keys.Team) error {
	if t.TeamID == "" {
		return fmt.Errorf("creating team: empty team id")
	}
	it, err := encodeTeam(t, 1)
	if err != nil {
		return fmt.Errorf("creating team: %w", err)
	}
	if err := st.write(ctx, []op{st.put(it, condAbsent, nil, nil, keys.ErrExists)}); err != nil {
		return fmt.Errorf("creating team %q: %w", t.TeamID, err)
	}
	t.Version = 1
	return nil
}

// GetTeam implements keys.Store.
func (st *Store) GetTeam(ctx context.Context, teamID string) (*keys.Team, error) {
	if teamID == "" {
		return nil, fmt.Errorf("getting team: %w", keys.ErrNotFound)
	}
	it, err := st.getItem(ctx, teamPK(teamID))
	if err != nil {
		return nil, fmt.Errorf("getting team %q: %w", teamID, err)
	}
	if it == nil {
		return nil, fmt.Errorf("getting team %q: %w", teamID, keys.ErrNotFound)
	}
	return decodeTeam(it)
}

// UpdateTeam implements keys.Store.
func (st *Store) UpdateTeam(ctx context.Context, t *keys.Team) error {
	if t.TeamID == "" {
		return fmt.Errorf("updating team: %w", keys.ErrNotFound)
	}
	it, err := encodeTeam(t, t.Version+1)
	if err != nil {
		return fmt.Errorf("updating team: %w", err)
	}
	if err := st.putVersioned(ctx, it, teamPK(t.TeamID), t.Version); err != nil {
		return fmt.Errorf("updating team %q: %w", t.TeamID, err)
	}
	t.Version++
	return nil
}

// putAtVersion puts it if the stored item's version is still ver
// (errConflict otherwise, and when there is no item). An item from before
// versions has none and matches ver 0.
func (st *Store) putAtVersion(it item, ver int64) op {
	if ver == 0 {
		return st.put(it, "attribute_exists(pk) AND attribute_not_exists(#v)", namesVer, nil, errConflict)
	}
	return st.put(it, "#v = :v", namesVer, verVals(ver), errConflict)
}

// putVersioned replaces the item at key with it if the stored item's
// version is still ver: keys.ErrNotFound when there is no item,
// keys.ErrConflict when it has another version. An item from before
// versions has none and matches ver 0.
func (st *Store) putVersioned(ctx context.Context, it, key item, ver int64) error {
	err := st.write(ctx, []op{st.putAtVersion(it, ver)})
	if !errors.Is(err, errConflict) {
		return err
	}
	cur, gerr := st.getItem(ctx, key)
	switch {
	case gerr != nil:
		return gerr
	case cur == nil:
		return keys.ErrNotFound
	}
	return fmt.Errorf("version %d, stored %d: %w", ver, itemVersion(cur), keys.ErrConflict)
}

// DeleteTeam implements keys.Store. The team's keys stay (with their
// team_id); a missing team is never a reason to deny.
func (st *Store) DeleteTeam(ctx context.Context, teamID string) error {
	if teamID == "" {
		return fmt.Errorf("deleting team: %w", keys.ErrNotFound)
	}
	if err := st.write(ctx, []op{st.del(teamPK(teamID), condPresent, nil, nil, keys.ErrNotFound)}); err != nil {
		return fmt.Errorf("deleting team %q: %w", teamID, err)
	}
	return nil
}

// ListTeams implements keys.Store: one Query on gsi1's TEAMS partition.
func (st *Store) ListTeams(ctx context.Context) ([]*keys.Team, error) {
	items, err := st.query(ctx, &dynamodb.QueryInput{
		IndexName:                 aws.String(IndexByUser),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: item{":p": s(gsiTeams)},
	})
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	teams := make([]*keys.Team, 0, len(items))
	for _, it := range items {
		t, err := decodeTeam(it)
		if err != nil {
			return nil, fmt.Errorf("listing teams: %w", err)
		}
		teams = append(teams, t)
	}
	slices.SortFunc(teams, func(a, b *keys.Team) int { return cmp.Compare(a.TeamID, b.TeamID) })
	return teams, nil
}
