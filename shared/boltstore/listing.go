package boltstore

import (
	"context"
	"fmt"
	"strconv"

	"go.etcd.io/bbolt"

	"github.com/keywaygw/keyway/shared/keys"
)

// The listing indexes hold one entry per current key, named by the key's
// sort key (package keys), with its token as the value:
//
//	key_order                keys.KeyListOrder(k)   "U#<user>#<created>#<token>"
//	user_key_list/<user id>  keys.OwnerListOrder(k) "<created>#<token>"
//	team_key_list/<team id>  keys.OwnerListOrder(k)
//
// bbolt keeps keys in byte order, so a cursor walks a listing in the order
// ListKeyPage promises, the DynamoDB store's index order. Each listing
// bucket's sequence number is its entry count, kept in the same transaction
// as the entries, so a listing's total is one read rather than a walk.
// A user's or team's bucket is dropped when its last entry goes, so the
// indexes never accumulate empty buckets.
//
// They sit beside the owner indexes of the release before them (user_keys
// and team_keys, keyed by token; index.go), which every write still keeps:
// that release, run on this file after a rollback, then still finds a
// user's keys when it deletes the user. What it writes leaves these
// listings stale, which Open notices (stamp) and repairs (rebuildListings).

// ownerList is one owner listing bucket: parent's sub-bucket owner.
type ownerList struct {
	parent []byte
	owner  string
}

// ownerLists is the owner listings k has an entry in: its user's and its
// team's, when it has them.
func ownerLists(k *keys.Key) []ownerList {
	var out []ownerList
	if k.UserID != "" {
		out = append(out, ownerList{bucketUserKeyList, k.UserID})
	}
	if k.TeamID != "" {
		out = append(out, ownerList{bucketTeamKeyList, k.TeamID})
	}
	return out
}

// listKey adds k's listing entries.
func listKey(tx *bbolt.Tx, k *keys.Key) error {
	entry := keys.OwnerListOrder(k)
	for _, o := range ownerLists(k) {
		b, err := tx.Bucket(o.parent).CreateBucketIfNotExists([]byte(o.owner))
		if err != nil {
			return fmt.Errorf("indexing key %s under %s %q: %w", abbrev(k.Token), o.parent, o.owner, err)
		}
		if err := listAdd(b, entry, k.Token); err != nil {
			return fmt.Errorf("indexing key %s under %s %q: %w", abbrev(k.Token), o.parent, o.owner, err)
		}
	}
	if err := listAdd(tx.Bucket(bucketKeyOrder), keys.KeyListOrder(k), k.Token); err != nil {
		return fmt.Errorf("indexing key %s in %s: %w", abbrev(k.Token), bucketKeyOrder, err)
	}
	return nil
}

// unlistKey removes k's listing entries. k must be the stored record (its
// CreatedAt names the entries); removing what is not there is not an error.
func unlistKey(tx *bbolt.Tx, k *keys.Key) error {
	entry := keys.OwnerListOrder(k)
	for _, o := range ownerLists(k) {
		if err := ownerListRemove(tx, o.parent, o.owner, entry); err != nil {
			return fmt.Errorf("unindexing key %s under %s %q: %w", abbrev(k.Token), o.parent, o.owner, err)
		}
	}
	if err := listRemove(tx.Bucket(bucketKeyOrder), keys.KeyListOrder(k)); err != nil {
		return fmt.Errorf("unindexing key %s in %s: %w", abbrev(k.Token), bucketKeyOrder, err)
	}
	return nil
}

// ownerListRemove removes entry from owner's listing in parent, dropping
// the owner's bucket when it is left empty.
func ownerListRemove(tx *bbolt.Tx, parent []byte, owner, entry string) error {
	p := tx.Bucket(parent)
	b := p.Bucket([]byte(owner))
	if b == nil {
		return nil
	}
	if err := listRemove(b, entry); err != nil {
		return err
	}
	if k, _ := b.Cursor().First(); k == nil {
		return p.DeleteBucket([]byte(owner))
	}
	return nil
}

// listAdd puts entry → token into a listing bucket, counting it if new.
func listAdd(b *bbolt.Bucket, entry, token string) error {
	if b.Get([]byte(entry)) == nil {
		if _, err := b.NextSequence(); err != nil {
			return err
		}
	}
	return b.Put([]byte(entry), []byte(token))
}

// listRemove deletes entry from a listing bucket, uncounting it if it was
// there.
func listRemove(b *bbolt.Bucket, entry string) error {
	if b.Get([]byte(entry)) == nil {
		return nil
	}
	if err := b.Delete([]byte(entry)); err != nil {
		return err
	}
	if n := b.Sequence(); n > 0 {
		return b.SetSequence(n - 1)
	}
	return nil
}

