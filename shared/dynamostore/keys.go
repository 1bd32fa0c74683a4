package dynamostore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keywaygw/keyway/shared/keys"
)

// condKeyIDOf is the condition on a key id item that it is absent or still
// names the token :t.
const condKeyIDOf = "attribute_not_exists(pk) OR " + attrKeyToken + " = :t"

// Expression pieces for key items.
var (
	namesVer    = map[string]string{"#v": attrVersion}
	condAliasOf = "attribute_not_exists(pk) OR " + attrAliasToken + " = :t"
)

func verVals(v int64) item { return item{":v": n(v)} }

// getKeyRecord reads the key item under token (strongly consistent).
func (st *Store) getKeyRecord(ctx context.Context, token string) (*keyRecord, error) {
	if token == "" {
		return nil, keys.ErrNotFound
	}
	it, err := st.getItem(ctx, keyPK(token))
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, keys.ErrNotFound
	}
	return decodeKey(it)
}

// GetKey implements keys.Store: one strongly consistent GetItem by token.
// Expiry is the caller's check (Key.Expired); an expired item may linger
// until DynamoDB's TTL sweep removes it.
func (st *Store) GetKey(ctx context.Context, token string) (*keys.Key, error) {
	rec, err := st.getKeyRecord(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("getting key: %w", err)
	}
	return rec.key, nil
}

// GetKeyByAlias implements keys.Store: the alias item, then the key.
func (st *Store) GetKeyByAlias(ctx context.Context, alias string) (*keys.Key, error) {
	if alias == "" {
		return nil, fmt.Errorf("getting key by alias: %w", keys.ErrNotFound)
	}
	it, err := st.getItem(ctx, aliasPK(alias))
	if err != nil {
		return nil, fmt.Errorf("getting key by alias %q: %w", alias, err)
	}
	if it == nil {
		return nil, fmt.Errorf("getting key by alias %q: %w", alias, keys.ErrNotFound)
	}
	tok, _ := it[attrAliasToken].(*types.AttributeValueMemberS)
	if tok == nil {
		return nil, fmt.Errorf("getting key by alias %q: alias item without token", alias)
	}
	rec, err := st.getKeyRecord(ctx, tok.Value)
	if err == nil && (rec.key.RotatedTo != "" || rec.key.KeyAlias != alias) {
		err = keys.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("getting key by alias %q: %w", alias, err)
	}
	return rec.key, nil
}

// ownerChecks returns the condition checks that make a write of k fail
// with a keys.OwnerNotFoundError when its user or team has no item: a ConditionCheck
// attribute_exists(pk) on USER#<id> and TEAM#<id>, in the same transaction
// as the write, so that a key created while its user is being deleted is
// either refused or seen (and deleted) by DeleteUser. prev is the stored
// record the write replaces (nil for a new key): an owner it already names
// is not checked again, so a key whose team was deleted can still be
// blocked or rotated.
func (st *Store) ownerChecks(k, prev *keys.Key) []op {
	var ops []op
	if k.UserID != "" && (prev == nil || prev.UserID != k.UserID) {
		ops = append(ops, st.check(userPK(k.UserID), condPresent, &keys.OwnerNotFoundError{Field: "user_id", ID: k.UserID}))
	}
	if k.TeamID != "" && (prev == nil || prev.TeamID != k.TeamID) {
		ops = append(ops, st.check(teamPK(k.TeamID), condPresent, &keys.OwnerNotFoundError{Field: "team_id", ID: k.TeamID}))
	}
	return ops
}

// CreateKey implements keys.Store: a conditional put of the key; in one
// transaction with a conditional put of its alias item when it has one, and
// with condition checks that its user and team exist when it names them.
func (st *Store) CreateKey(ctx context.Context, k *keys.Key) error {
	if k.Token == "" {
		return fmt.Errorf("creating key: empty token")
	}
	ops, err := st.createKeyOps(k)
	if err != nil {
		return fmt.Errorf("creating key: %w", err)
	}
	ops = append(ops, st.ownerChecks(k, nil)...)
	err = retryConflicts(func() error {
		return st.claimingAlias(ctx, aliasOf(k), st.write(ctx, ops))
	})
	if err != nil {
		return fmt.Errorf("creating key: %w", err)
	}
	k.Version = 1
	return nil
}

// createKeyOps are the puts that create k: the key item, its alias item
// (if any) and, for a current key, its key id item, each only where
// nothing is stored (keys.ErrExists).
func (st *Store) createKeyOps(k *keys.Key) ([]op, error) {
	it, err := encodeKey(k, 1, nil)
	if err != nil {
		return nil, err
	}
	ops := []op{st.put(it, condAbsent, nil, nil, keys.ErrExists)}
	if aliasOf(k) != "" {
		ops = append(ops, st.put(encodeAlias(k.KeyAlias, k.Token), condAbsent, nil, nil, keys.ErrExists))
	}
	if k.RotatedTo == "" {
		ops = append(ops, st.put(encodeKeyID(k), condAbsent, nil, nil, keys.ErrExists))
	}
	return ops, nil
}

