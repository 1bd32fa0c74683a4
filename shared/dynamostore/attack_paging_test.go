package dynamostore_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/boltstore"
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

// TestAttackPagesSameOnBothStores: one random sequence of writes on a
// DynamoDB table and a bbolt file leaves both with the same pages and
// totals for every filter (and both agree on which writes failed).
func TestAttackPagesSameOnBothStores(t *testing.T) {
	srv := awstest.Start(t)
	client, table := awstest.NewTable(t, srv)
	dyn := dynamostore.New(client, table)
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	ctx := t.Context()
	users := []string{"a", "a#b", "b"}
	teams := []string{"t1", "t#2"}
	for _, st := range []keys.Store{dyn, bolt} {
		for _, u := range users {
			if err := st.CreateUser(ctx, &keys.User{UserID: u}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tm := range teams {
			if err := st.CreateTeam(ctx, &keys.Team{TeamID: tm}); err != nil {
				t.Fatal(err)
			}
		}
	}
	base := time.Date(2125, 3, 14, 15, 9, 26, 535897000, time.UTC)
	r := rand.New(rand.NewPCG(5, 5))
	pick := func(xs []string) string {
		if r.IntN(3) == 0 {
			return ""
		}
		return xs[r.IntN(len(xs))]
	}
	var live []string // tokens of current keys (per the bbolt store)
	serial := 0
	grace := time.Now().Add(time.Hour)
	for i := range 90 {
		op := r.IntN(10) - 2
		var n int
		if len(live) > 0 {
			n = r.IntN(len(live))
		}
		user, team, created := pick(users), pick(teams), base.Add(time.Duration(r.IntN(3))*time.Second)
		serial++
		fresh := keys.Hash(fmt.Sprint("sk-both-", serial))
		withGrace := r.IntN(2) == 0
		gone := users[r.IntN(len(users))]
		errs := make([]error, 2)
		for j, st := range []keys.Store{dyn, bolt} {
			switch {
			case op <= 2 || len(live) == 0: // 5 in 10
				errs[j] = st.CreateKey(ctx, &keys.Key{Token: fresh, TokenID: "id-" + fresh[:12], UserID: user, TeamID: team, CreatedAt: created})
			case op == 3:
				k, err := st.GetKey(ctx, live[n])
				if err == nil {
					k.UserID, k.TeamID, k.CreatedAt = user, team, created
					err = st.UpdateKey(ctx, k)
				}
				errs[j] = err
			case op == 4 || op == 5:
				k, err := st.GetKey(ctx, live[n])
				if err == nil {
					next := *k
					next.Token, next.UserID, next.CreatedAt = fresh, user, created
					var g *time.Time
					if withGrace {
						g = &grace
					}
					err = st.RotateKey(ctx, k.Token, &next, g)
				}
				errs[j] = err
			case op == 6:
				errs[j] = st.DeleteKey(ctx, live[n])
			default:
				_, errs[j] = st.DeleteUser(ctx, gone)
				if err := st.CreateUser(ctx, &keys.User{UserID: gone}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if (errs[0] == nil) != (errs[1] == nil) {
			t.Fatalf("op %d (%d): dynamodb %v, bbolt %v", i, op, errs[0], errs[1])
		}
		ks, err := bolt.ListKeys(ctx, keys.KeyFilter{})
		if err != nil {
			t.Fatal(err)
		}
		live = live[:0]
		for _, k := range ks {
			live = append(live, k.Token)
		}
	}
	t.Logf("%d keys", len(live))
	filters := []keys.KeyFilter{{}}
	for _, u := range users {
		filters = append(filters, keys.KeyFilter{UserID: u})
		for _, tm := range teams {
			filters = append(filters, keys.KeyFilter{UserID: u, TeamID: tm})
		}
	}
	for _, tm := range teams {
		filters = append(filters, keys.KeyFilter{TeamID: tm})
	}
	for _, f := range filters {
		for _, off := range []int{0, 2, 5} {
			var got [2][]string
			var totals [2]int
			for j, st := range []keys.Store{dyn, bolt} {
				page, total, err := st.ListKeyPage(ctx, f, off, 4)
				if err != nil {
					t.Fatal(err)
				}
				totals[j] = total
				for _, k := range page {
					got[j] = append(got[j], k.Token[:8])
				}
			}
			if totals[0] != totals[1] || !slices.Equal(got[0], got[1]) {
				t.Errorf("ListKeyPage(%+v, %d, 4): dynamodb %v (total %d), bbolt %v (total %d)", f, off, got[0], totals[0], got[1], totals[1])
			}
		}
	}
}
