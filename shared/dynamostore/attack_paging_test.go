package dynamostore_test

import (
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
)

// TestAttackPageOrderOddOffset: a CreatedAt whose zone offset has seconds
// is stored (RFC 3339, no offset seconds) as another instant than the
// caller's. The listing sort key must come from the stored instant, as
// ListKeys' order and the bbolt store's listings do, so that ListKeyPage
// lists in ListKeys' order and the same on both stores.
func TestAttackPageOrderOddOffset(t *testing.T) {
	srv := awstest.Start(t)
	client, table := awstest.NewTable(t, srv)
	st := dynamostore.New(client, table)
	ctx := t.Context()
	if err := st.CreateUser(ctx, &keys.User{UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	// Given as 03:03:15Z (03:04:05 at +00:00:50); stored as 03:04:05Z, the
	// offset's seconds dropped. k2 lies between the two.
	odd := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("LMT", 50))
	k1 := &keys.Key{Token: keys.Hash("sk-odd-1"), TokenID: "odd-1", UserID: "alice", CreatedAt: odd}
	k2 := &keys.Key{Token: keys.Hash("sk-odd-2"), TokenID: "odd-2", UserID: "alice", CreatedAt: time.Date(2026, 1, 2, 3, 3, 40, 0, time.UTC)}
	for _, k := range []*keys.Key{k1, k2} {
		if err := st.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	all, err := st.ListKeys(ctx, keys.KeyFilter{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []keys.KeyFilter{{}, {UserID: "alice"}} {
		page, _, err := st.ListKeyPage(ctx, f, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) != 2 || len(all) != 2 || page[0].Token != all[0].Token {
			t.Errorf("ListKeyPage(%+v) lists %v first; ListKeys (by stored created_at) lists %v first", f, page[0].TokenID, all[0].TokenID)
		}
	}
}