// claimingAlias passes on err, the result of a write that claims alias,
// except when err is keys.ErrExists and the alias item is stale: its key is
// gone (DynamoDB's TTL removed the expired key, which does not remove the
// alias item) or no longer holds the alias. Then the stale item is deleted
// and errConflict asks the caller to try again. An alias is free exactly when
// no key item holds it.
func (st *Store) claimingAlias(ctx context.Context, alias string, err error) error {
	if alias == "" || !errors.Is(err, keys.ErrExists) {
		return err
	}
	it, gerr := st.getItem(ctx, aliasPK(alias))
	if gerr != nil {
		return gerr
	}
	if it == nil {
		return err // free: the conflict was elsewhere (the token)
	}
	holder := attrString(it, attrAliasToken)
	rec, gerr := st.getKeyRecord(ctx, holder)
	switch {
	case errors.Is(gerr, keys.ErrNotFound):
	case gerr != nil:
		return gerr
	case rec.key.RotatedTo == "" && rec.key.KeyAlias == alias:
		return err // really taken
	}
	derr := st.write(ctx, []op{st.del(aliasPK(alias), attrAliasToken+" = :t", nil, item{":t": s(holder)}, errConflict)})
	if derr != nil && !errors.Is(derr, errConflict) {
		return derr
	}
	return errConflict
}

// UpdateKey implements keys.Store. It reads the item, checks that its
// version is still k.Version (keys.ErrConflict otherwise), then replaces it
// under a condition on that version (the rotation back-references it
// carries must survive), claiming and releasing alias items in the same
// transaction, with a check that a changed user or team exists. Writing
// the key blocked deletes its rotation records in the same transaction.
func (st *Store) UpdateKey(ctx context.Context, k *keys.Key) error {
	if k.RotatedTo != "" {
		return fmt.Errorf("updating key: rotated_to is set only by RotateKey")
	}
	err := retryConflicts(func() error {
		cur, err := st.getKeyRecord(ctx, k.Token)
		if err != nil {
			return err
		}
		if cur.key.RotatedTo != "" {
			// A grace secret must never become a full key again.
			return keys.ErrNotFound
		}
		if cur.version != k.Version {
			return fmt.Errorf("version %d, stored %d: %w", k.Version, cur.version, keys.ErrConflict)
		}
		return st.replaceKey(ctx, cur, k)
	})
	if err != nil {
		return fmt.Errorf("updating key: %w", err)
	}
	k.Version++
	return nil
}

// replaceKey writes k over the current key cur (as read) under a condition
// on cur's version: errConflict when it changed since.
func (st *Store) replaceKey(ctx context.Context, cur *keyRecord, k *keys.Key) error {
	if k.RotatedTo != "" {
		return fmt.Errorf("rotated_to is set only by RotateKey")
	}
	if k.Token != cur.key.Token || keyID(k) != keyID(cur.key) {
		return fmt.Errorf("token and token_id are set only at creation")
	}
	back := cur.rotatedFrom
	var live []string
	if k.Blocked {
		var err error
		if live, err = st.liveRotations(ctx, k.Token, cur.rotatedFrom); err != nil {
			return err
		}
		back = nil
	}
	it, err := encodeKey(k, cur.version+1, back)
	if err != nil {
		return err
	}
	ops := []op{st.put(it, "#v = :v", namesVer, verVals(cur.version), errConflict)}
	ops = append(ops, st.moveAlias(cur.key, k.Token, aliasOf(k))...)
	ops = append(ops, st.ownerChecks(k, cur.key)...)
	for _, r := range live {
		ops = append(ops, st.delRotation(r, k.Token))
	}
	return st.claimingAlias(ctx, newAlias(cur.key, aliasOf(k)), st.write(ctx, ops))
}

// backoff waits before try number try (none before the first) a random
// while that grows with try: writers that keep meeting must fall out of
// lock-step, or one of them never gets its read and write in between the
// other's.
func backoff(ctx context.Context, try int) error {
	if try == 0 {
		return nil
	}
	return sleep(ctx, time.Duration(rand.Int64N(int64(time.Millisecond)<<min(try, 5))))
}

// maxModifyTries bounds ModifyKey, ModifyUser and ModifyTeam: each try is
// one read and one conditional write back to back, retried at once when
// another write came in between.
const maxModifyTries = 32

