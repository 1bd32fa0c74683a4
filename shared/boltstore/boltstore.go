// Package boltstore is the embedded keys.Store: one bbolt file, selected with
// KEYWAY_STORE=bolt:PATH. It is the local default and the store for
// single-machine self-hosting, so it must keep the same rules as the
// DynamoDB store (both pass keystest) without any server to run.
//
// Layout. Records are JSON, so the file can be inspected with bbolt's CLI and
// a field added to keys.Key needs no migration:
//
//	users      user id  -> keys.User
//	teams      team id  -> keys.Team
//	keys       token    -> keys.Key (current keys and rotation records)
//	key_aliases alias   -> token of the current key holding it
//	user_keys  user id  -> {token: ""}   (a nested bucket per user)
//	team_keys  team id  -> {token: ""}   (a nested bucket per team)
//	key_order  U#<user id>#<created>#<token> -> token   (every current key)
//	user_key_list user id -> {<created>#<token>: token} (a nested bucket per user)
//	team_key_list team id -> {<created>#<token>: token} (a nested bucket per team)
//	rotations  token    -> {old token: ""} rotation records pointing at token
//	key_ids    token id -> token of the current key with that TokenID
//	meta       "format" -> "3" (the listing indexes above; listing.go)
//	           "last_tx" -> id of the last write transaction this code
//	                        committed (another writer means a rebuild)
//
// Every record carries its version (keys.Store's optimistic lock) in an
// extra "_v" member of its JSON; a record written before versions existed
// reads as version 0.
//
// The indexes exist so that the request path (GetKey) is one read, so that
// a page of a listing reads only that page (listing.go), and so that
// deleting one user's keys, or a key's rotation records, never scans every
// key. Nested buckets rather than "owner\x00token"
// composite keys because ids are arbitrary strings: a prefix scan over
// composite keys could match another owner whose id contains the separator.
//
// Every change that touches more than one record runs in one bbolt write
// transaction, so a crash or a concurrent writer never sees half of it; bbolt
// allows one writer at a time, which also makes each check-then-write
// (ErrExists, ErrNotFound) race-free.
package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/keywaygw/keyway/shared/keys"
)

// Bucket names. They are part of the file format: renaming one orphans the
// data in existing files.
var (
	bucketUsers       = []byte("users")
	bucketTeams       = []byte("teams")
	bucketKeys        = []byte("keys")
	bucketAliases     = []byte("key_aliases")
	bucketUserKeys    = []byte("user_keys")
	bucketTeamKeys    = []byte("team_keys")
	bucketRotations   = []byte("rotations")
	bucketKeyIDs      = []byte("key_ids")
	bucketKeyOrder    = []byte("key_order")
	bucketUserKeyList = []byte("user_key_list")
	bucketTeamKeyList = []byte("team_key_list")
	bucketMeta        = []byte("meta")
)

var allBuckets = [][]byte{bucketUsers, bucketTeams, bucketKeys, bucketAliases, bucketUserKeys, bucketTeamKeys, bucketRotations, bucketKeyIDs, bucketKeyOrder, bucketUserKeyList, bucketTeamKeyList, bucketMeta}

// LockTimeout is how long Open waits for the file lock. bbolt's default is to
// wait forever, which turns "another keyway is already running on this file"
// into a silent hang at start-up; a second is long enough to ride out a
// process that is just exiting.
const LockTimeout = time.Second

// Store is a keys.Store backed by one bbolt file. It is safe for concurrent
// use: bbolt serialises writers and lets readers run alongside them.
type Store struct {
	db   *bbolt.DB
	path string
}

var _ keys.Store = (*Store)(nil)

// Open opens the store at path, creating the file (mode 0600: it holds key
// hashes and budgets) and its buckets if needed. bbolt takes an exclusive
// lock on the file, so a second process (or a second Open in this one) fails
// after LockTimeout with an error that names the path.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: LockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening key store %s: file is locked by another process (waited %s; is another keyway running on it?): %w", path, LockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening key store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		backfillIDs := tx.Bucket(bucketKeyIDs) == nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		if backfillIDs {
			// A file from before key_ids: index every current key once.
			err := tx.Bucket(bucketKeys).ForEach(func(k, v []byte) error {
				var r keys.Key
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("decoding %q: %w", k, err)
				}
				if r.RotatedTo != "" {
					return nil
				}
				return tx.Bucket(bucketKeyIDs).Put([]byte(keyID(&r)), []byte(r.Token))
			})
			if err != nil {
				return err
			}
		}
		if string(tx.Bucket(bucketMeta).Get([]byte("format"))) != formatListings || !lastWriter(tx) {
			if err := rebuildListings(tx); err != nil {
				return err
			}
		}
		return stamp(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("opening key store %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close releases the file and its lock. Calling it twice is harmless.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing key store %s: %w", s.path, err)
	}
	return nil
}

