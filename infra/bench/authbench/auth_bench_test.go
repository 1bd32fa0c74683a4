package authbench

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/boltstore"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const master = "sk-bench-master-0123456789abcdef"

// seed stores a user and a key of that user, as /user/new and /key/generate
// would, and returns the key's secret.
func seed(b *testing.B, st keys.Store) string {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	if err := st.CreateUser(ctx, &keys.User{UserID: "bench-user", UserRole: keys.RoleInternalUser, CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	secret, err := keys.NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	k := &keys.Key{Token: keys.Hash(secret), TokenID: keys.Hash(secret), KeyName: keys.Abbrev(secret), UserID: "bench-user", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateKey(ctx, k); err != nil {
		b.Fatal(err)
	}
	return secret
}

func run(b *testing.B, st keys.Store, cache *auth.Cache) {
	secret := seed(b, st)
	a := auth.NewAuthenticator(st, cache, nil)
	h := http.Header{"Authorization": {"Bearer " + secret}}
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, h, master); err != nil { // fills the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := a.Authenticate(ctx, h, master)
		if err != nil {
			b.Fatal(err)
		}
		if p.Kind != auth.VirtualKey || p.User == nil {
			b.Fatalf("got principal %+v; want the key with its user", p)
		}
	}
}

// BenchmarkAuthenticate: store × cache hit / miss. A miss reads the key and
// its user from the store (two reads), as the first request of a key does.
func BenchmarkAuthenticate(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) keys.Store
	}{
		{"bolt", func(b *testing.B) keys.Store {
			st, err := boltstore.Open(filepath.Join(b.TempDir(), "keys.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		}},
		{"dynamodb-moto", func(b *testing.B) keys.Store {
			srv := awstest.Start(b)
			client, table := awstest.NewTable(b, srv)
			return dynamostore.New(client, table)
		}},
	}
	for _, s := range stores {
		b.Run("store="+s.name+"/cache=hit", func(b *testing.B) {
			run(b, s.open(b), auth.NewCache(time.Hour, 0))
		})
		b.Run("store="+s.name+"/cache=miss", func(b *testing.B) {
			run(b, s.open(b), nil)
		})
	}
}