// ModifyKey implements keys.Store: read, fn, write conditional on the
// version read, again from a fresh read when another write came between.
func (st *Store) ModifyKey(ctx context.Context, token string, fn func(*keys.Key) error) (*keys.Key, error) {
	var out *keys.Key
	var err error
	for try := range maxModifyTries {
		if err = backoff(ctx, try); err != nil {
			break
		}
		var it item
		if it, err = st.getItem(ctx, keyPK(token)); err != nil {
			break
		}
		if it == nil {
			err = keys.ErrNotFound
			break
		}
		var cur, mine *keyRecord
		if cur, err = decodeKey(it); err != nil {
			break
		}
		if cur.key.RotatedTo != "" {
			err = keys.ErrNotFound // a grace secret is not a key to change
			break
		}
		if mine, err = decodeKey(it); err != nil { // fn's own copy
			break
		}
		if err = fn(mine.key); err != nil {
			return nil, err
		}
		if err = st.replaceKey(ctx, cur, mine.key); !errors.Is(err, errConflict) {
			out = mine.key
			out.Version = cur.version + 1
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("modifying key: %w", err)
	}
	return out, nil
}

// aliasOf is the alias a record holds: rotation records hold none.
func aliasOf(k *keys.Key) string {
	if k.RotatedTo != "" {
		return ""
	}
	return k.KeyAlias
}

// newAlias is next when it is an alias cur does not hold yet, else "".
func newAlias(cur *keys.Key, next string) string {
	if next == aliasOf(cur) {
		return ""
	}
	return next
}

// moveAlias returns the writes that move the alias held by cur to the alias
// next (held by token): release cur's, claim next's. Claiming an alias that
// another key holds fails with keys.ErrExists.
func (st *Store) moveAlias(cur *keys.Key, token, next string) []op {
	old := aliasOf(cur)
	switch {
	case old == next && (old == "" || cur.Token == token):
		return nil
	case old == next:
		// Same alias, possibly a new token (regenerate): re-point it.
		return []op{st.put(encodeAlias(next, token), condAliasOf, nil, item{":t": s(cur.Token)}, keys.ErrExists)}
	}
	var ops []op
	if old != "" {
		ops = append(ops, st.del(aliasPK(old), condAliasOf, nil, item{":t": s(cur.Token)}, errConflict))
	}
	if next != "" {
		ops = append(ops, st.put(encodeAlias(next, token), condAliasOf, nil, item{":t": s(token)}, keys.ErrExists))
	}
	return ops
}

// DeleteKey implements keys.Store: the key, its alias item, its key id
// item and every rotation record pointing at it, in one transaction.
func (st *Store) DeleteKey(ctx context.Context, token string) error {
	err := retryConflicts(func() error {
		cur, err := st.getKeyRecord(ctx, token)
		if err != nil {
			return err
		}
		ops, err := st.deleteKeyOps(ctx, cur)
		if err != nil {
			return err
		}
		return st.write(ctx, ops)
	})
	if err != nil {
		return fmt.Errorf("deleting key: %w", err)
	}
	return nil
}

// deleteKeyOps are the writes that delete the record cur (as read, version
// checked): for a current key also its alias item, its key id item and
// its unexpired rotation records (expired ones no longer authenticate and
// TTL removes them).
func (st *Store) deleteKeyOps(ctx context.Context, cur *keyRecord) ([]op, error) {
	token := cur.key.Token
	live, err := st.liveRotations(ctx, token, cur.rotatedFrom)
	if err != nil {
		return nil, err
	}
	ops := []op{st.del(keyPK(token), "#v = :v", namesVer, verVals(cur.version), errConflict)}
	ops = append(ops, st.moveAlias(cur.key, token, "")...)
	if cur.key.RotatedTo == "" {
		ops = append(ops, st.del(keyIDPK(keyID(cur.key)), condKeyIDOf, nil, item{":t": s(token)}, errConflict))
	}
	for _, r := range live {
		ops = append(ops, st.delRotation(r, token))
	}
	return ops, nil
}

// EndGrace implements keys.Store: one transaction deletes the unexpired
// rotation records and rewrites the key without its back-references,
// conditional on the version read (read again when another write came in
// between). Expired records no longer authenticate; TTL removes them.
func (st *Store) EndGrace(ctx context.Context, token string) ([]string, error) {
	var ended []string
	err := retryConflicts(func() error {
		cur, err := st.getKeyRecord(ctx, token)
		if err != nil {
			return err
		}
		if cur.key.RotatedTo != "" {
			return keys.ErrNotFound
		}
		if len(cur.rotatedFrom) == 0 {
			ended = nil
			return nil
		}
		if ended, err = st.liveRotations(ctx, token, cur.rotatedFrom); err != nil {
			return err
		}
		it, err := encodeKey(cur.key, cur.version+1, nil)
		if err != nil {
			return err
		}
		ops := []op{st.put(it, "#v = :v", namesVer, verVals(cur.version), errConflict)}
		for _, r := range ended {
			ops = append(ops, st.delRotation(r, token))
		}
		return st.write(ctx, ops)
	})
	if err != nil {
		return nil, fmt.Errorf("ending grace of key: %w", err)
	}
	return ended, nil
}

// DeleteKeyByID implements keys.Store: the key id item names the current
// token; the delete is conditional on the key's version and on the key id
// item still naming that token, so a regenerate in between makes it read
// again rather than miss the key. A key from before key id items (none
// written for it yet) is found under its id as token, or through the
// rotation record its id left behind.
func (st *Store) DeleteKeyByID(ctx context.Context, tokenID string) ([]string, error) {
	if tokenID == "" {
		return nil, fmt.Errorf("deleting key: %w", keys.ErrNotFound)
	}
	var removed []string
	err := retryConflicts(func() error {
		it, err := st.getItem(ctx, keyIDPK(tokenID))
		if err != nil {
			return err
		}
		tok := tokenID
		if it != nil {
			tok = attrString(it, attrKeyToken)
		}
		cur, err := st.getKeyRecord(ctx, tok)
		if err == nil && it == nil && cur.key.RotatedTo != "" {
			cur, err = st.getKeyRecord(ctx, cur.key.RotatedTo)
		}
		stale := err == nil && (cur.key.RotatedTo != "" || keyID(cur.key) != tokenID)
		if it != nil && (errors.Is(err, keys.ErrNotFound) || stale) {
			// The key moved (regenerate) between the two reads: the key
			// id item names its new token now.
			return errConflict
		}
		if err != nil {
			return err
		}
		if stale {
			return keys.ErrNotFound
		}
		ops, err := st.deleteKeyOps(ctx, cur)
		if err != nil {
			return err
		}
		if err := st.write(ctx, ops); err != nil {
			return err
		}
		removed = []string{cur.key.Token}
		for _, o := range ops[1:] {
			if d := o.w.Delete; d != nil {
				if pk := attrString(d.Key, attrPK); strings.HasPrefix(pk, prefixKey) {
					removed = append(removed, strings.TrimPrefix(pk, prefixKey))
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deleting key %s: %w", tokenID[:min(8, len(tokenID))], err)
	}
	return removed, nil
}

// delRotation deletes the rotation record r if it still points at target
// (or is already gone).
func (st *Store) delRotation(r, target string) op {
	return st.del(keyPK(r), "attribute_not_exists(pk) OR "+attrRotatedTo+" = :to", nil, item{":to": s(target)}, errConflict)
}

// RotateKey implements keys.Store. One transaction puts next (failing with
// keys.ErrExists if its token is taken), replaces oldToken by a rotation
// record (or deletes it), moves the alias, and checks that a changed user or
// team exists. The rotation records that
// pointed at oldToken are re-pointed at next.Token with a grace period (each
// keeps its own expiry, so every old secret reaches the current record in
// one hop) and deleted without one. A rotation record cannot be rotated:
// keys.ErrNotFound.
func (st *Store) RotateKey(ctx context.Context, oldToken string, next *keys.Key, graceUntil *time.Time) error {
	if next.Token == oldToken {
		return fmt.Errorf("rotating key: new token equals old: %w", keys.ErrExists)
	}
	if next.Token == "" {
		return fmt.Errorf("rotating key: empty token")
	}
	if next.RotatedTo != "" {
		return fmt.Errorf("rotating key: rotated_to is set only by RotateKey")
	}
	err := retryConflicts(func() error {
		cur, err := st.getKeyRecord(ctx, oldToken)
		if err != nil {
			return err
		}
		if cur.key.RotatedTo != "" {
			// An old secret in its grace period is not a key to rotate.
			return keys.ErrNotFound
		}
		if cur.version != next.Version {
			return fmt.Errorf("version %d, stored %d: %w", next.Version, cur.version, keys.ErrConflict)
		}
		if next.TokenID == "" {
			next.TokenID = keyID(cur.key) // a record from before TokenID
		}
		if keyID(next) != keyID(cur.key) {
			return fmt.Errorf("token_id is set only at creation")
		}
		live, err := st.liveRotations(ctx, oldToken, cur.rotatedFrom)
		if err != nil {
			return err
		}
		if slices.Contains(live, next.Token) {
			return keys.ErrExists // next.Token is an old secret of this key
		}
		var back []string // rotation records that will point at next
		if graceUntil != nil {
			back = append(slices.Clone(live), oldToken)
		}
		if len(back) > keys.MaxGraceSecrets { // all moved in the one transaction below
			return fmt.Errorf("%d old secrets are still in a grace period (limit %d): %w", len(back)-1, keys.MaxGraceSecrets, keys.ErrTooManyGraceSecrets)
		}
		nextItem, err := encodeKey(next, 1, back)
		if err != nil {
			return err
		}
		ops := []op{st.put(nextItem, condAbsent, nil, nil, keys.ErrExists)}
		if graceUntil != nil {
			rot := *cur.key
			rot.RotatedTo = next.Token
			rot.Expires = graceUntil
			rot.KeyAlias = ""
			rotItem, err := encodeKey(&rot, cur.version+1, nil)
			if err != nil {
				return err
			}
			ops = append(ops, st.put(rotItem, "#v = :v", namesVer, verVals(cur.version), errConflict))
		} else {
			ops = append(ops, st.del(keyPK(oldToken), "#v = :v", namesVer, verVals(cur.version), errConflict))
		}
		ops = append(ops, st.moveAlias(cur.key, next.Token, aliasOf(next))...)
		ops = append(ops, st.put(encodeKeyID(next), condKeyIDOf, nil, item{":t": s(oldToken)}, errConflict))
		ops = append(ops, st.ownerChecks(next, cur.key)...)
		for _, r := range live {
			if graceUntil == nil {
				// No grace for the newest old secret: none for older ones.
				ops = append(ops, st.delRotation(r, oldToken))
				continue
			}
			ops = append(ops, st.update(keyPK(r), "SET "+attrRotatedTo+" = :next", attrRotatedTo+" = :old", nil,
				item{":next": s(next.Token), ":old": s(oldToken)}, errConflict))
		}
		return st.claimingAlias(ctx, newAlias(cur.key, aliasOf(next)), st.write(ctx, ops))
	})
	if err != nil {
		return fmt.Errorf("rotating key: %w", err)
	}
	next.Version = 1
	return nil
}

// liveRotations returns those of candidates (a key's rotated_from set) that
// still exist, point at target and have not expired: TTL removes expired
// rotation records without updating the set, and an expired one no longer
// authenticates, so it is neither counted nor carried over.
func (st *Store) liveRotations(ctx context.Context, target string, candidates []string) ([]string, error) {
	if len(candidates) == 0 {
		return nil, nil
	}
	items, err := st.batchGet(ctx, candidates, aws.String("#t, #r, #x"), map[string]string{"#t": attrToken, "#r": attrRotatedTo, "#x": attrTTL})
	if err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	var live []string
	for _, it := range items {
		tok, _ := it[attrToken].(*types.AttributeValueMemberS)
		to, _ := it[attrRotatedTo].(*types.AttributeValueMemberS)
		if x, ok := it[attrTTL].(*types.AttributeValueMemberN); ok {
			if sec, err := strconv.ParseInt(x.Value, 10, 64); err == nil && sec <= now {
				continue // expired (ttl rounds the expiry up)
			}
		}
		if tok != nil && to != nil && to.Value == target {
			live = append(live, tok.Value)
		}
	}
	slices.Sort(live)
	return live, nil
}

// batchGet reads the key items of tokens with strongly consistent
// BatchGetItem calls (100 keys each), retrying unprocessed keys a bounded
// number of times. Missing items are left out.
func (st *Store) batchGet(ctx context.Context, tokens []string, projection *string, names map[string]string) ([]item, error) {
	var items []item
	for chunk := range slices.Chunk(tokens, 100) {
		ka := types.KeysAndAttributes{
			Keys:                     make([]map[string]types.AttributeValue, len(chunk)),
			ConsistentRead:           aws.Bool(true),
			ProjectionExpression:     projection,
			ExpressionAttributeNames: names,
		}
		for i, c := range chunk {
			ka.Keys[i] = keyPK(c)
		}
		req := map[string]types.KeysAndAttributes{st.table: ka}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if attempt > 5 {
					return nil, fmt.Errorf("batch get item: keys still unprocessed after %d attempts", attempt)
				}
				if err := sleep(ctx, time.Duration(attempt)*50*time.Millisecond); err != nil {
					return nil, err
				}
			}
			out, err := st.client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("batch get item: %w", err)
			}
			items = append(items, out.Responses[st.table]...)
			req = out.UnprocessedKeys
		}
	}
	return items, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryConflicts runs a read-modify-write until it does not lose a race,
// at most maxConflictRetries times.
func retryConflicts(f func() error) error {
	var err error
	for range maxConflictRetries {
		if err = f(); !errors.Is(err, errConflict) {
			return err
		}
	}
	return err
}

// ListKeys implements keys.Store with one paginated Query (keyListQuery),
// decoding every key it finds.
//
// With a user or a team, the Query also returns their rotation records,
// and a current key that one points at but the Query did not return is
// read directly (strongly consistent). The indexes are eventually
// consistent, and a regenerate changes two items in them: for a moment
// they can show the old token as a rotation record but not yet the new
// key. Without this, a key regenerated just before its user or team is
// blocked would be missing from the listing the block ends grace periods
// from, and its old secret would work again after the unblock. (Rotation
// records written before they were put in gsi2 are not there; they end
// with their grace periods.)
func (st *Store) ListKeys(ctx context.Context, f keys.KeyFilter) ([]*keys.Key, error) {
	follow := f.UserID != "" || f.TeamID != ""
	items, err := st.query(ctx, keyListQuery(f, follow))
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	out := make([]*keys.Key, 0, len(items))
	listed := map[string]bool{}
	var pointedAt []string
	for _, it := range items {
		rec, err := decodeKey(it)
		if err != nil {
			return nil, fmt.Errorf("listing keys: %w", err)
		}
		if rec.key.RotatedTo != "" {
			pointedAt = append(pointedAt, rec.key.RotatedTo)
			continue
		}
		out = append(out, rec.key)
		listed[rec.key.Token] = true
	}
	for _, tok := range pointedAt {
		if listed[tok] {
			continue
		}
		listed[tok] = true
		rec, err := st.getKeyRecord(ctx, tok)
		if errors.Is(err, keys.ErrNotFound) {
			continue // deleted since; its rotation record awaits TTL
		}
		if err != nil {
			return nil, fmt.Errorf("listing keys: %w", err)
		}
		if k := rec.key; k.RotatedTo == "" && (f.UserID == "" || k.UserID == f.UserID) && (f.TeamID == "" || k.TeamID == f.TeamID) {
			out = append(out, k)
		}
	}
	sortKeys(out)
	return out, nil
}

// ListKeyPage implements keys.Store. The page is read from the index in
// its own order (keys.KeyListOrder / keys.OwnerListOrder): the Query walks
// forward until it has passed offset matching keys and collected limit
// more, decoding only those, so the items read grow with offset+limit, not
// with the number of keys. The total is a second Query with Select COUNT
// over the same condition and filter: DynamoDB returns counts, not items,
// but still reads the whole listing (one round trip per 1 MB of index, and
// its read units); the store keeps no counter item, which every key write
// would then contend on.
func (st *Store) ListKeyPage(ctx context.Context, f keys.KeyFilter, offset, limit int) ([]*keys.Key, int, error) {
	if offset < 0 || limit < 1 {
		return nil, 0, fmt.Errorf("listing keys: offset %d, limit %d: want offset >= 0, limit >= 1", offset, limit)
	}
	page, total, err := queryPage(ctx, st, keyListQuery(f, false), offset, limit, func(it item) (*keys.Key, error) {
		rec, err := decodeKey(it)
		if err != nil {
			return nil, err
		}
		return rec.key, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing keys: %w", err)
	}
	return page, total, nil
}

// queryPage is ListKeyPage and ListUserPage: it walks in forward until it
// has passed offset items and decoded limit more, then runs in again with
// Select COUNT for the total. Both queries are eventually consistent, and
// an item may be written between them: the total is never less than the
// items the first one saw.
func queryPage[T any](ctx context.Context, st *Store, in *dynamodb.QueryInput, offset, limit int, decode func(item) (T, error)) ([]T, int, error) {
	in.TableName = aws.String(st.table)
	var page []T
	seen := 0
	for p := dynamodb.NewQueryPaginator(st.client, in); p.HasMorePages() && len(page) < limit; {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("query %s: %w", aws.ToString(in.IndexName), err)
		}
		for _, it := range out.Items {
			if seen++; seen <= offset {
				continue
			}
			v, err := decode(it)
			if err != nil {
				return nil, 0, err
			}
			if page = append(page, v); len(page) == limit {
				break
			}
		}
	}
	count := *in
	count.ExclusiveStartKey = nil
	count.Select = types.SelectCount
	total := 0
	for p := dynamodb.NewQueryPaginator(st.client, &count); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("count query %s: %w", aws.ToString(in.IndexName), err)
		}
		total += int(out.Count)
	}
	return page, max(total, seen), nil
}

// keyListQuery is the Query for the current keys matching f (and, with
// rotated, for the rotation records in the same index too): gsi1 (the KEYS
// partition, narrowed to the user's sort-key prefix) when f.UserID is set,
// gsi2 (the team's partition) when only f.TeamID is, gsi1's whole KEYS
// partition otherwise.
func keyListQuery(f keys.KeyFilter, rotated bool) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		ExpressionAttributeNames:  map[string]string{},
		ExpressionAttributeValues: item{},
	}
	var filter []string
	if !rotated {
		in.ExpressionAttributeNames["#rt"] = attrRotatedTo
		filter = append(filter, "attribute_not_exists(#rt)")
	}
	switch {
	case f.UserID != "":
		in.IndexName = aws.String(IndexByUser)
		in.KeyConditionExpression = aws.String("gsi1pk = :p AND begins_with(gsi1sk, :u)")
		in.ExpressionAttributeValues[":p"] = s(gsiAllKeys)
		in.ExpressionAttributeValues[":u"] = s(userKeysPrefix(f.UserID))
		in.ExpressionAttributeValues[":uid"] = s(f.UserID)
		in.ExpressionAttributeNames["#uid"] = attrUserID
		filter = append(filter, "#uid = :uid")
		if f.TeamID != "" {
			in.ExpressionAttributeValues[":tid"] = s(f.TeamID)
			in.ExpressionAttributeNames["#tid"] = attrTeamID
			filter = append(filter, "#tid = :tid")
		}
	case f.TeamID != "":
		in.IndexName = aws.String(IndexByTeam)
		in.KeyConditionExpression = aws.String("gsi2pk = :p")
		in.ExpressionAttributeValues[":p"] = s(prefixTeam + f.TeamID)
	default:
		in.IndexName = aws.String(IndexByUser)
		in.KeyConditionExpression = aws.String("gsi1pk = :p")
		in.ExpressionAttributeValues[":p"] = s(gsiAllKeys)
	}
	if len(filter) > 0 {
		in.FilterExpression = aws.String(strings.Join(filter, " AND "))
	}
	if len(in.ExpressionAttributeNames) == 0 {
		in.ExpressionAttributeNames = nil
	}
	return in
}

