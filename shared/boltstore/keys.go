package boltstore

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/keywaygw/keyway/shared/keys"
)

// checkCurrent refuses a record that only RotateKey may write: a caller that
// sets RotatedTo would create a rotation record missing from the rotations
// index, which DeleteKey and DeleteUser could then not find.
func checkCurrent(k *keys.Key) error {
	if err := requireID("key", k.Token); err != nil {
		return err
	}
	if k.RotatedTo != "" {
		return fmt.Errorf("key %s: rotated_to is set only by RotateKey", abbrev(k.Token))
	}
	return nil
}

// checkOwners refuses a key whose user or team has no record
// (keys.OwnerNotFoundError). prev is the stored record the write replaces (nil for a new
// key): an owner it already names is not checked again, so a key whose team
// was deleted can still be blocked or rotated. Called inside the write
// transaction, so DeleteUser (one transaction too) runs either wholly
// before it, and the key is refused, or wholly after it, and removes the
// key.
func checkOwners(tx *bbolt.Tx, k, prev *keys.Key) error {
	if k.UserID != "" && (prev == nil || prev.UserID != k.UserID) && tx.Bucket(bucketUsers).Get([]byte(k.UserID)) == nil {
		return fmt.Errorf("key %s: %w", abbrev(k.Token), &keys.OwnerNotFoundError{Field: "user_id", ID: k.UserID})
	}
	if k.TeamID != "" && (prev == nil || prev.TeamID != k.TeamID) && tx.Bucket(bucketTeams).Get([]byte(k.TeamID)) == nil {
		return fmt.Errorf("key %s: %w", abbrev(k.Token), &keys.OwnerNotFoundError{Field: "team_id", ID: k.TeamID})
	}
	return nil
}

// CreateKey stores k; ErrExists when the token or the alias is taken,
// ErrNotFound when its user or team has no record. The checks and the write
// share one transaction, so of two concurrent creates with one alias exactly
// one wins, and a key created while its user is deleted is either refused
// or deleted with the user.
func (s *Store) CreateKey(ctx context.Context, k *keys.Key) error {
	if err := checkCurrent(k); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		if b.Get([]byte(k.Token)) != nil {
			return fmt.Errorf("key %s: %w", abbrev(k.Token), keys.ErrExists)
		}
		if aliasHolder(tx, k.KeyAlias) != "" {
			return fmt.Errorf("key alias %q: %w", k.KeyAlias, keys.ErrExists)
		}
		if keyIDHolder(tx, keyID(k)) != "" {
			return fmt.Errorf("key id %s: %w", abbrev(keyID(k)), keys.ErrExists)
		}
		if err := checkOwners(tx, k, nil); err != nil {
			return err
		}
		if err := putJSON(b, k.Token, k, 1); err != nil {
			return fmt.Errorf("creating key %s: %w", abbrev(k.Token), err)
		}
		return indexKey(tx, k)
	})
	if err == nil {
		k.Version = 1
	}
	return err
}

// GetKey returns the record stored under token, current key or rotation
// record: one read, because it runs on every request.
func (s *Store) GetKey(ctx context.Context, token string) (*keys.Key, error) {
	var k *keys.Key
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var err error
		k, err = getKey(tx, token)
		return err
	})
	return k, err
}

// getKey reads token's record; ErrNotFound when there is none.
func getKey(tx *bbolt.Tx, token string) (*keys.Key, error) {
	k, err := getJSON[keys.Key](tx.Bucket(bucketKeys), token)
	if err != nil {
		return nil, fmt.Errorf("reading key %s: %w", abbrev(token), err)
	}
	if k == nil {
		return nil, fmt.Errorf("key %s: %w", abbrev(token), keys.ErrNotFound)
	}
	return k, nil
}

// getCurrentKey is getKey for operations that only apply to a current key:
// a rotation record is reported as not found, so that a grace secret can be
// neither updated nor rotated back into a full key.
func getCurrentKey(tx *bbolt.Tx, token string) (*keys.Key, error) {
	k, err := getKey(tx, token)
	if err != nil {
		return nil, err
	}
	if k.RotatedTo != "" {
		return nil, fmt.Errorf("key %s is a rotation record, not a current key: %w", abbrev(token), keys.ErrNotFound)
	}
	return k, nil
}

