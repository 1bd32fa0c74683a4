package boltstore

import (
	"context"
	"fmt"
	"strconv"

	"go.etcd.io/bbolt"

	"github.com/keywaygw/keyway/shared/keys"
)

// CreateUser stores u; ErrExists when the id is taken.
func (s *Store) CreateUser(ctx context.Context, u *keys.User) error {
	if err := requireID("user", u.UserID); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		if b.Get([]byte(u.UserID)) != nil {
			return fmt.Errorf("user %q: %w", u.UserID, keys.ErrExists)
		}
		if _, err := b.NextSequence(); err != nil { // the user count (ListUserPage)
			return err
		}
		return putJSON(b, u.UserID, u, 1)
	})
	if err == nil {
		u.Version = 1
	}
	return err
}

// GetUser returns the user; ErrNotFound when there is none.
func (s *Store) GetUser(ctx context.Context, userID string) (*keys.User, error) {
	var u *keys.User
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		u, err = getJSON[keys.User](tx.Bucket(bucketUsers), userID)
		if err == nil && u == nil {
			err = fmt.Errorf("user %q: %w", userID, keys.ErrNotFound)
		}
		return err
	})
	return u, err
}

// UpdateUser replaces the stored user if its version is still u.Version
// (else ErrConflict); ErrNotFound when there is none, so an update racing a
// delete cannot bring the user back.
func (s *Store) UpdateUser(ctx context.Context, u *keys.User) error {
	return updateRecord(ctx, s, bucketUsers, "user", u.UserID, u)
}

// ModifyUser applies fn to the stored user inside one write transaction.
func (s *Store) ModifyUser(ctx context.Context, userID string, fn func(*keys.User) error) (*keys.User, error) {
	return modifyRecord(ctx, s, bucketUsers, "user", userID, func(u *keys.User) string { return u.UserID }, fn)
}

// DeleteUser removes the user, every current key indexed under it, and the
// rotation records pointing at those keys, in one transaction: an old secret
// in its grace period authenticates as the user's key, so it must go with
// it. It returns every token removed.
//
// Keys may name a user that has no record (a missing user never denies), so
// the keys are removed even when the user record is already gone; only when
// there is neither a record nor a key is the result ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, userID string) ([]string, error) {
	var removed []string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		exists := userID != "" && users.Get([]byte(userID)) != nil
		owned := indexTokens(tx, bucketUserKeys, userID)
		if !exists && len(owned) == 0 {
			return fmt.Errorf("user %q: %w", userID, keys.ErrNotFound)
		}
		if exists {
			if err := users.Delete([]byte(userID)); err != nil {
				return fmt.Errorf("deleting user %q: %w", userID, err)
			}
			if n := users.Sequence(); n > 0 {
				if err := users.SetSequence(n - 1); err != nil {
					return err
				}
			}
		}
		for _, tok := range owned {
			k, err := getJSON[keys.Key](tx.Bucket(bucketKeys), tok)
			if err != nil {
				return err
			}
			if k == nil {
				// An index entry without a record: drop the entry so the
				// index heals rather than failing the delete.
				if err := indexRemove(tx, bucketUserKeys, userID, tok); err != nil {
					return err
				}
				continue
			}
			gone, err := deleteCurrentKey(tx, k)
			if err != nil {
				return err
			}
			removed = append(removed, gone...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// ListUsers returns every user, sorted by id (bbolt keeps keys in byte
// order).
func (s *Store) ListUsers(ctx context.Context) ([]*keys.User, error) {
	var us []*keys.User
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		us, err = listJSON[keys.User](tx.Bucket(bucketUsers))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return us, nil
}

// CreateTeam stores t; ErrExists when the id is taken.
func (s *Store) CreateTeam(ctx context.Context, t *keys.Team) error {
	if err := requireID("team", t.TeamID); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTeams)
		if b.Get([]byte(t.TeamID)) != nil {
			return fmt.Errorf("team %q: %w", t.TeamID, keys.ErrExists)
		}
		return putJSON(b, t.TeamID, t, 1)
	})
	if err == nil {
		t.Version = 1
	}
	return err
}

// GetTeam returns the team; ErrNotFound when there is none.
func (s *Store) GetTeam(ctx context.Context, teamID string) (*keys.Team, error) {
	var t *keys.Team
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		t, err = getJSON[keys.Team](tx.Bucket(bucketTeams), teamID)
		if err == nil && t == nil {
			err = fmt.Errorf("team %q: %w", teamID, keys.ErrNotFound)
		}
		return err
	})
	return t, err
}