func sortKeys(ks []*keys.Key) {
	slices.SortFunc(ks, func(a, b *keys.Key) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.Token, b.Token)
	})
}

// userKeyRecords returns every key item of userID, rotation records
// included. gsi1 (eventually consistent) finds the tokens; a strongly
// consistent BatchGetItem then reads the items themselves, so entries the
// index still shows after a delete, or shows with stale attributes, do not
// count.
func (st *Store) userKeyRecords(ctx context.Context, userID string) ([]*keyRecord, error) {
	items, err := st.query(ctx, &dynamodb.QueryInput{
		IndexName:                 aws.String(IndexByUser),
		KeyConditionExpression:    aws.String("gsi1pk = :p AND begins_with(gsi1sk, :u)"),
		FilterExpression:          aws.String("#uid = :uid"),
		ProjectionExpression:      aws.String("#tok"),
		ExpressionAttributeNames:  map[string]string{"#uid": attrUserID, "#tok": attrToken},
		ExpressionAttributeValues: item{":p": s(gsiAllKeys), ":u": s(userKeysPrefix(userID)), ":uid": s(userID)},
	})
	if err != nil {
		return nil, err
	}
	tokens := make([]string, 0, len(items))
	for _, it := range items {
		if tok, ok := it[attrToken].(*types.AttributeValueMemberS); ok {
			tokens = append(tokens, tok.Value)
		}
	}
	fresh, err := st.batchGet(ctx, tokens, nil, nil)
	if err != nil {
		return nil, err
	}
	recs := make([]*keyRecord, 0, len(fresh))
	for _, it := range fresh {
		rec, err := decodeKey(it)
		if err != nil {
			return nil, err
		}
		if rec.key.UserID == userID {
			recs = append(recs, rec)
		}
	}
	slices.SortFunc(recs, func(a, b *keyRecord) int { return cmp.Compare(a.key.Token, b.key.Token) })
	return recs, nil
}

