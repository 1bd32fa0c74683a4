package dynamostore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keywaygw/keyway/shared/keys"
)

// Item layout (docs/storage.md has the full table):
//
//	entity   pk              sk      gsi1pk  gsi1sk                         gsi2pk        gsi2sk
//	key      KEY#<token>     KEY     KEYS    U#<user_id>#<created>#<token>  TEAM#<team>   <created>#<token>
//	rotation KEY#<token>     KEY     KEYS    U#<user_id>#<created>#<token>  TEAM#<team>   <created>#<token>
//	alias    ALIAS#<alias>   ALIAS   -       -                              -             -
//	user     USER#<user_id>  USER    USERS   <user_id>                      -             -
//	team     TEAM#<team_id>  TEAM    TEAMS   <team_id>                      -             -
//	key id   KEYID#<token_id> KEYID  -       -                              -             -
//
// The key id item names the token of the current key with that TokenID
// (key_token), so DeleteKeyByID reaches a key wherever /key/regenerate has
// moved it. Key, user and team items carry ver, the optimistic lock that
// Update*/RotateKey check against the record's Version.
//
// Record fields are stored as top-level attributes under their JSON names
// (token, user_id, expires, …), so items read naturally in the console and
// in exports. A rotation record is a key item with rotated_to set; it is
// in both indexes like the key it was (listings of current keys filter it
// out), so that a listing that must not miss a just-regenerated key can
// follow it (ListKeys).
const (
	prefixKey   = "KEY#"
	prefixAlias = "ALIAS#"
	prefixUser  = "USER#"
	prefixTeam  = "TEAM#"
	prefixKeyID = "KEYID#"

	skKey   = "KEY"
	skAlias = "ALIAS"
	skUser  = "USER"
	skTeam  = "TEAM"
	skKeyID = "KEYID"

	gsiAllKeys = "KEYS"
	gsiUsers   = "USERS"
	gsiTeams   = "TEAMS"

	// Internal attributes beside the record's own fields.
	attrEntity      = "entity"       // key, alias, user, team
	attrVersion     = "ver"          // key items: optimistic lock, +1 per write
	attrRotatedFrom = "rotated_from" // key items: tokens of rotation records pointing here
	attrAliasToken  = "alias_token"  // alias items: the token of the key holding the alias
	attrWriteID     = "wid"          // items created by a single conditional put: a random id of that write
	attrKeyToken    = "key_token"    // key id items: the token of the current key with that id

	// Record fields used in conditions and filters (their JSON names).
	attrToken     = "token"
	attrUserID    = "user_id"
	attrTeamID    = "team_id"
	attrRotatedTo = "rotated_to"
)

var (
	encOpts = func(o *attributevalue.EncoderOptions) { o.TagKey = "json" }
	decOpts = func(o *attributevalue.DecoderOptions) { o.TagKey = "json" }
)

type item = map[string]types.AttributeValue

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func keyPK(token string) item { return item{attrPK: s(prefixKey + token), attrSK: s(skKey)} }
func aliasPK(alias string) item {
	return item{attrPK: s(prefixAlias + alias), attrSK: s(skAlias)}
}
func userPK(id string) item { return item{attrPK: s(prefixUser + id), attrSK: s(skUser)} }
func teamPK(id string) item { return item{attrPK: s(prefixTeam + id), attrSK: s(skTeam)} }
func keyIDPK(id string) item {
	return item{attrPK: s(prefixKeyID + id), attrSK: s(skKeyID)}
}

// keyID is the stable id of a key: its TokenID, or its token for a record
// without one (written before TokenID existed).
func keyID(k *keys.Key) string {
	if k.TokenID != "" {
		return k.TokenID
	}
	return k.Token
}

func encodeKeyID(k *keys.Key) item {
	it := keyIDPK(keyID(k))
	it[attrEntity] = s("key_id")
	it[attrKeyToken] = s(k.Token)
	return it
}

// itemVersion reads an item's ver attribute (0 when absent: an item from
// before versions).
func itemVersion(it item) int64 {
	if v, ok := it[attrVersion].(*types.AttributeValueMemberN); ok {
		ver, _ := strconv.ParseInt(v.Value, 10, 64)
		return ver
	}
	return 0
}

