package dynamostore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
)

// TestListKeysSeesKeyIndexHasNotShownYet: right after a regenerate, gsi1
// and gsi2 may show the old token as a rotation record but not yet the new
// key (simulated by taking the new item out of the indexes). ListKeys for
// the user, and for the team, still returns the key, read through the
// rotation record, so that blocking the user or team finds it and ends its
// old secret's grace; the grace then really ends.
func TestListKeysSeesKeyIndexHasNotShownYet(t *testing.T) {
	for _, by := range []string{"user", "team"} {
		t.Run(by, func(t *testing.T) {
			ctx := context.Background()
			srv := awstest.Start(t)
			client, table := awstest.NewTable(t, srv)
			s := dynamostore.New(client, table)
			if err := s.CreateUser(ctx, &keys.User{UserID: "u", UserRole: keys.RoleInternalUser}); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateTeam(ctx, &keys.Team{TeamID: "ml"}); err != nil {
				t.Fatal(err)
			}
			k := graceKey(t, "u", "")
			k.TeamID = "ml"
			if err := s.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
			next, err := rotateWithGrace(ctx, s, k, time.Now().Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			if err := dynamostore.HideFromIndexes(ctx, s, next.Token); err != nil {
				t.Fatal(err)
			}
			f, other := keys.KeyFilter{UserID: "u"}, keys.KeyFilter{UserID: "u", TeamID: "other"}
			if by == "team" {
				f, other = keys.KeyFilter{TeamID: "ml"}, keys.KeyFilter{UserID: "someone", TeamID: "ml"}
			}
			// The index really misses it: the page listing (index only) does.
			if page, _, err := s.ListKeyPage(ctx, f, 0, 10); err != nil || len(page) != 0 {
				t.Fatalf("ListKeyPage(%+v) with the new key out of the indexes: %d keys, %v; want none (the simulation failed)", f, len(page), err)
			}
			ks, err := s.ListKeys(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(ks) != 1 || ks[0].Token != next.Token {
				t.Fatalf("ListKeys(%+v) while the index lags: %d keys; want the regenerated key", f, len(ks))
			}
			// Filters still apply to what is read through a rotation record.
			if ks, err := s.ListKeys(ctx, other); err != nil || len(ks) != 0 {
				t.Errorf("ListKeys(%+v): %d keys, %v; want none", other, len(ks), err)
			}
			ended, err := s.EndGrace(ctx, ks[0].Token)
			if err != nil || !slices.Equal(ended, []string{k.Token}) {
				t.Fatalf("EndGrace of the key found: %v, %v; want the old token", ended, err)
			}
			if _, err := s.GetKey(ctx, k.Token); !errors.Is(err, keys.ErrNotFound) {
				t.Errorf("GetKey(old secret) after EndGrace: %v; want ErrNotFound", err)
			}
		})
	}
}