// view and update run fn in a read or write transaction. bbolt cannot cancel
// a transaction, so the context is only checked before starting one: a
// request that has already given up does not queue behind the writer lock.
func (s *Store) view(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func (s *Store) update(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(stamped(fn))
}

// batch is update through bbolt's Batch: concurrent calls may share one
// transaction (and one fsync), and fn may run more than once, so it must
// be idempotent.
func (s *Store) batch(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Batch(stamped(fn))
}

// abbrev is the only form of a token that goes into an error. Tokens are
// SHA-256 hashes, not secrets, but a short form keeps messages readable and
// keeps them harmless should a caller ever pass a raw secret by mistake.
func abbrev(token string) string {
	if len(token) > 8 {
		return token[:8]
	}
	return token
}

// version is the address of a record's Version, or nil for a value that
// has none.
func version(r any) *int64 {
	switch r := r.(type) {
	case *keys.User:
		return &r.Version
	case *keys.Team:
		return &r.Version
	case *keys.Key:
		return &r.Version
	}
	return nil
}

// decodeRecord decodes a stored record and its "_v" version into r.
func decodeRecord(v []byte, r any) error {
	if err := json.Unmarshal(v, r); err != nil {
		return err
	}
	if p := version(r); p != nil {
		var ver struct {
			V int64 `json:"_v"`
		}
		if err := json.Unmarshal(v, &ver); err != nil {
			return err
		}
		*p = ver.V
	}
	return nil
}

// getJSON decodes the record stored under id into a new T, or returns nil
// when there is none. Decoding into a fresh value is what makes every
// returned record the caller's own copy.
func getJSON[T any](b *bbolt.Bucket, id string) (*T, error) {
	v := b.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	r := new(T)
	if err := decodeRecord(v, r); err != nil {
		return nil, fmt.Errorf("decoding %q: %w", id, err)
	}
	return r, nil
}

// putJSON encodes r under id with version ver (r's own Version is not
// looked at). Encoding at call time is what keeps the store free of
// references into the caller's value.
func putJSON(b *bbolt.Bucket, id string, r any, ver int64) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding %q: %w", id, err)
	}
	if len(v) < 2 || v[len(v)-1] != '}' {
		return fmt.Errorf("encoding %q: not a JSON object", id)
	}
	sep := ","
	if len(v) == 2 {
		sep = ""
	}
	v = append(v[:len(v)-1], fmt.Sprintf(`%s"_v":%d}`, sep, ver)...)
	return b.Put([]byte(id), v)
}

// checkVersion fails with keys.ErrConflict unless the stored record's
// version is the one the caller read.
func checkVersion(kind, id string, stored, given int64) error {
	if stored != given {
		return fmt.Errorf("%s %s: version %d, stored %d: %w", kind, id, given, stored, keys.ErrConflict)
	}
	return nil
}

// listJSON decodes every record in b, in key (id) order.
func listJSON[T any](b *bbolt.Bucket) ([]*T, error) {
	var out []*T
	err := b.ForEach(func(k, v []byte) error {
		r := new(T)
		if err := decodeRecord(v, r); err != nil {
			return fmt.Errorf("decoding %q: %w", k, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// requireID refuses an empty id: bbolt cannot store an empty key, and a
// record nobody can name is a bug in the caller.
func requireID(kind, id string) error {
	if id == "" {
		return fmt.Errorf("%s: empty id", kind)
	}
	return nil
}

// slicesSortKeys orders keys as keys.Store documents: by CreatedAt, then
// Token, so that ties (bulk imports) still list deterministically.
func slicesSortKeys(ks []*keys.Key) {
	slices.SortFunc(ks, func(a, b *keys.Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Token, b.Token)
	})
}