// deleteUserRounds bounds how often DeleteUser re-reads the user's keys.
const deleteUserRounds = 5

// DeleteUser implements keys.Store. It finds the user's keys (rotation
// records included) and deletes them, their alias items, the rotation
// records pointing at them, and the user in one transaction when they fit
// in one (100 items). When they do not, keys go first, in transactions of at
// most 100 writes, and the user last, once a fresh read finds no key left:
// an interruption leaves the user with fewer keys, never a key that outlives
// its user. Each key delete is conditional on the key still belonging to
// the user, so a key moved to another user meanwhile is kept.
//
// Keys that name the user are deleted even when the user item is already
// gone (keys written before CreateKey checked the user, or left by an
// interrupted delete); only when there is neither the item nor a key is the
// result keys.ErrNotFound.
//
// CreateKey, UpdateKey and RotateKey check in their own transaction that
// the user item exists, so no key is added for the user once its item is
// deleted. The keys are found on gsi1, which is eventually consistent: a
// key created for the user a moment before the call may not be seen yet.
// After deleting the user, DeleteUser looks once more and deletes what has
// appeared; docs/storage.md discusses the remaining window.
func (st *Store) DeleteUser(ctx context.Context, userID string) ([]string, error) {
	if userID == "" {
		return nil, fmt.Errorf("deleting user: %w", keys.ErrNotFound)
	}
	it, err := st.getItem(ctx, userPK(userID))
	if err != nil {
		return nil, fmt.Errorf("deleting user %q: %w", userID, err)
	}
	hadUser := it != nil
	var deleted []string
	userGone := !hadUser
	for round := 0; ; round++ {
		if round == deleteUserRounds {
			return done(deleted), fmt.Errorf("deleting user %q: keys still changing after %d rounds", userID, round)
		}
		recs, err := st.userKeyRecords(ctx, userID)
		if err != nil {
			return done(deleted), fmt.Errorf("deleting user %q: finding keys: %w", userID, err)
		}
		if userGone && len(recs) == 0 {
			if !hadUser && len(deleted) == 0 {
				return nil, fmt.Errorf("deleting user %q: %w", userID, keys.ErrNotFound)
			}
			return done(deleted), nil
		}
		groups, err := st.userKeyDeletes(ctx, userID, recs)
		if err != nil {
			return done(deleted), fmt.Errorf("deleting user %q: %w", userID, err)
		}
		total := 0
		for _, g := range groups {
			total += len(g.ops)
		}
		if !userGone && total+1 <= maxTxItems {
			var ops []op
			for _, g := range groups {
				ops = append(ops, g.ops...)
			}
			ops = append(ops, st.del(userPK(userID), condPresent, nil, nil, keys.ErrNotFound))
			err := st.write(ctx, ops)
			if errors.Is(err, errConflict) {
				continue // a key changed under us: read again
			}
			if err != nil {
				return done(deleted), fmt.Errorf("deleting user %q: %w", userID, err)
			}
			for _, g := range groups {
				deleted = append(deleted, g.tokens...)
			}
			userGone = true
			continue // look once more for keys the index had not shown yet
		}
		// Too many writes for one transaction: keys first, in chunks that
		// keep each key's writes together; the user in a later round.
		for len(groups) > 0 {
			var ops []op
			var tokens []string
			i := 0
			for ; i < len(groups) && len(ops)+len(groups[i].ops) <= maxTxItems; i++ {
				ops = append(ops, groups[i].ops...)
				tokens = append(tokens, groups[i].tokens...)
			}
			groups = groups[i:]
			err := st.write(ctx, ops)
			if errors.Is(err, errConflict) {
				continue // the next round reads this chunk's keys again
			}
			if err != nil {
				return done(deleted), fmt.Errorf("deleting user %q: deleting keys: %w", userID, err)
			}
			deleted = append(deleted, tokens...)
		}
	}
}

