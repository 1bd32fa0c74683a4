package dynamostore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// opCounter records the DynamoDB operations a client calls.
type opCounter struct {
	mu  sync.Mutex
	ops []string
}

func (c *opCounter) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("countOps",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.ops = append(c.ops, middleware.GetOperationName(ctx))
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

func (c *opCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

type fixture struct {
	st     *dynamostore.Store
	raw    *dynamodb.Client // no counting
	table  string
	ops    *opCounter
	ctx    context.Context
	server *awstest.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := awstest.Start(t)
	raw, table := awstest.NewTable(t, srv)
	ops := &opCounter{}
	client := srv.DynamoDB(ops.option)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &fixture{st: dynamostore.New(client, table), raw: raw, table: table, ops: ops, ctx: ctx, server: srv}
}

// owners creates user and team (each unless "") so that keys may name them.
func (f *fixture) owners(t *testing.T, user, team string) {
	t.Helper()
	if user != "" {
		if err := f.st.CreateUser(f.ctx, &keys.User{UserID: user, UserRole: keys.RoleInternalUser}); err != nil {
			t.Fatal(err)
		}
	}
	if team != "" {
		if err := f.st.CreateTeam(f.ctx, &keys.Team{TeamID: team}); err != nil {
			t.Fatal(err)
		}
	}
}

func newKey(t *testing.T, mod func(*keys.Key)) *keys.Key {
	t.Helper()
	secret, err := keys.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	k := &keys.Key{Token: keys.Hash(secret), TokenID: "id-" + secret[3:11], KeyName: keys.Abbrev(secret), CreatedAt: now, UpdatedAt: now}
	if mod != nil {
		mod(k)
	}
	return k
}

func (f *fixture) rawItem(t *testing.T, pk, sk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := f.raw.GetItem(f.ctx, &dynamodb.GetItemInput{
		TableName: aws.String(f.table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKeyRoundTrip(t *testing.T) {
	f := newFixture(t)
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	budget, rpm := 12.5, int64(60)
	k := newKey(t, func(k *keys.Key) {
		k.KeyAlias = "ci"
		k.UserID = "alice"
		k.TeamID = "eng"
		k.Expires = &exp
		k.AllowedRoutes = []string{"/v1/ocr"}
		k.AllowedPassthroughRoutes = []string{}
		k.Metadata = map[string]any{"n": 1.5, "tags": []any{"a", "b"}, "nested": map[string]any{"x": true}}
		k.Spend = 0.1
		k.MaxBudget = &budget
		k.RPMLimit = &rpm
		k.BudgetDuration = "30d"
		k.CreatedBy = "admin"
	})
	f.owners(t, "alice", "eng")
	if err := f.st.CreateKey(f.ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.GetKey(f.ctx, k.Token)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := mustJSON(t, got), mustJSON(t, k); g != w {
		t.Errorf("GetKey round trip:\n got %s\nwant %s", g, w)
	}
	byAlias, err := f.st.GetKeyByAlias(f.ctx, "ci")
	if err != nil || byAlias.Token != k.Token {
		t.Errorf("GetKeyByAlias(ci) = %v, %v; want token %s", byAlias, err, k.Token)
	}
}

func TestGetKeyIsOneGetItem(t *testing.T) {
	f := newFixture(t)
	k := newKey(t, nil)
	if err := f.st.CreateKey(f.ctx, k); err != nil {
		t.Fatal(err)
	}
	f.ops.take()
	if _, err := f.st.GetKey(f.ctx, k.Token); err != nil {
		t.Fatal(err)
	}
	if got := f.ops.take(); len(got) != 1 || got[0] != "GetItem" {
		t.Errorf("GetKey called %v; want [GetItem]", got)
	}
	if _, err := f.st.GetKey(f.ctx, keys.Hash("sk-unknown")); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("GetKey(unknown) error = %v; want ErrNotFound", err)
	}
	if got := f.ops.take(); len(got) != 1 || got[0] != "GetItem" {
		t.Errorf("GetKey(unknown) called %v; want [GetItem]", got)
	}
}

func TestExpiringKeyHasTTL(t *testing.T) {
	f := newFixture(t)
	exp := time.Date(2031, 5, 6, 7, 8, 9, 500, time.UTC)
	k := newKey(t, func(k *keys.Key) { k.Expires = &exp })
	plain := newKey(t, nil)
	for _, k := range []*keys.Key{k, plain} {
		if err := f.st.CreateKey(f.ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	it := f.rawItem(t, "KEY#"+k.Token, "KEY")
	ttl, ok := it["ttl"].(*types.AttributeValueMemberN)
	if want := strconv.FormatInt(exp.Unix()+1, 10); !ok || ttl.Value != want {
		t.Errorf("ttl = %#v; want N %s (expiry rounded up to the second)", it["ttl"], want)
	}
	if _, ok := f.rawItem(t, "KEY#"+plain.Token, "KEY")["ttl"]; ok {
		t.Errorf("key without expiry has a ttl attribute")
	}
	out, err := f.raw.DescribeTimeToLive(f.ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(f.table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := out.TimeToLiveDescription; d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "ttl" {
		t.Errorf("table TTL = %s on %q; want ENABLED on ttl", d.TimeToLiveStatus, aws.ToString(d.AttributeName))
	}
	// Expiry is the caller's check; the store still returns the record.
	past := time.Now().Add(-time.Minute)
	old := newKey(t, func(k *keys.Key) { k.Expires = &past })
	if err := f.st.CreateKey(f.ctx, old); err != nil {
		t.Fatal(err)
	}
	got, err := f.st.GetKey(f.ctx, old.Token)
	if err != nil || !got.Expired(time.Now()) {
		t.Errorf("GetKey(expired) = %v, %v; want the record, Expired", got, err)
	}
}

func TestConditionalWrites(t *testing.T) {
	f := newFixture(t)
	ctx := f.ctx
	k := newKey(t, func(k *keys.Key) { k.KeyAlias = "taken" })
	if err := f.st.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	t.Run("token exists", func(t *testing.T) {
		dup := *k
		dup.KeyAlias = ""
		if err := f.st.CreateKey(ctx, &dup); !errors.Is(err, keys.ErrExists) {
			t.Errorf("CreateKey(same token) = %v; want ErrExists", err)
		}
	})
	t.Run("alias exists", func(t *testing.T) {
		other := newKey(t, func(o *keys.Key) { o.KeyAlias = "taken" })
		if err := f.st.CreateKey(ctx, other); !errors.Is(err, keys.ErrExists) {
			t.Errorf("CreateKey(alias in use) = %v; want ErrExists", err)
		}
		if _, err := f.st.GetKey(ctx, other.Token); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("failed CreateKey left a key behind: GetKey = %v", err)
		}
	})
	t.Run("update to alias in use", func(t *testing.T) {
		other := newKey(t, func(o *keys.Key) { o.KeyAlias = "mine" })
		if err := f.st.CreateKey(ctx, other); err != nil {
			t.Fatal(err)
		}
		other.KeyAlias = "taken"
		if err := f.st.UpdateKey(ctx, other); !errors.Is(err, keys.ErrExists) {
			t.Errorf("UpdateKey(alias in use) = %v; want ErrExists", err)
		}
		other.KeyAlias = "renamed"
		if err := f.st.UpdateKey(ctx, other); err != nil {
			t.Fatalf("UpdateKey(free alias) = %v", err)
		}
		if _, err := f.st.GetKeyByAlias(ctx, "mine"); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("old alias still resolves: %v", err)
		}
		// The released alias is free for another key.
		third := newKey(t, func(o *keys.Key) { o.KeyAlias = "mine" })
		if err := f.st.CreateKey(ctx, third); err != nil {
			t.Errorf("CreateKey(released alias) = %v", err)
		}
	})
	t.Run("missing records", func(t *testing.T) {
		ghost := newKey(t, nil)
		for name, err := range map[string]error{
			"UpdateKey":  f.st.UpdateKey(ctx, ghost),
			"DeleteKey":  f.st.DeleteKey(ctx, ghost.Token),
			"RotateKey":  f.st.RotateKey(ctx, ghost.Token, newKey(t, nil), nil),
			"UpdateUser": f.st.UpdateUser(ctx, &keys.User{UserID: "ghost"}),
			"UpdateTeam": f.st.UpdateTeam(ctx, &keys.Team{TeamID: "ghost"}),
			"DeleteTeam": f.st.DeleteTeam(ctx, "ghost"),
		} {
			if !errors.Is(err, keys.ErrNotFound) {
				t.Errorf("%s(missing) = %v; want ErrNotFound", name, err)
			}
		}
		if _, err := f.st.DeleteUser(ctx, "ghost"); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("DeleteUser(missing) = %v; want ErrNotFound", err)
		}
	})
	t.Run("user and team ids", func(t *testing.T) {
		if err := f.st.CreateUser(ctx, &keys.User{UserID: "u1", UserRole: keys.RoleInternalUser}); err != nil {
			t.Fatal(err)
		}
		if err := f.st.CreateUser(ctx, &keys.User{UserID: "u1"}); !errors.Is(err, keys.ErrExists) {
			t.Errorf("CreateUser(existing) = %v; want ErrExists", err)
		}
		if err := f.st.CreateTeam(ctx, &keys.Team{TeamID: "t1"}); err != nil {
			t.Fatal(err)
		}
		if err := f.st.CreateTeam(ctx, &keys.Team{TeamID: "t1"}); !errors.Is(err, keys.ErrExists) {
			t.Errorf("CreateTeam(existing) = %v; want ErrExists", err)
		}
	})
}

func TestListsAreQueries(t *testing.T) {
	f := newFixture(t)
	ctx := f.ctx
	for _, id := range []string{"bob", "alice", "a#b"} {
		if err := f.st.CreateUser(ctx, &keys.User{UserID: id, UserRole: keys.RoleInternalUser}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"ops", "eng"} {
		if err := f.st.CreateTeam(ctx, &keys.Team{TeamID: id}); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Now().UTC()
	mk := func(i int, user, team string) *keys.Key {
		k := newKey(t, func(k *keys.Key) {
			k.UserID, k.TeamID = user, team
			k.CreatedAt = base.Add(time.Duration(i) * time.Second)
		})
		if err := f.st.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	a1 := mk(3, "alice", "eng")
	a2 := mk(1, "alice", "")
	ab := mk(2, "a#b", "eng") // user id extending "a"'s prefix
	svc := mk(0, "", "ops")
	none := mk(4, "", "")
	// A rotation record is never listed.
	a3 := mk(5, "alice", "eng")
	grace := time.Now().Add(time.Hour)
	a3next := newKey(t, func(k *keys.Key) {
		k.UserID, k.TeamID, k.CreatedAt, k.TokenID, k.Version = "alice", "eng", a3.CreatedAt, a3.TokenID, a3.Version
	})
	if err := f.st.RotateKey(ctx, a3.Token, a3next, &grace); err != nil {
		t.Fatal(err)
	}
	f.ops.take()

	tokens := func(ks []*keys.Key) []string {
		var out []string
		for _, k := range ks {
			out = append(out, k.Token[:8])
		}
		return out
	}
	for _, tc := range []struct {
		f    keys.KeyFilter
		want []*keys.Key
	}{
		{keys.KeyFilter{}, []*keys.Key{svc, a2, ab, a1, none, a3next}},
		{keys.KeyFilter{UserID: "alice"}, []*keys.Key{a2, a1, a3next}},
		{keys.KeyFilter{UserID: "a"}, nil},
		{keys.KeyFilter{UserID: "a#b"}, []*keys.Key{ab}},
		{keys.KeyFilter{TeamID: "eng"}, []*keys.Key{ab, a1, a3next}},
		{keys.KeyFilter{UserID: "alice", TeamID: "eng"}, []*keys.Key{a1, a3next}},
		{keys.KeyFilter{TeamID: "ops"}, []*keys.Key{svc}},
	} {
		got, err := f.st.ListKeys(ctx, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmt.Sprint(tokens(got)), fmt.Sprint(tokens(tc.want)); g != w {
			t.Errorf("ListKeys(%+v) = %s; want %s", tc.f, g, w)
		}
	}
	users, err := f.st.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 3 || users[0].UserID != "a#b" || users[1].UserID != "alice" || users[2].UserID != "bob" {
		t.Errorf("ListUsers = %v; want a#b, alice, bob", users)
	}
	teams, err := f.st.ListTeams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(teams) != 2 || teams[0].TeamID != "eng" || teams[1].TeamID != "ops" {
		t.Errorf("ListTeams = %v; want eng, ops", teams)
	}
	for _, o := range f.ops.take() {
		if o != "Query" {
			t.Errorf("a listing called %s; want only Query", o)
		}
	}
}

func TestRotateKey(t *testing.T) {
	f := newFixture(t)
	ctx := f.ctx
	k0 := newKey(t, func(k *keys.Key) { k.KeyAlias = "svc"; k.UserID = "alice" })
	f.owners(t, "alice", "")
	if err := f.st.CreateKey(ctx, k0); err != nil {
		t.Fatal(err)
	}
	next := func(prev *keys.Key) *keys.Key {
		return newKey(t, func(k *keys.Key) {
			k.TokenID, k.KeyAlias, k.UserID, k.CreatedAt, k.Version = prev.TokenID, prev.KeyAlias, prev.UserID, prev.CreatedAt, prev.Version
		})
	}
	grace := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	k1 := next(k0)
	if err := f.st.RotateKey(ctx, k0.Token, k1, &grace); err != nil {
		t.Fatal(err)
	}
	old, err := f.st.GetKey(ctx, k0.Token)
	if err != nil || old.RotatedTo != k1.Token || old.Expires == nil || !old.Expires.Equal(grace) {
		t.Fatalf("old record after RotateKey = %+v, %v; want rotated_to new token, expires at grace", old, err)
	}
	if it := f.rawItem(t, "KEY#"+k0.Token, "KEY"); it["ttl"] == nil {
		t.Errorf("rotation record has no ttl")
	}
	if got, err := f.st.GetKeyByAlias(ctx, "svc"); err != nil || got.Token != k1.Token {
		t.Errorf("alias after rotation = %v, %v; want the new key", got, err)
	}
	if err := f.st.RotateKey(ctx, k1.Token, k0, nil); !errors.Is(err, keys.ErrExists) {
		t.Errorf("RotateKey onto a used token = %v; want ErrExists", err)
	}

	// A second rotation re-points the first old secret at the newest key.
	k2 := next(k1)
	if err := f.st.RotateKey(ctx, k1.Token, k2, &grace); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{k0.Token, k1.Token} {
		if r, err := f.st.GetKey(ctx, tok); err != nil || r.RotatedTo != k2.Token {
			t.Errorf("rotation record %s… = %+v, %v; want rotated_to newest", tok[:8], r, err)
		}
	}
	// Without grace, the old token is gone at once.
	k3 := next(k2)
	if err := f.st.RotateKey(ctx, k2.Token, k3, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetKey(ctx, k2.Token); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("old token after rotation without grace: %v; want ErrNotFound", err)
	}
	if got, err := f.st.ListKeys(ctx, keys.KeyFilter{UserID: "alice"}); err != nil || len(got) != 1 || got[0].Token != k3.Token {
		t.Errorf("ListKeys after rotations = %v, %v; want only the newest key", got, err)
	}
	// Deleting the key removes every old secret still in its grace period.
	if err := f.st.DeleteKey(ctx, k3.Token); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{k0.Token, k1.Token, k3.Token} {
		if _, err := f.st.GetKey(ctx, tok); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("GetKey(%s…) after DeleteKey = %v; want ErrNotFound", tok[:8], err)
		}
	}
	if _, err := f.st.GetKeyByAlias(ctx, "svc"); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("alias after DeleteKey = %v; want ErrNotFound", err)
	}
}

func TestDeleteUserLeavesNothingThatAuthenticates(t *testing.T) {
	for _, n := range []int{3, 110} { // one transaction; more than one holds
		t.Run(strconv.Itoa(n)+" keys", func(t *testing.T) {
			f := newFixture(t)
			ctx := f.ctx
			if err := f.st.CreateUser(ctx, &keys.User{UserID: "carol", UserRole: keys.RoleInternalUser}); err != nil {
				t.Fatal(err)
			}
			var all []string
			for i := range n {
				k := newKey(t, func(k *keys.Key) {
					k.UserID = "carol"
					if i%10 == 0 {
						k.KeyAlias = "carol-" + strconv.Itoa(i)
					}
				})
				if err := f.st.CreateKey(ctx, k); err != nil {
					t.Fatal(err)
				}
				all = append(all, k.Token)
			}
			// A grace-period record for carol's first key.
			grace := time.Now().Add(time.Hour)
			first, _ := f.st.GetKey(ctx, all[0])
			rotated := newKey(t, func(k *keys.Key) {
				k.UserID, k.KeyAlias, k.TokenID, k.Version = "carol", first.KeyAlias, first.TokenID, first.Version
			})
			if err := f.st.RotateKey(ctx, all[0], rotated, &grace); err != nil {
				t.Fatal(err)
			}
			all = append(all, rotated.Token)
			// Someone else's key survives.
			dave := newKey(t, func(k *keys.Key) { k.UserID = "dave" })
			f.owners(t, "dave", "")
			if err := f.st.CreateKey(ctx, dave); err != nil {
				t.Fatal(err)
			}

			deleted, err := f.st.DeleteUser(ctx, "carol")
			if err != nil {
				t.Fatal(err)
			}
			if len(deleted) != len(all) {
				t.Errorf("DeleteUser returned %d tokens; want %d", len(deleted), len(all))
			}
			for _, tok := range all {
				if k, err := f.st.GetKey(ctx, tok); !errors.Is(err, keys.ErrNotFound) {
					t.Fatalf("key %s… of the deleted user still readable: %+v, %v", tok[:8], k, err)
				}
			}
			if _, err := f.st.GetUser(ctx, "carol"); !errors.Is(err, keys.ErrNotFound) {
				t.Errorf("GetUser after DeleteUser = %v; want ErrNotFound", err)
			}
			if _, err := f.st.GetKeyByAlias(ctx, "carol-0"); !errors.Is(err, keys.ErrNotFound) {
				t.Errorf("alias of a deleted key = %v; want ErrNotFound", err)
			}
			if err := f.st.CreateKey(ctx, newKey(t, func(k *keys.Key) { k.KeyAlias = "carol-10" })); err != nil {
				t.Errorf("alias of a deleted key is not free again: %v", err)
			}
			if _, err := f.st.GetKey(ctx, dave.Token); err != nil {
				t.Errorf("another user's key was deleted: %v", err)
			}
		})
	}
}

func TestUnreachableFailsPromptly(t *testing.T) {
	t.Parallel()
	srv := awstest.New(t) // private: this test takes the endpoint away
	client, table := awstest.NewTable(t, srv)
	st := dynamostore.New(client, table)
	k := newKey(t, nil)
	ctx := context.Background()
	if err := st.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}

	srv.Down(t)
	start := time.Now()
	_, err := st.GetKey(ctx, k.Token)
	if err == nil || errors.Is(err, keys.ErrNotFound) {
		t.Fatalf("GetKey with the server down = %v; want a store error (not ErrNotFound)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("GetKey with the server down took %s; want a prompt error", d)
	}
	if err := st.CreateKey(ctx, newKey(t, nil)); err == nil {
		t.Errorf("CreateKey with the server down succeeded")
	}

	// A server that accepts and never answers: bounded by the attempt timeout.
	srv.Up(t)
	srv.Hang(t)
	fast := dynamostore.New(srv.DynamoDB(dynamostore.ClientOptions(dynamostore.Retry{
		MaxAttempts: 2, AttemptTimeout: 300 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})), table)
	start = time.Now()
	if _, err := fast.GetKey(ctx, k.Token); err == nil || errors.Is(err, keys.ErrNotFound) {
		t.Errorf("GetKey against a hung server = %v; want a store error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("GetKey against a hung server took %s; want about 2×300ms", d)
	}

	srv.Up(t)
	got, err := st.GetKey(ctx, k.Token)
	if err != nil || got.Token != k.Token {
		t.Errorf("GetKey after recovery = %v, %v; want the key", got, err)
	}
}

// lostAnswer is a retryable error the SDK's retryer acts on.
type lostAnswer struct{}

func (lostAnswer) Error() string        { return "answer lost after the write was applied" }
func (lostAnswer) RetryableError() bool { return true }

func TestCreateRetriedAfterLostAnswerSucceeds(t *testing.T) {
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	var once sync.Once
	// The first PutItem reaches the server and is applied; its answer is
	// replaced by a retryable error, so the SDK sends it again.
	loseFirst := func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Deserialize.Add(middleware.DeserializeMiddlewareFunc("loseFirstAnswer",
				func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleDeserialize(ctx, in)
					lost := false
					if err == nil && middleware.GetOperationName(ctx) == "PutItem" {
						once.Do(func() { lost = true })
					}
					if lost {
						return out, md, lostAnswer{}
					}
					return out, md, err
				}), middleware.After)
		})
	}
	st := dynamostore.New(srv.DynamoDB(loseFirst), table)
	k := newKey(t, nil)
	if err := st.CreateKey(context.Background(), k); err != nil {
		t.Fatalf("CreateKey whose first answer was lost = %v; want nil (the retry finds its own item)", err)
	}
	// A real conflict is still one.
	other := *k
	other.KeyName = "someone else"
	if err := st.CreateKey(context.Background(), &other); !errors.Is(err, keys.ErrExists) {
		t.Errorf("CreateKey(taken token, different record) = %v; want ErrExists", err)
	}
}

func TestAliasOfKeyRemovedByTTLIsFree(t *testing.T) {
	f := newFixture(t)
	past := time.Now().Add(-time.Hour)
	k := newKey(t, func(k *keys.Key) { k.KeyAlias = "nightly"; k.Expires = &past })
	if err := f.st.CreateKey(f.ctx, k); err != nil {
		t.Fatal(err)
	}
	// While the expired key item exists, its alias is taken (as in bolt).
	if err := f.st.CreateKey(f.ctx, newKey(t, func(n *keys.Key) { n.KeyAlias = "nightly" })); !errors.Is(err, keys.ErrExists) {
		t.Fatalf("CreateKey(alias of an expired, present key) = %v; want ErrExists", err)
	}
	// DynamoDB's TTL sweep deletes the key item, not the alias item.
	_, err := f.raw.DeleteItem(f.ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "KEY#" + k.Token}, "sk": &types.AttributeValueMemberS{Value: "KEY"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetKeyByAlias(f.ctx, "nightly"); !errors.Is(err, keys.ErrNotFound) {
		t.Errorf("GetKeyByAlias(alias of a removed key) = %v; want ErrNotFound", err)
	}
	next := newKey(t, func(n *keys.Key) { n.KeyAlias = "nightly" })
	if err := f.st.CreateKey(f.ctx, next); err != nil {
		t.Fatalf("CreateKey(alias of a removed key) = %v; want nil", err)
	}
	if got, err := f.st.GetKeyByAlias(f.ctx, "nightly"); err != nil || got.Token != next.Token {
		t.Errorf("GetKeyByAlias = %v, %v; want the new key", got, err)
	}
	// A taken token is still ErrExists, alias or not.
	dup := *next
	dup.KeyAlias = "other"
	if err := f.st.CreateKey(f.ctx, &dup); !errors.Is(err, keys.ErrExists) {
		t.Errorf("CreateKey(taken token) = %v; want ErrExists", err)
	}
}