// userKeysPrefix is the gsi1 sort-key prefix of a user's keys. Another user
// id may extend it ("a" and "a#b"), so queries also filter on user_id.
func userKeysPrefix(userID string) string { return "U#" + userID + "#" }

// keyRecord is a decoded key item: the record and the internal attributes
// that updates must carry over.
type keyRecord struct {
	key         *keys.Key
	version     int64
	rotatedFrom []string
}

// encodeKey renders k as a key item with version ver and the given rotation
// back-references.
func encodeKey(k *keys.Key, ver int64, rotatedFrom []string) (item, error) {
	it, err := attributevalue.MarshalMapWithOptions(k, encOpts)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	for a, v := range keyPK(k.Token) {
		it[a] = v
	}
	it[attrEntity] = s("key")
	it[attrVersion] = n(ver)
	// The listing sort keys come from package keys, so both stores list in
	// one order (keys.Store.ListKeyPage).
	it[attrGSI1PK] = s(gsiAllKeys)
	it[attrGSI1SK] = s(keys.KeyListOrder(k))
	if k.TeamID != "" {
		it[attrGSI2PK] = s(prefixTeam + k.TeamID)
		it[attrGSI2SK] = s(keys.OwnerListOrder(k))
	}
	if k.Expires != nil {
		// DynamoDB TTL deletes the item some time (typically within days)
		// after this second; until then callers check Key.Expired.
		it[attrTTL] = n(ttlSeconds(*k.Expires))
	}
	if len(rotatedFrom) > 0 {
		it[attrRotatedFrom] = &types.AttributeValueMemberSS{Value: rotatedFrom}
	}
	return it, nil
}

// ttlSeconds rounds t up to a whole epoch second, so TTL never removes an
// item before it has expired.
func ttlSeconds(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	return sec
}

func decodeKey(it item) (*keyRecord, error) {
	k := new(keys.Key)
	if err := attributevalue.UnmarshalMapWithOptions(it, k, decOpts); err != nil {
		return nil, fmt.Errorf("decoding key item: %w", err)
	}
	rec := &keyRecord{key: k, version: itemVersion(it)}
	k.Version = rec.version
	if v, ok := it[attrRotatedFrom].(*types.AttributeValueMemberSS); ok {
		rec.rotatedFrom = v.Value
	}
	return rec, nil
}

func encodeUser(u *keys.User, ver int64) (item, error) {
	it, err := attributevalue.MarshalMapWithOptions(u, encOpts)
	if err != nil {
		return nil, fmt.Errorf("encoding user: %w", err)
	}
	for a, v := range userPK(u.UserID) {
		it[a] = v
	}
	it[attrEntity] = s("user")
	it[attrVersion] = n(ver)
	it[attrGSI1PK] = s(gsiUsers)
	it[attrGSI1SK] = s(u.UserID)
	return it, nil
}

func decodeUser(it item) (*keys.User, error) {
	u := new(keys.User)
	if err := attributevalue.UnmarshalMapWithOptions(it, u, decOpts); err != nil {
		return nil, fmt.Errorf("decoding user item: %w", err)
	}
	u.Version = itemVersion(it)
	return u, nil
}

func encodeTeam(t *keys.Team, ver int64) (item, error) {
	it, err := attributevalue.MarshalMapWithOptions(t, encOpts)
	if err != nil {
		return nil, fmt.Errorf("encoding team: %w", err)
	}
	for a, v := range teamPK(t.TeamID) {
		it[a] = v
	}
	it[attrEntity] = s("team")
	it[attrVersion] = n(ver)
	it[attrGSI1PK] = s(gsiTeams)
	it[attrGSI1SK] = s(t.TeamID)
	return it, nil
}

func decodeTeam(it item) (*keys.Team, error) {
	t := new(keys.Team)
	if err := attributevalue.UnmarshalMapWithOptions(it, t, decOpts); err != nil {
		return nil, fmt.Errorf("decoding team item: %w", err)
	}
	t.Version = itemVersion(it)
	return t, nil
}

func encodeAlias(alias, token string) item {
	it := aliasPK(alias)
	it[attrEntity] = s("alias")
	it[attrAliasToken] = s(token)
	return it
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
