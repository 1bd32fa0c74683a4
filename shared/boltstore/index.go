package boltstore

import (
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/keywaygw/keyway/shared/keys"
)

// The owner indexes (user_keys, team_keys, rotations) map an owner to a
// nested bucket whose keys are tokens: a user's or team's current keys, or
// the rotation records pointing at a current key. An owner's bucket is
// dropped when its last token goes, so the indexes never accumulate empty
// buckets. (The ordered listing indexes are in listing.go.)

// indexAdd records token under owner in the index bucket parent.
func indexAdd(tx *bbolt.Tx, parent []byte, owner, token string) error {
	b, err := tx.Bucket(parent).CreateBucketIfNotExists([]byte(owner))
	if err != nil {
		return fmt.Errorf("indexing key %s under %s %q: %w", abbrev(token), parent, owner, err)
	}
	return b.Put([]byte(token), []byte{})
}

// indexRemove drops token from owner's entry; a missing entry is not an
// error, so removal is safe to repeat.
func indexRemove(tx *bbolt.Tx, parent []byte, owner, token string) error {
	p := tx.Bucket(parent)
	b := p.Bucket([]byte(owner))
	if b == nil {
		return nil
	}
	if err := b.Delete([]byte(token)); err != nil {
		return fmt.Errorf("unindexing key %s under %s %q: %w", abbrev(token), parent, owner, err)
	}
	if k, _ := b.Cursor().First(); k == nil {
		if err := p.DeleteBucket([]byte(owner)); err != nil {
			return fmt.Errorf("dropping empty %s entry %q: %w", parent, owner, err)
		}
	}
	return nil
}

// indexTokens returns owner's tokens in byte order. The slice is a copy:
// bbolt's keys are only valid until the transaction ends, and callers
// modify the index while walking the result.
func indexTokens(tx *bbolt.Tx, parent []byte, owner string) []string {
	if owner == "" {
		return nil
	}
	b := tx.Bucket(parent).Bucket([]byte(owner))
	if b == nil {
		return nil
	}
	var out []string
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		out = append(out, string(k))
	}
	return out
}

// dropIndexEntry removes owner's whole entry.
func dropIndexEntry(tx *bbolt.Tx, parent []byte, owner string) error {
	p := tx.Bucket(parent)
	if p.Bucket([]byte(owner)) == nil {
		return nil
	}
	return p.DeleteBucket([]byte(owner))
}

// indexKey adds a current key to the owner, listing, alias and key id
// indexes. The caller has already checked that the alias is free.
func indexKey(tx *bbolt.Tx, k *keys.Key) error {
	if err := indexOwners(tx, k); err != nil {
		return err
	}
	if err := listKey(tx, k); err != nil {
		return err
	}
	if k.KeyAlias != "" {
		if err := tx.Bucket(bucketAliases).Put([]byte(k.KeyAlias), []byte(k.Token)); err != nil {
			return fmt.Errorf("indexing alias %q: %w", k.KeyAlias, err)
		}
	}
	if err := tx.Bucket(bucketKeyIDs).Put([]byte(keyID(k)), []byte(k.Token)); err != nil {
		return fmt.Errorf("indexing key id of %s: %w", abbrev(k.Token), err)
	}
	return nil
}

// indexOwners adds a current key to the user and team indexes.
func indexOwners(tx *bbolt.Tx, k *keys.Key) error {
	if k.UserID != "" {
		if err := indexAdd(tx, bucketUserKeys, k.UserID, k.Token); err != nil {
			return err
		}
	}
	if k.TeamID != "" {
		if err := indexAdd(tx, bucketTeamKeys, k.TeamID, k.Token); err != nil {
			return err
		}
	}
	return nil
}

// keyID is the stable id of a key: its TokenID, or its token for a record
// without one (written before TokenID existed).
func keyID(k *keys.Key) string {
	if k.TokenID != "" {
		return k.TokenID
	}
	return k.Token
}

// keyIDHolder is the token of the current key with stable id id, or "".
func keyIDHolder(tx *bbolt.Tx, id string) string {
	if id == "" {
		return ""
	}
	return string(tx.Bucket(bucketKeyIDs).Get([]byte(id)))
}

// unindexKey removes a current key from the listing, alias and key id
// indexes. The alias entry is removed only if it still names this key, so a
// stale record can never free an alias another key holds.
func unindexKey(tx *bbolt.Tx, k *keys.Key) error {
	if k.UserID != "" {
		if err := indexRemove(tx, bucketUserKeys, k.UserID, k.Token); err != nil {
			return err
		}
	}
	if k.TeamID != "" {
		if err := indexRemove(tx, bucketTeamKeys, k.TeamID, k.Token); err != nil {
			return err
		}
	}
	if err := unlistKey(tx, k); err != nil {
		return err
	}
	if k.KeyAlias != "" && aliasHolder(tx, k.KeyAlias) == k.Token {
		if err := tx.Bucket(bucketAliases).Delete([]byte(k.KeyAlias)); err != nil {
			return fmt.Errorf("unindexing alias %q: %w", k.KeyAlias, err)
		}
	}
	if keyIDHolder(tx, keyID(k)) == k.Token {
		if err := tx.Bucket(bucketKeyIDs).Delete([]byte(keyID(k))); err != nil {
			return fmt.Errorf("unindexing key id of %s: %w", abbrev(k.Token), err)
		}
	}
	return nil
}

// aliasHolder is the token of the current key holding alias, or "".
func aliasHolder(tx *bbolt.Tx, alias string) string {
	if alias == "" {
		return ""
	}
	return string(tx.Bucket(bucketAliases).Get([]byte(alias)))
}