// ListKeyPage implements keys.Store from the listing indexes: the cursor
// steps over offset entries (no record is read for them) and the page's
// limit records are the only ones decoded; the total is the listing
// bucket's count. With both a user and a team, the user's listing is
// walked and each entry looked up in the team's (same entry name), so that
// case costs the user's number of keys in lookups, still without decoding.
func (s *Store) ListKeyPage(ctx context.Context, f keys.KeyFilter, offset, limit int) ([]*keys.Key, int, error) {
	if offset < 0 || limit < 1 {
		return nil, 0, fmt.Errorf("listing keys: offset %d, limit %d: want offset >= 0, limit >= 1", offset, limit)
	}
	var (
		page  []*keys.Key
		total int
	)
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		var list, team *bbolt.Bucket
		switch {
		case f.UserID != "":
			list = tx.Bucket(bucketUserKeyList).Bucket([]byte(f.UserID))
			if f.TeamID != "" {
				if team = tx.Bucket(bucketTeamKeyList).Bucket([]byte(f.TeamID)); team == nil {
					return nil
				}
			}
		case f.TeamID != "":
			list = tx.Bucket(bucketTeamKeyList).Bucket([]byte(f.TeamID))
		default:
			list = tx.Bucket(bucketKeyOrder)
		}
		if list == nil {
			return nil
		}
		var tokens []string
		matched := 0
		c := list.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if team != nil && team.Get(k) == nil {
				continue
			}
			if matched++; matched > offset && len(tokens) < limit {
				tokens = append(tokens, string(v))
			}
			if team == nil && len(tokens) == limit {
				break
			}
		}
		total = matched
		if team == nil {
			total = int(list.Sequence())
		}
		b := tx.Bucket(bucketKeys)
		for _, tok := range tokens {
			k, err := getJSON[keys.Key](b, tok)
			if err != nil {
				return err
			}
			if k != nil { // always, as index and records change in one transaction
				page = append(page, k)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing keys: %w", err)
	}
	return page, total, nil
}

// metaLastTx holds the id of the last write transaction this store
// committed (stamp). Any other writer — above all the release before the
// listing indexes, run on this file after a rollback, which indexes keys
// by token and not in key_order — commits transactions of its own, so Open
// finds the id behind the file's and rebuilds the listings rather than
// trusting them. A write through s.db outside update and batch looks the
// same, and costs only that rebuild.
var metaLastTx = []byte("last_tx")

// stamp records tx as the last write of this store's code.
func stamp(tx *bbolt.Tx) error {
	return tx.Bucket(bucketMeta).Put(metaLastTx, []byte(strconv.Itoa(tx.ID())))
}

// stamped is fn, then stamp.
func stamped(fn func(*bbolt.Tx) error) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return stamp(tx)
	}
}

// lastWriter reports whether the file's last committed write transaction
// (the one before tx, a write transaction) was stamped by this code.
func lastWriter(tx *bbolt.Tx) bool {
	return string(tx.Bucket(bucketMeta).Get(metaLastTx)) == strconv.Itoa(tx.ID()-1)
}

// formatListings is the file format whose indexes are the ones above (and
// whose users bucket's sequence is the user count); files written before
// are re-indexed by rebuildListings when opened.
const formatListings = "4"

// rebuildListings drops the listing indexes and the owner indexes and
// builds them again from the key records, and recounts the users: they
// hold nothing that is not in the records, so this is safe to run on any
// file, and it runs in Open's transaction.
func rebuildListings(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketUserKeys, bucketTeamKeys, bucketUserKeyList, bucketTeamKeyList, bucketKeyOrder} {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return fmt.Errorf("dropping %s: %w", name, err)
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("creating %s: %w", name, err)
		}
	}
	err := tx.Bucket(bucketKeys).ForEach(func(tok, v []byte) error {
		var k keys.Key
		if err := decodeRecord(v, &k); err != nil {
			return fmt.Errorf("decoding %q: %w", abbrev(string(tok)), err)
		}
		if k.RotatedTo != "" {
			return nil
		}
		if err := indexOwners(tx, &k); err != nil {
			return err
		}
		return listKey(tx, &k)
	})
	if err != nil {
		return fmt.Errorf("re-indexing keys: %w", err)
	}
	// The users bucket's sequence is the user count (ListUserPage).
	users := tx.Bucket(bucketUsers)
	if err := users.SetSequence(uint64(users.Stats().KeyN)); err != nil {
		return fmt.Errorf("counting users: %w", err)
	}
	return tx.Bucket(bucketMeta).Put([]byte("format"), []byte(formatListings))
}
