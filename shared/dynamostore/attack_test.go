package dynamostore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/ledger/ledgertest"
)

// TestAttackHugeModelNameMakesSettleFail: the usage record's Model is the
// upstream's "model" member, copied uncapped (usage → govern.settle →
// ledger.Record). On DynamoDB the record items are written in the same
// TransactWriteItems as the counters update, so a record over DynamoDB's
// 400 KB item limit fails the whole transaction: the charge is never
// applied ("settle failed: charge not recorded"), the spend log shows
// nothing, and the key's budget does not move. A malicious upstream — or
// any upstream that echoes the request's model name back, which puts it in
// the caller's hands — makes metered requests free on the Lambda/DynamoDB
// deployment. (A 300 KB model in the access line also breaks EMF: see
// gateway TestAttackHugeUpstreamModelBloatsEMFAccessLine.)
func TestAttackHugeModelNameMakesSettleFail(t *testing.T) {
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	st := dynamostore.New(ledgerClient(srv), table)
	ctx := t.Context()
	budget := ledger.FromDollars(1)
	p := ledger.Party{Subject: ledger.Subject{Kind: ledger.KindKey, ID: "k1"}, Limits: ledger.Limits{MaxBudget: &budget}}
	now := ledgertest.T0
	l, err := st.Admit(ctx, &ledger.Admission{RequestID: "r1", Parties: []ledger.Party{p}, Reserve: ledger.FromDollars(0.01), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	rec := &ledger.Record{KeyID: "k1", Token: "t1", Model: strings.Repeat("m", 410<<10), EndTime: now.Add(time.Second)}
	if _, err := st.Settle(ctx, l, ledger.Charge{Cost: ledger.FromDollars(0.5)}, rec); err != nil {
		t.Errorf("Settle with a 410 KB upstream-chosen model name: %v — the $0.50 charge is lost", err)
	}
	s, err := st.Status(ctx, p.Subject, p.Limits, now.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if s.Spend != ledger.FromDollars(0.5) {
		t.Errorf("spend after the request: %d nanos; want %d (charged)", s.Spend, int64(ledger.FromDollars(0.5)))
	}
}
