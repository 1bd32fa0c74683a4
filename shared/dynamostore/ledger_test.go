package dynamostore_test

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
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

// opLog records the DynamoDB operations a client sends, by X-Amz-Target
// (every HTTP call, SDK retries included).
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (o *opLog) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	ops := o.ops
	o.ops = nil
	slices.Sort(ops)
	return ops
}

type countHTTP struct {
	next dynamodb.HTTPClient
	log  *opLog
}

func (c countHTTP) Do(r *http.Request) (*http.Response, error) {
	c.log.mu.Lock()
	c.log.ops = append(c.log.ops, strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810."))
	c.log.mu.Unlock()
	return c.next.Do(r)
}

// countedStore is a store on table whose calls are serialized and logged.
func countedStore(srv *awstest.Server, table string) (*dynamostore.Store, *opLog) {
	log := &opLog{}
	client := srv.DynamoDB(func(o *dynamodb.Options) { o.HTTPClient = countHTTP{next: serialHTTP{next: o.HTTPClient}, log: log} })
	return dynamostore.New(client, table), log
}

func wantOps(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: DynamoDB calls %v; want %v", what, got, want)
	}
}

// TestLedgerSteadyStateOneRoundTrip: once a store has seen a subject's
// counters, Admit is one conditional write (issue 10: at most one store
// round trip before forwarding), and Settle reads nothing.
func TestLedgerSteadyStateOneRoundTrip(t *testing.T) {
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	st, ops := countedStore(srv, table)
	ctx := t.Context()
	now := ledgertest.T0
	budget := ledger.FromDollars(1)
	lim := ledger.Limits{RPM: 100, MaxParallel: 10, MaxBudget: &budget}
	admit := func(id string, parties ...ledger.Party) *ledger.Lease {
		t.Helper()
		l, err := st.Admit(ctx, &ledger.Admission{RequestID: id, Parties: parties, Reserve: ledger.FromDollars(0.01), Now: now})
		if err != nil {
			t.Fatalf("Admit %s: %v", id, err)
		}
		return l
	}

	key := ledger.Party{Subject: ledger.Subject{Kind: ledger.KindKey, ID: "k1"}, Limits: lim}
	admit("r1", key)
	wantOps(t, "first Admit, one party", ops.take(), "GetItem", "UpdateItem")
	l2 := admit("r2", key)
	wantOps(t, "second Admit, one party (rpm, parallel, budget)", ops.take(), "UpdateItem")
	if l2.Remaining[0].Requests != 98 {
		t.Errorf("second Admit: remaining requests %d; want 98", l2.Remaining[0].Requests)
	}
	if _, err := st.Settle(ctx, l2, ledger.Charge{Cost: 5}, &ledger.Record{KeyID: "k1", EndTime: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	// The transaction, then the day totals of the key (no endpoint).
	wantOps(t, "Settle, one party", ops.take(), "TransactWriteItems", "UpdateItem")

	three := []ledger.Party{
		{Subject: ledger.Subject{Kind: ledger.KindKey, ID: "k2"}, Limits: lim},
		{Subject: ledger.Subject{Kind: ledger.KindUser, ID: "u2"}, Limits: lim},
		{Subject: ledger.Subject{Kind: ledger.KindTeam, ID: "t2"}, Limits: lim},
	}
	admit("r3", three...)
	wantOps(t, "first Admit, three parties", ops.take(), "GetItem", "GetItem", "GetItem", "TransactWriteItems")
	l4 := admit("r4", three...)
	wantOps(t, "second Admit, three parties", ops.take(), "TransactWriteItems")
	if l4.Remaining[2].Requests != 98 {
		t.Errorf("second Admit: team's remaining requests %d; want 98", l4.Remaining[2].Requests)
	}
	if _, err := st.Settle(ctx, l4, ledger.Charge{Cost: 5}, &ledger.Record{KeyID: "k2", UserID: "u2", TeamID: "t2", Endpoint: "/v1", EndTime: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	wantOps(t, "Settle, three parties", ops.take(), "TransactWriteItems", "UpdateItem", "UpdateItem", "UpdateItem", "UpdateItem")

	s, err := st.Status(ctx, three[1].Subject, lim, now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if s.Requests != 2 || s.InFlight != 1 || s.Spend != 5 || s.Reserved != ledger.FromDollars(0.01) {
		t.Errorf("user's Status: got %+v; want 2 requests, 1 in flight, spend 5, $0.01 reserved", s)
	}
}

// TestLedgerCachedStateConfirmed: another instance's settlements and
// admissions make a store's cached counters stale both ways; a refusal the
// cache suggests is read again (and admits), an admission the cache allows
// is refused by the write's condition and then by a fresh read.
func TestLedgerCachedStateConfirmed(t *testing.T) {
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	a, opsA := countedStore(srv, table)
	b, opsB := countedStore(srv, table)
	ctx := t.Context()
	now := ledgertest.T0
	budget := ledger.FromDollars(0.02)
	key := ledger.Party{Subject: ledger.Subject{Kind: ledger.KindKey, ID: "k1"}, Limits: ledger.Limits{RPM: 100, TPM: 100, MaxParallel: 10, MaxBudget: &budget}}
	admit := func(st *dynamostore.Store, id string, reserve float64) (*ledger.Lease, error) {
		return st.Admit(ctx, &ledger.Admission{RequestID: id, Parties: []ledger.Party{key}, Reserve: ledger.FromDollars(reserve), Now: now})
	}
	settle := func(st *dynamostore.Store, l *ledger.Lease, cost float64, tokens int64) {
		t.Helper()
		if _, err := st.Settle(ctx, l, ledger.Charge{Cost: ledger.FromDollars(cost), OutputTokens: tokens}, &ledger.Record{KeyID: "k1", EndTime: now.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	l1, err := admit(a, "r1", 0.01)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admit(a, "r2", 0.01); err != nil {
		t.Fatal(err)
	}
	opsA.take()
	// a's cache: $0.02 committed, the whole budget. b settles r1 for
	// $0.001: $0.011 committed.
	settle(b, l1, 0.001, 0)
	opsB.take()
	if _, err := admit(a, "r3", 0.005); err != nil {
		t.Fatalf("Admit on a cache that says over budget, after another instance settled: %v; want admitted", err)
	}
	wantOps(t, "Admit refused by the cache", opsA.take(), "GetItem", "UpdateItem")

	// $0.016 committed; b's cache says $0.011, which $0.008 more fits.
	_, err = admit(b, "r4", 0.008)
	if d, ok := ledger.AsDenial(err); !ok || d.Limit != ledger.LimitBudget || d.Current != int64(ledger.FromDollars(0.016)) {
		t.Fatalf("Admit of $0.008 at $0.016 of $0.02 committed: %v; want a max_budget denial at 16000000", err)
	}
	wantOps(t, "Admit allowed by a stale cache", opsB.take(), "UpdateItem", "GetItem")

	// Tokens counted at Settle by another instance refuse too: a's cache
	// shows none in this window.
	l5, err := admit(b, "r5", 0)
	if err != nil {
		t.Fatal(err)
	}
	settle(b, l5, 0, 150)
	opsA.take()
	if _, err := admit(a, "r6", 0); err == nil {
		t.Fatal("Admit with 150 of 100 tokens counted by another instance: admitted; want a tpm_limit denial")
	} else if d, ok := ledger.AsDenial(err); !ok || d.Limit != ledger.LimitTPM {
		t.Fatalf("Admit over tpm: %v; want a tpm_limit denial", err)
	}
	wantOps(t, "Admit over tpm on a stale cache", opsA.take(), "UpdateItem", "GetItem")
}