// GetKeyByAlias returns the current key holding alias.
func (s *Store) GetKeyByAlias(ctx context.Context, alias string) (*keys.Key, error) {
	var k *keys.Key
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		tok := aliasHolder(tx, alias)
		if tok == "" {
			return fmt.Errorf("key alias %q: %w", alias, keys.ErrNotFound)
		}
		var err error
		k, err = getCurrentKey(tx, tok)
		return err
	})
	return k, err
}

// UpdateKey replaces the current key stored under k.Token if its version
// is still k.Version (else ErrConflict), and moves it in the indexes when
// its user, team or alias changed. Taking an alias another key holds fails
// with ErrExists; a missing key or a rotation record fails with
// ErrNotFound, and so does moving the key to a user or team that has no
// record. Writing the key blocked removes its rotation records in the same
// transaction.
func (s *Store) UpdateKey(ctx context.Context, k *keys.Key) error {
	if err := checkCurrent(k); err != nil {
		return err
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		old, err := getCurrentKey(tx, k.Token)
		if err != nil {
			return err
		}
		if err := checkVersion("key", abbrev(k.Token), old.Version, k.Version); err != nil {
			return err
		}
		return replaceKey(tx, old, k)
	})
	if err == nil {
		k.Version++
	}
	return err
}

// replaceKey writes k over the current key old (same token) at the next
// version: the rules of UpdateKey, inside the caller's transaction.
func replaceKey(tx *bbolt.Tx, old, k *keys.Key) error {
	if err := checkCurrent(k); err != nil {
		return err
	}
	if k.Token != old.Token || keyID(k) != keyID(old) {
		return fmt.Errorf("key %s: token and token_id are set only at creation", abbrev(old.Token))
	}
	if h := aliasHolder(tx, k.KeyAlias); h != "" && h != k.Token {
		return fmt.Errorf("key alias %q: %w", k.KeyAlias, keys.ErrExists)
	}
	if err := checkOwners(tx, k, old); err != nil {
		return err
	}
	if err := unindexKey(tx, old); err != nil {
		return err
	}
	if err := putJSON(tx.Bucket(bucketKeys), k.Token, k, old.Version+1); err != nil {
		return fmt.Errorf("updating key %s: %w", abbrev(k.Token), err)
	}
	if k.Blocked {
		if _, err := deleteRotations(tx, k.Token); err != nil {
			return err
		}
	}
	return indexKey(tx, k)
}