func done(tokens []string) []string {
	slices.Sort(tokens)
	return slices.Compact(tokens)
}

// deleteGroup is the writes that delete one key with its alias item and the
// rotation records pointing at it, and the tokens they delete. At most
// keys.MaxGraceSecrets+3 writes (records, alias, key id, key), so a group
// always fits one transaction.
type deleteGroup struct {
	ops    []op
	tokens []string
}

func (st *Store) userKeyDeletes(ctx context.Context, userID string, recs []*keyRecord) ([]deleteGroup, error) {
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.key.Token] = true
	}
	groups := make([]deleteGroup, 0, len(recs))
	for _, r := range recs {
		var g deleteGroup
		// Rotation records of the user are in recs already, each deleted
		// in its own group: only the others (records left under another
		// user by a key that moved) are read.
		var others []string
		for _, c := range r.rotatedFrom {
			if !seen[c] {
				others = append(others, c)
			}
		}
		live, err := st.liveRotations(ctx, r.key.Token, others)
		if err != nil {
			return nil, err
		}
		for _, l := range live {
			seen[l] = true
			g.ops = append(g.ops, st.delRotation(l, r.key.Token))
			g.tokens = append(g.tokens, l)
		}
		g.ops = append(g.ops, st.moveAlias(r.key, r.key.Token, "")...)
		if r.key.RotatedTo == "" {
			g.ops = append(g.ops, st.del(keyIDPK(keyID(r.key)), condKeyIDOf, nil, item{":t": s(r.key.Token)}, errConflict))
		}
		g.ops = append(g.ops, st.del(keyPK(r.key.Token), "attribute_not_exists(pk) OR #uid = :uid",
			map[string]string{"#uid": attrUserID}, item{":uid": s(userID)}, errConflict))
		g.tokens = append(g.tokens, r.key.Token)
		groups = append(groups, g)
	}
	return groups, nil
}
