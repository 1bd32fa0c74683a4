package dynamostore_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/ledger/ledgertest"
)

// serialCalls makes moto server answer one DynamoDB call at a time. Real
// DynamoDB applies each call atomically; moto does not under concurrency:
// its TransactWriteItems copies whole tables first and restores the copy
// when a transaction is cancelled (undoing other clients' writes made
// meanwhile), and its condition checks and writes are not one step. With
// writes serialized, the ledger's own races (read, decide, conditional write
// from many goroutines and two store handles) still interleave freely
// between calls, which is what the conditions must get right.
var serialCalls sync.RWMutex

type serialHTTP struct{ next dynamodb.HTTPClient }

func (c serialHTTP) Do(r *http.Request) (*http.Response, error) {
	// Reads may run together; a write runs alone.
	switch r.Header.Get("X-Amz-Target") {
	case "DynamoDB_20120810.GetItem", "DynamoDB_20120810.Query":
		serialCalls.RLock()
		defer serialCalls.RUnlock()
	default:
		serialCalls.Lock()
		defer serialCalls.Unlock()
	}
	resp, err := c.next.Do(r)
	if err == nil {
		// Read the answer inside the lock, so the next call starts after.
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr != nil {
			return nil, rerr
		}
	}
	return resp, err
}

// ledgerClient is a client of srv whose calls are serialized (serialHTTP).
func ledgerClient(srv *awstest.Server) *dynamodb.Client {
	return srv.DynamoDB(func(o *dynamodb.Options) { o.HTTPClient = serialHTTP{next: o.HTTPClient} })
}

// TestLedgerConformance runs the suite the bbolt store passes, each subtest
// on a fresh table of the shared moto server.
func TestLedgerConformance(t *testing.T) {
	srv := awstest.Start(t)
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		_, table := awstest.NewTable(t, srv)
		return dynamostore.New(ledgerClient(srv), table)
	})
}

// TestLedgerTwoInstances: two store handles with their own clients on one
// table (two gateway instances) share every counter.
func TestLedgerTwoInstances(t *testing.T) {
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	a := dynamostore.New(ledgerClient(srv), table)
	b := dynamostore.New(ledgerClient(srv), table)
	ctx := t.Context()
	budget := ledger.FromDollars(0.05)
	p := ledger.Party{Subject: ledger.Subject{Kind: ledger.KindKey, ID: "k1"}, Limits: ledger.Limits{RPM: 100, MaxParallel: 10, MaxBudget: &budget}}
	now := ledgertest.T0
	var (
		mu       sync.Mutex
		admitted []*ledger.Lease
		wg       sync.WaitGroup
	)
	for i := range 12 {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			l, err := st.Admit(ctx, &ledger.Admission{RequestID: "r" + string(rune('a'+i)), Parties: []ledger.Party{p}, Reserve: ledger.FromDollars(0.01), Now: now})
			if _, ok := ledger.AsDenial(err); ok {
				return
			}
			if err != nil {
				t.Errorf("Admit: %v", err)
				return
			}
			mu.Lock()
			admitted = append(admitted, l)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(admitted) != 5 {
		t.Fatalf("12 Admit across two instances, $0.01 each under $0.05: got %d admitted; want 5", len(admitted))
	}
	for i, l := range admitted {
		st := a
		if i%2 == 0 {
			st = b
		}
		if _, err := st.Settle(ctx, l, ledger.Charge{Cost: ledger.FromDollars(0.01)}, &ledger.Record{KeyID: "k1", EndTime: now.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []*dynamostore.Store{a, b} {
		s, err := st.Status(ctx, p.Subject, p.Limits, now.Add(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if s.Spend != 50_000_000 || s.Reserved != 0 || s.InFlight != 0 || s.Requests != 5 {
			t.Errorf("Status: got %+v; want spend 50000000, 5 requests, nothing reserved or in flight", s)
		}
	}
}

// TestLedgerRecordTTL: usage records carry DynamoDB's ttl (retention), the
// counters item does not, and nothing lands on key, user or team items.
func TestLedgerRecordTTL(t *testing.T) {
	srv := awstest.Start(t)
	raw, table := awstest.NewTable(t, srv)
	st := dynamostore.New(ledgerClient(srv), table)
	ctx := t.Context()
	expires := time.Date(2026, 6, 1, 0, 0, 0, 500, time.UTC)
	l := &ledger.Lease{RequestID: "r1", Parties: []ledger.Party{{Subject: ledger.Subject{Kind: ledger.KindKey, ID: "k1"}}}}
	if _, err := st.Settle(ctx, l, ledger.Charge{Cost: 5}, &ledger.Record{KeyID: "k1", Token: "t1", EndTime: ledgertest.T0, Expires: expires}); err != nil {
		t.Fatal(err)
	}
	get := func(pk, sk string) map[string]types.AttributeValue {
		out, err := raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	want := strconv.FormatInt(expires.Unix()+1, 10) // rounded up
	for _, k := range [][2]string{{"REQ#r1", "REQ"}, {"LOG#k1", ledger.TimeKey(ledgertest.T0) + "#r1"}} {
		it := get(k[0], k[1])
		if v, ok := it["ttl"].(*types.AttributeValueMemberN); !ok || v.Value != want {
			t.Errorf("%s ttl: got %v; want %s", k[0], it["ttl"], want)
		}
	}
	ctr := get("CTR#key#k1", "CTR")
	if _, ok := ctr["ttl"]; ok || len(ctr) == 0 {
		t.Errorf("counters item: got %v; want one without ttl", ctr)
	}
	if it := get("KEY#k1", "KEY"); len(it) != 0 {
		t.Errorf("Settle wrote a key item: %v", it)
	}
}