// ModifyKey applies fn to the current key under token inside one write
// transaction, so nothing can be written between its read and its write.
func (s *Store) ModifyKey(ctx context.Context, token string, fn func(*keys.Key) error) (*keys.Key, error) {
	var out *keys.Key
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		old, err := getCurrentKey(tx, token)
		if err != nil {
			return err
		}
		k, err := getCurrentKey(tx, token) // fn's own copy
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
		if err := replaceKey(tx, old, k); err != nil {
			return err
		}
		k.Version = old.Version + 1
		out = k
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteKey removes the record stored under token. For a current key that
// includes every rotation record pointing at it, since an old secret would
// otherwise keep authenticating as a key that no longer exists. For a
// rotation record it removes just that record, ending its grace period.
func (s *Store) DeleteKey(ctx context.Context, token string) error {
	return s.update(ctx, func(tx *bbolt.Tx) error {
		k, err := getKey(tx, token)
		if err != nil {
			return err
		}
		if k.RotatedTo != "" {
			if err := tx.Bucket(bucketKeys).Delete([]byte(token)); err != nil {
				return fmt.Errorf("deleting key %s: %w", abbrev(token), err)
			}
			return indexRemove(tx, bucketRotations, k.RotatedTo, token)
		}
		_, err = deleteCurrentKey(tx, k)
		return err
	})
}

// EndGrace removes the rotation records pointing at the current key under
// token, in one transaction. Most keys have none: a read transaction says
// so first, sparing blocking a team of many keys a write (and an fsync) per
// key. (No record can start pointing at token once token is a current key:
// RotateKey creates them together with the key they point at.)
func (s *Store) EndGrace(ctx context.Context, token string) ([]string, error) {
	none := false
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		if _, err := getCurrentKey(tx, token); err != nil {
			return err
		}
		none = len(indexTokens(tx, bucketRotations, token)) == 0
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ending grace of key %s: %w", abbrev(token), err)
	}
	if none {
		return nil, nil
	}
	var ended []string
	err = s.update(ctx, func(tx *bbolt.Tx) error {
		if _, err := getCurrentKey(tx, token); err != nil {
			return err
		}
		var err error
		ended, err = deleteRotations(tx, token)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ending grace of key %s: %w", abbrev(token), err)
	}
	return ended, nil
}

// deleteCurrentKey removes k, its index entries and the rotation records
// pointing at it, and returns every token removed (k's first).
func deleteCurrentKey(tx *bbolt.Tx, k *keys.Key) ([]string, error) {
	if err := unindexKey(tx, k); err != nil {
		return nil, err
	}
	b := tx.Bucket(bucketKeys)
	if err := b.Delete([]byte(k.Token)); err != nil {
		return nil, fmt.Errorf("deleting key %s: %w", abbrev(k.Token), err)
	}
	old, err := deleteRotations(tx, k.Token)
	if err != nil {
		return nil, err
	}
	return append([]string{k.Token}, old...), nil
}

// deleteRotations removes every rotation record pointing at token (and the
// index entry listing them) and returns their tokens.
func deleteRotations(tx *bbolt.Tx, token string) ([]string, error) {
	b := tx.Bucket(bucketKeys)
	var removed []string
	for _, old := range indexTokens(tx, bucketRotations, token) {
		if b.Get([]byte(old)) == nil {
			continue // stale index entry; dropped below
		}
		if err := b.Delete([]byte(old)); err != nil {
			return nil, fmt.Errorf("deleting rotation record %s: %w", abbrev(old), err)
		}
		removed = append(removed, old)
	}
	if err := dropIndexEntry(tx, bucketRotations, token); err != nil {
		return nil, fmt.Errorf("deleting rotation index of key %s: %w", abbrev(token), err)
	}
	return removed, nil
}

// DeleteKeyByID removes the current key whose TokenID is tokenID, wherever
// regenerate has moved it, with its rotation records: the key_ids index
// names its token in the same transaction.
func (s *Store) DeleteKeyByID(ctx context.Context, tokenID string) ([]string, error) {
	var removed []string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		tok := keyIDHolder(tx, tokenID)
		if tok == "" {
			return fmt.Errorf("key id %s: %w", abbrev(tokenID), keys.ErrNotFound)
		}
		k, err := getCurrentKey(tx, tok)
		if err != nil {
			return err
		}
		removed, err = deleteCurrentKey(tx, k)
		return err
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// ListKeys returns current keys matching f, by CreatedAt then Token. A user
// or team filter reads only that owner's index entry; only the unfiltered
// listing walks every key.
func (s *Store) ListKeys(ctx context.Context, f keys.KeyFilter) ([]*keys.Key, error) {
	var out []*keys.Key
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		keep := func(k *keys.Key) {
			if k.RotatedTo == "" &&
				(f.UserID == "" || k.UserID == f.UserID) &&
				(f.TeamID == "" || k.TeamID == f.TeamID) {
				out = append(out, k)
			}
		}
		var toks []string
		switch {
		case f.UserID != "":
			toks = indexTokens(tx, bucketUserKeys, f.UserID)
		case f.TeamID != "":
			toks = indexTokens(tx, bucketTeamKeys, f.TeamID)
		default:
			all, err := listJSON[keys.Key](tx.Bucket(bucketKeys))
			for _, k := range all {
				keep(k)
			}
			return err
		}
		b := tx.Bucket(bucketKeys)
		for _, tok := range toks {
			k, err := getJSON[keys.Key](b, tok)
			if err != nil {
				return err
			}
			if k != nil {
				keep(k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	slicesSortKeys(out)
	return out, nil
}

// RotateKey moves the current key at oldToken to next.Token in one
// transaction (/key/regenerate). Everything is checked before anything is
// written (including that a changed user or team exists), and bbolt rolls
// back on any error, so a refused rotation changes nothing.
//
// With graceUntil, oldToken stays as a rotation record: a copy of the old
// key with RotatedTo = next.Token, Expires = graceUntil and no alias (the
// alias moves to next). Earlier rotation records pointing at oldToken are
// re-pointed at next.Token, keeping their own expiry, so every old secret
// reaches the current record in one hop and DeleteKey(next) finds them all.
// Without graceUntil, oldToken and those earlier records are removed, as
// DeleteKey(oldToken) would: rotating without grace means "stop every old
// secret now".
func (s *Store) RotateKey(ctx context.Context, oldToken string, next *keys.Key, graceUntil *time.Time) error {
	if err := checkCurrent(next); err != nil {
		return err
	}
	now := time.Now()
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		cur, err := getCurrentKey(tx, oldToken)
		if err != nil {
			return err
		}
		if err := checkVersion("key", abbrev(oldToken), cur.Version, next.Version); err != nil {
			return err
		}
		if next.TokenID == "" {
			next.TokenID = keyID(cur) // a record from before TokenID
		}
		if keyID(next) != keyID(cur) {
			return fmt.Errorf("key %s: token_id is set only at creation", abbrev(oldToken))
		}
		b := tx.Bucket(bucketKeys)
		if b.Get([]byte(next.Token)) != nil {
			return fmt.Errorf("key %s: %w", abbrev(next.Token), keys.ErrExists)
		}
		if h := aliasHolder(tx, next.KeyAlias); h != "" && h != oldToken {
			return fmt.Errorf("key alias %q: %w", next.KeyAlias, keys.ErrExists)
		}
		if err := checkOwners(tx, next, cur); err != nil {
			return err
		}

		earlier := indexTokens(tx, bucketRotations, oldToken)
		var live []*keys.Key
		for _, tok := range earlier {
			r, err := getJSON[keys.Key](b, tok)
			if err != nil {
				return err
			}
			if r == nil {
				continue // stale index entry: dropped with the bucket
			}
			if graceUntil == nil || r.Expired(now) {
				// No grace for the newest old secret: none for older
				// ones. An expired one is gone already in effect.
				if err := b.Delete([]byte(tok)); err != nil {
					return fmt.Errorf("deleting rotation record %s: %w", abbrev(tok), err)
				}
				continue
			}
			live = append(live, r)
		}
		if graceUntil != nil && len(live)+1 > keys.MaxGraceSecrets {
			return fmt.Errorf("key %s: %d old secrets are in a grace period (limit %d): %w",
				abbrev(oldToken), len(live), keys.MaxGraceSecrets, keys.ErrTooManyGraceSecrets)
		}

		if err := unindexKey(tx, cur); err != nil {
			return err
		}
		if err := putJSON(b, next.Token, next, 1); err != nil {
			return fmt.Errorf("rotating key %s: %w", abbrev(oldToken), err)
		}
		if err := indexKey(tx, next); err != nil {
			return err
		}
		if err := dropIndexEntry(tx, bucketRotations, oldToken); err != nil {
			return fmt.Errorf("rotating key %s: %w", abbrev(oldToken), err)
		}
		for _, r := range live {
			r.RotatedTo = next.Token
			if err := putJSON(b, r.Token, r, r.Version+1); err != nil {
				return fmt.Errorf("re-pointing rotation record %s: %w", abbrev(r.Token), err)
			}
			if err := indexAdd(tx, bucketRotations, next.Token, r.Token); err != nil {
				return err
			}
		}

		if graceUntil == nil {
			if err := b.Delete([]byte(oldToken)); err != nil {
				return fmt.Errorf("deleting key %s: %w", abbrev(oldToken), err)
			}
			return nil
		}
		rec := *cur
		rec.RotatedTo = next.Token
		rec.KeyAlias = ""
		until := *graceUntil
		rec.Expires = &until
		if err := putJSON(b, oldToken, &rec, cur.Version+1); err != nil {
			return fmt.Errorf("writing rotation record %s: %w", abbrev(oldToken), err)
		}
		return indexAdd(tx, bucketRotations, next.Token, oldToken)
	})
	if err == nil {
		next.Version = 1
	}
	return err
}