// UpdateTeam replaces the stored team if its version is still t.Version
// (else ErrConflict); ErrNotFound when there is none.
func (s *Store) UpdateTeam(ctx context.Context, t *keys.Team) error {
	return updateRecord(ctx, s, bucketTeams, "team", t.TeamID, t)
}

// updateRecord is UpdateUser and UpdateTeam: in one write transaction,
// replace the record of kind stored under id in bucket with r if the
// stored version is still r's, then advance r's.
func updateRecord[T any](ctx context.Context, s *Store, bucket []byte, kind, id string, r *T) error {
	ver := version(r)
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		cur, err := getJSON[T](b, id)
		if err != nil {
			return err
		}
		if id == "" || cur == nil {
			return fmt.Errorf("%s %q: %w", kind, id, keys.ErrNotFound)
		}
		if err := checkVersion(kind, strconv.Quote(id), *version(cur), *ver); err != nil {
			return err
		}
		return putJSON(b, id, r, *ver+1)
	})
	if err == nil {
		*ver++
	}
	return err
}

// ModifyTeam applies fn to the stored team inside one write transaction.
func (s *Store) ModifyTeam(ctx context.Context, teamID string, fn func(*keys.Team) error) (*keys.Team, error) {
	return modifyRecord(ctx, s, bucketTeams, "team", teamID, func(t *keys.Team) string { return t.TeamID }, fn)
}

// modifyRecord is ModifyUser and ModifyTeam: in one write transaction,
// read the record of kind stored under id in bucket, apply fn, check that
// the id (idOf) is unchanged, and write it at the next version.
func modifyRecord[T any](ctx context.Context, s *Store, bucket []byte, kind, id string, idOf func(*T) string, fn func(*T) error) (*T, error) {
	var out *T
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		r, err := getJSON[T](b, id)
		if err != nil {
			return err
		}
		if id == "" || r == nil {
			return fmt.Errorf("%s %q: %w", kind, id, keys.ErrNotFound)
		}
		ver := *version(r)
		if err := fn(r); err != nil {
			return err
		}
		if idOf(r) != id {
			return fmt.Errorf("%s %q: %s_id cannot change", kind, id, kind)
		}
		*version(r) = ver + 1
		out = r
		return putJSON(b, id, r, ver+1)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteTeam removes the team record only. The team's keys stay, still
// naming the team and still listed under it: keys.Store does not say that
// deleting a team revokes its keys, and a key whose team record is missing
// is treated like a key whose user is missing (never a reason to deny).
// Revoking them is the caller's decision, key by key.
func (s *Store) DeleteTeam(ctx context.Context, teamID string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTeams)
		if teamID == "" || b.Get([]byte(teamID)) == nil {
			return fmt.Errorf("team %q: %w", teamID, keys.ErrNotFound)
		}
		return b.Delete([]byte(teamID))
	})
}

// ListTeams returns every team, sorted by id.
func (s *Store) ListTeams(ctx context.Context) ([]*keys.Team, error) {
	var ts []*keys.Team
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		ts, err = listJSON[keys.Team](tx.Bucket(bucketTeams))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	return ts, nil
}

// ListUserPage implements keys.Store: the users bucket is in id order, so
// a cursor steps over offset records (not decoded) and decodes limit; the
// total is the bucket's sequence, which CreateUser and DeleteUser keep as
// the user count.
func (s *Store) ListUserPage(ctx context.Context, offset, limit int) ([]*keys.User, int, error) {
	if offset < 0 || limit < 1 {
		return nil, 0, fmt.Errorf("listing users: offset %d, limit %d: want offset >= 0, limit >= 1", offset, limit)
	}
	var (
		page  []*keys.User
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketUsers)
		total = int(b.Sequence())
		c := b.Cursor()
		n := 0
		for k, v := c.First(); k != nil && len(page) < limit; k, v = c.Next() {
			if n++; n <= offset {
				continue
			}
			u := new(keys.User)
			if err := decodeRecord(v, u); err != nil {
				return fmt.Errorf("decoding user %q: %w", k, err)
			}
			page = append(page, u)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing users: %w", err)
	}
	return page, total, nil
}
