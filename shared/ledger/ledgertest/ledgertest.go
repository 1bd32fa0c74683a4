// Package ledgertest is the conformance suite every ledger.Store passes: the
// bbolt store and the DynamoDB store (on moto server) run the same tests, so
// limits, budgets and metering behave the same on a laptop and in AWS.
//
// Every Admission carries a fixed Now, so windows and periods are the test's
// choice, never the wall clock's.
package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/ledger"
)

// Run runs the suite; open returns a fresh, empty store for each subtest
// (and arranges its closing).
func Run(t *testing.T, open func(t *testing.T) ledger.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st ledger.Store)
	}{
		{"RPMExactUnderConcurrency", testRPMExact},
		{"RefusalTakesNothing", testRefusalTakesNothing},
		{"ParallelExact", testParallel},
		{"ExpiredLeaseReclaimed", testExpiredLeaseReclaimed},
		{"RenewKeepsLease", testRenew},
		{"BudgetExactUnderConcurrency", testBudgetExact},
		{"ReservationReleasedOnSettle", testReservationRelease},
		{"ExpiredReservationReclaimed", testExpiredReservation},
		{"PeriodRolloverUnderConcurrency", testPeriodRollover},
		{"BudgetReachedRefusesZeroReserve", testBudgetReachedZeroReserve},
		{"TPM", testTPM},
		{"SettleIdempotent", testSettleIdempotent},
		{"ConcurrentSettlesAddUp", testConcurrentSettles},
		{"UnadmittedSettleCharges", testUnadmittedSettle},
		{"SoftBudgetReportedOnce", testSoftBudget},
		{"Status", testStatus},
		{"ListRecords", testListRecords},
		{"Totals", testTotals},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// T0 is the suite's clock: a minute boundary, and a 30 s period boundary.
var T0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func nanos(d float64) *ledger.Nanos { n := ledger.FromDollars(d); return &n }

func key(id string) ledger.Subject  { return ledger.Subject{Kind: ledger.KindKey, ID: id} }
func user(id string) ledger.Subject { return ledger.Subject{Kind: ledger.KindUser, ID: id} }
func team(id string) ledger.Subject { return ledger.Subject{Kind: ledger.KindTeam, ID: id} }

var reqSeq atomic.Int64

func reqID(prefix string) string { return fmt.Sprintf("%s-%d", prefix, reqSeq.Add(1)) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func admission(now time.Time, reserve ledger.Nanos, parties ...ledger.Party) *ledger.Admission {
	return &ledger.Admission{RequestID: reqID("req"), Parties: parties, Reserve: reserve, Now: now}
}

// admit admits a and fails t on a store error; a denial is returned.
func admit(t *testing.T, st ledger.Store, a *ledger.Admission) (*ledger.Lease, *ledger.Denial) {
	t.Helper()
	l, err := st.Admit(ctx(t), a)
	if d, ok := ledger.AsDenial(err); ok {
		if l != nil {
			t.Errorf("Admit refused with %v but returned a lease", d)
		}
		return nil, d
	}
	if err != nil {
		t.Fatalf("Admit: got error %v; want nil or a denial", err)
	}
	return l, nil
}

func mustAdmit(t *testing.T, st ledger.Store, a *ledger.Admission) *ledger.Lease {
	t.Helper()
	l, d := admit(t, st, a)
	if d != nil {
		t.Fatalf("Admit: got denial %v; want admitted", d)
	}
	return l
}

func mustDeny(t *testing.T, st ledger.Store, a *ledger.Admission, want ledger.Limit, who ledger.Subject) *ledger.Denial {
	t.Helper()
	l, d := admit(t, st, a)
	if d == nil {
		t.Fatalf("Admit: admitted (lease %+v); want a %s denial", l, want)
	}
	if d.Limit != want || d.Subject != who {
		t.Fatalf("Admit: got denial %s on %s; want %s on %s", d.Limit, d.Subject, want, who)
	}
	return d
}

// concurrently runs n admissions at once and returns the leases admitted
// and the denials.
func concurrently(t *testing.T, st ledger.Store, n int, mk func() *ledger.Admission) ([]*ledger.Lease, []*ledger.Denial) {
	t.Helper()
	var (
		mu     sync.Mutex
		leases []*ledger.Lease
		dens   []*ledger.Denial
		wg     sync.WaitGroup
		errs   = make(chan error, n)
	)
	as := make([]*ledger.Admission, n)
	for i := range as {
		as[i] = mk()
	}
	start := make(chan struct{})
	for _, a := range as {
		wg.Go(func() {
			<-start
			l, err := st.Admit(ctx(t), a)
			mu.Lock()
			defer mu.Unlock()
			if d, ok := ledger.AsDenial(err); ok {
				dens = append(dens, d)
				return
			}
			if err != nil {
				errs <- err
				return
			}
			leases = append(leases, l)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Admit: got error %v; want nil or a denial", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return leases, dens
}

func settle(t *testing.T, st ledger.Store, l *ledger.Lease, cost ledger.Nanos, at time.Time, mod ...func(*ledger.Record)) ledger.SettleResult {
	t.Helper()
	rec := &ledger.Record{RequestID: l.RequestID, StartTime: l.At, EndTime: at, StatusCode: 200, Status: "success", Endpoint: "/v1/test"}
	for _, p := range l.Parties {
		switch p.Subject.Kind {
		case ledger.KindKey:
			rec.KeyID, rec.Token = p.Subject.ID, "tok-"+p.Subject.ID
		case ledger.KindUser:
			rec.UserID = p.Subject.ID
		case ledger.KindTeam:
			rec.TeamID = p.Subject.ID
		}
	}
	for _, m := range mod {
		m(rec)
	}
	res, err := st.Settle(ctx(t), l, ledger.Charge{Cost: cost, InputTokens: 10, OutputTokens: 5}, rec)
	if err != nil {
		t.Fatalf("Settle(%s): got error %v; want nil", l.RequestID, err)
	}
	return res
}

func status(t *testing.T, st ledger.Store, s ledger.Subject, l ledger.Limits, now time.Time) ledger.Status {
	t.Helper()
	got, err := st.Status(ctx(t), s, l, now)
	if err != nil {
		t.Fatalf("Status(%s): got error %v; want nil", s, err)
	}
	return got
}

func testRPMExact(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{RPM: 5}}
	now := T0.Add(10 * time.Second)
	leases, dens := concurrently(t, st, 12, func() *ledger.Admission { return admission(now, 0, p) })
	if len(leases) != 5 || len(dens) != 7 {
		t.Fatalf("12 concurrent Admit with rpm 5: got %d admitted, %d refused; want 5 and 7", len(leases), len(dens))
	}
	for _, d := range dens {
		if d.Limit != ledger.LimitRPM || d.Max != 5 || d.Current != 5 {
			t.Errorf("denial: got %+v; want rpm_limit 5 of 5", d)
		}
		if d.RetryAfter != 50*time.Second {
			t.Errorf("denial RetryAfter: got %v; want 50s (to the window's end)", d.RetryAfter)
		}
	}
	if got := status(t, st, p.Subject, p.Limits, now).Requests; got != 5 {
		t.Errorf("Status.Requests: got %d; want 5 (refusals take nothing)", got)
	}
	// The next window starts from zero.
	next := T0.Add(61 * time.Second)
	l := mustAdmit(t, st, admission(next, 0, p))
	if l.Remaining[0].Requests != 4 {
		t.Errorf("Remaining.Requests in a new window: got %d; want 4", l.Remaining[0].Requests)
	}
	if got := status(t, st, p.Subject, p.Limits, next).Requests; got != 1 {
		t.Errorf("Status.Requests in the next window: got %d; want 1", got)
	}
}

func testRefusalTakesNothing(t *testing.T, st ledger.Store) {
	kp := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{RPM: 10, MaxParallel: 5}}
	up := ledger.Party{Subject: user("u1"), Limits: ledger.Limits{RPM: 10}}
	tp := ledger.Party{Subject: team("t1"), Limits: ledger.Limits{MaxBudget: nanos(0.01)}}
	now := T0.Add(5 * time.Second)
	// Spend the team's budget.
	l := mustAdmit(t, st, admission(now, ledger.FromDollars(0.01), tp))
	settle(t, st, l, ledger.FromDollars(0.01), now)

	d := mustDeny(t, st, admission(now, ledger.FromDollars(0.001), kp, up, tp), ledger.LimitBudget, tp.Subject)
	if d.Max != int64(ledger.FromDollars(0.01)) || d.Current != int64(ledger.FromDollars(0.01)) {
		t.Errorf("budget denial: got max %d current %d; want both %d", d.Max, d.Current, ledger.FromDollars(0.01))
	}
	for _, p := range []ledger.Party{kp, up} {
		s := status(t, st, p.Subject, p.Limits, now)
		if s.Requests != 0 || s.InFlight != 0 {
			t.Errorf("%s after the team refused: got %d requests, %d in flight; want 0 and 0", p.Subject, s.Requests, s.InFlight)
		}
	}
	// A key refusal takes nothing from the team either.
	tp2 := ledger.Party{Subject: team("t2"), Limits: ledger.Limits{MaxBudget: nanos(1), MaxParallel: 3}}
	kp2 := ledger.Party{Subject: key("k2"), Limits: ledger.Limits{RPM: 1}}
	mustAdmit(t, st, admission(now, 0, kp2))
	mustDeny(t, st, admission(now, ledger.FromDollars(0.5), kp2, tp2), ledger.LimitRPM, kp2.Subject)
	s := status(t, st, tp2.Subject, tp2.Limits, now)
	if s.Reserved != 0 || s.InFlight != 0 || s.Requests != 0 {
		t.Errorf("team after the key refused: got %+v; want nothing reserved, in flight or counted", s)
	}
}

func testParallel(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxParallel: 2}}
	now := T0.Add(time.Second)
	leases, dens := concurrently(t, st, 6, func() *ledger.Admission { return admission(now, 0, p) })
	if len(leases) != 2 || len(dens) != 4 {
		t.Fatalf("6 concurrent Admit with max_parallel 2: got %d admitted, %d refused; want 2 and 4", len(leases), len(dens))
	}
	for _, d := range dens {
		if d.Limit != ledger.LimitParallel || d.Max != 2 || d.Current != 2 || d.RetryAfter <= 0 {
			t.Errorf("denial: got %+v; want max_parallel_requests 2 of 2 with a RetryAfter", d)
		}
	}
	if got := status(t, st, p.Subject, p.Limits, now).InFlight; got != 2 {
		t.Errorf("Status.InFlight: got %d; want 2", got)
	}
	settle(t, st, leases[0], 0, now.Add(time.Second))
	if got := status(t, st, p.Subject, p.Limits, now).InFlight; got != 1 {
		t.Errorf("Status.InFlight after one Settle: got %d; want 1", got)
	}
	l := mustAdmit(t, st, admission(now.Add(2*time.Second), 0, p))
	mustDeny(t, st, admission(now.Add(2*time.Second), 0, p), ledger.LimitParallel, p.Subject)
	settle(t, st, l, 0, now.Add(3*time.Second))
	settle(t, st, leases[1], 0, now.Add(3*time.Second))
	if got := status(t, st, p.Subject, p.Limits, now.Add(3*time.Second)).InFlight; got != 0 {
		t.Errorf("Status.InFlight after every Settle: got %d; want 0", got)
	}
	concurrently(t, st, 2, func() *ledger.Admission { return admission(now.Add(4*time.Second), 0, p) })
}

func testExpiredLeaseReclaimed(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxParallel: 1}}
	crashed := mustAdmit(t, st, admission(T0, 0, p)) // never settled: its process died
	mustDeny(t, st, admission(T0.Add(29*time.Second), 0, p), ledger.LimitParallel, p.Subject)
	late := T0.Add(ledger.DefaultLeaseTTL + time.Second)
	if got := status(t, st, p.Subject, p.Limits, late).InFlight; got != 0 {
		t.Errorf("Status.InFlight after the lease expired: got %d; want 0 (live leases only)", got)
	}
	l := mustAdmit(t, st, admission(late, 0, p))
	if got := status(t, st, p.Subject, p.Limits, late).InFlight; got != 1 {
		t.Errorf("Status.InFlight after reclaiming: got %d; want 1", got)
	}
	// The crashed request's late Settle must not free the new lease's slot.
	settle(t, st, crashed, 0, late)
	mustDeny(t, st, admission(late, 0, p), ledger.LimitParallel, p.Subject)
	settle(t, st, l, 0, late)
	mustAdmit(t, st, admission(late, 0, p))
}

func testRenew(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxParallel: 1}}
	u := ledger.Party{Subject: user("u1"), Limits: ledger.Limits{MaxParallel: 1}}
	l := mustAdmit(t, st, admission(T0, 0, p, u))
	if err := st.Renew(ctx(t), l, T0.Add(2*time.Minute)); err != nil {
		t.Fatalf("Renew: got error %v; want nil", err)
	}
	at := T0.Add(time.Minute) // past the original expiry
	mustDeny(t, st, admission(at, 0, p), ledger.LimitParallel, p.Subject)
	mustDeny(t, st, admission(at, 0, u), ledger.LimitParallel, u.Subject)
	if got := status(t, st, u.Subject, u.Limits, at).InFlight; got != 1 {
		t.Errorf("user Status.InFlight after Renew: got %d; want 1", got)
	}
	settle(t, st, l, 0, at)
	again := admission(at, 0, p, u)
	mustAdmit(t, st, again)
	// The same admission again (a retry) stands without taking a second slot.
	mustAdmit(t, st, again)
	if got := status(t, st, p.Subject, p.Limits, at).InFlight; got != 1 {
		t.Errorf("Status.InFlight after admitting one request id twice: got %d; want 1", got)
	}
	// A lease that expired and was reclaimed cannot be renewed.
	q := ledger.Party{Subject: key("k2"), Limits: ledger.Limits{MaxParallel: 1}}
	old := mustAdmit(t, st, admission(T0, 0, q))
	mustAdmit(t, st, admission(T0.Add(time.Minute), 0, q))
	if err := st.Renew(ctx(t), old, T0.Add(2*time.Minute)); !errors.Is(err, ledger.ErrLeaseLost) {
		t.Errorf("Renew of a reclaimed lease: got %v; want ErrLeaseLost", err)
	}
}

func testBudgetExact(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxBudget: nanos(0.05)}}
	now := T0.Add(time.Second)
	cent := ledger.FromDollars(0.01)
	leases, dens := concurrently(t, st, 12, func() *ledger.Admission { return admission(now, cent, p) })
	if len(leases) != 5 || len(dens) != 7 {
		t.Fatalf("12 concurrent Admit reserving $0.01 under $0.05: got %d admitted, %d refused; want 5 and 7", len(leases), len(dens))
	}
	for _, d := range dens {
		if d.Limit != ledger.LimitBudget || d.RetryAfter != 0 {
			t.Errorf("denial: got %+v; want max_budget with no RetryAfter (lifetime budget)", d)
		}
	}
	if s := status(t, st, p.Subject, p.Limits, now); s.Reserved != 5*cent || s.Spend != 0 {
		t.Errorf("Status while reserved: got spend %d reserved %d; want 0 and %d", s.Spend, s.Reserved, 5*cent)
	}
	var wg sync.WaitGroup
	for _, l := range leases {
		wg.Go(func() { settle(t, st, l, cent, now.Add(time.Second)) })
	}
	wg.Wait()
	s := status(t, st, p.Subject, p.Limits, now.Add(2*time.Second))
	if s.Spend != 50_000_000 || s.Reserved != 0 {
		t.Errorf("Status after settling: got spend %d reserved %d; want 50000000 and 0", s.Spend, s.Reserved)
	}
	mustDeny(t, st, admission(now, 1, p), ledger.LimitBudget, p.Subject)
}

func testReservationRelease(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxBudget: nanos(0.05)}}
	now := T0
	l := mustAdmit(t, st, admission(now, ledger.FromDollars(0.01), p))
	settle(t, st, l, ledger.FromDollars(0.002), now) // cheaper than reserved
	if s := status(t, st, p.Subject, p.Limits, now); s.Spend != ledger.FromDollars(0.002) || s.Reserved != 0 {
		t.Errorf("after a cheaper Settle: got spend %d reserved %d; want %d and 0", s.Spend, s.Reserved, ledger.FromDollars(0.002))
	}
	l = mustAdmit(t, st, admission(now, ledger.FromDollars(0.01), p))
	settle(t, st, l, ledger.FromDollars(0.03), now) // dearer than reserved
	if s := status(t, st, p.Subject, p.Limits, now); s.Spend != ledger.FromDollars(0.032) || s.Reserved != 0 {
		t.Errorf("after a dearer Settle: got spend %d reserved %d; want %d and 0", s.Spend, s.Reserved, ledger.FromDollars(0.032))
	}
	// 0.032 + 0.018 = 0.05 fits exactly; a nano more does not.
	mustDeny(t, st, admission(now, ledger.FromDollars(0.018)+1, p), ledger.LimitBudget, p.Subject)
	mustAdmit(t, st, admission(now, ledger.FromDollars(0.018), p))
}

func testExpiredReservation(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxBudget: nanos(0.02)}}
	for range 2 {
		mustAdmit(t, st, admission(T0, ledger.FromDollars(0.01), p)) // crashed: never settled
	}
	mustDeny(t, st, admission(T0.Add(10*time.Second), ledger.FromDollars(0.01), p), ledger.LimitBudget, p.Subject)
	late := T0.Add(ledger.DefaultLeaseTTL + time.Second)
	leases, _ := concurrently(t, st, 4, func() *ledger.Admission { return admission(late, ledger.FromDollars(0.01), p) })
	if len(leases) != 2 {
		t.Fatalf("after the reservations expired: got %d of 4 admitted; want 2", len(leases))
	}
	if s := status(t, st, p.Subject, p.Limits, late); s.Reserved != ledger.FromDollars(0.02) || s.InFlight != 2 {
		t.Errorf("Status: got reserved %d, in flight %d; want %d and 2 (no double release)", s.Reserved, s.InFlight, ledger.FromDollars(0.02))
	}
}

func testPeriodRollover(t *testing.T, st ledger.Store) {
	period, err := ledger.ParsePeriod("30s")
	if err != nil {
		t.Fatal(err)
	}
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxBudget: nanos(0.05), Period: period}}
	cent := ledger.FromDollars(0.01)
	for i := range 5 {
		l := mustAdmit(t, st, admission(T0.Add(time.Second), cent, p))
		settle(t, st, l, cent, T0.Add(time.Duration(2+i)*time.Second))
	}
	d := mustDeny(t, st, admission(T0.Add(10*time.Second), cent, p), ledger.LimitBudget, p.Subject)
	if d.RetryAfter != 20*time.Second {
		t.Errorf("budget denial RetryAfter: got %v; want 20s (to the period's end)", d.RetryAfter)
	}
	next := T0.Add(30 * time.Second)
	leases, _ := concurrently(t, st, 12, func() *ledger.Admission { return admission(next, cent, p) })
	if len(leases) != 5 {
		t.Fatalf("12 concurrent Admit in a new period: got %d admitted; want 5 (one reset, none lost)", len(leases))
	}
	s := status(t, st, p.Subject, p.Limits, next)
	if s.Spend != 0 || s.Reserved != 5*cent {
		t.Errorf("Status in the new period: got spend %d reserved %d; want 0 and %d", s.Spend, s.Reserved, 5*cent)
	}
	if s.ResetAt == nil || !s.ResetAt.Equal(T0.Add(60*time.Second)) {
		t.Errorf("Status.ResetAt: got %v; want %v", s.ResetAt, T0.Add(60*time.Second))
	}
	// The previous period's spend is gone when read from a later period.
	if s := status(t, st, p.Subject, p.Limits, T0.Add(95*time.Second)); s.Spend != 0 || s.Reserved != 0 {
		t.Errorf("Status two periods later: got spend %d reserved %d; want 0 and 0", s.Spend, s.Reserved)
	}
	var wg sync.WaitGroup
	for _, l := range leases {
		wg.Go(func() { settle(t, st, l, 2*cent, next.Add(time.Second)) })
	}
	wg.Wait()
	if s := status(t, st, p.Subject, p.Limits, next.Add(time.Second)); s.Spend != 10*cent || s.Reserved != 0 {
		t.Errorf("Status after settling the new period: got spend %d reserved %d; want %d and 0", s.Spend, s.Reserved, 10*cent)
	}
}

func testBudgetReachedZeroReserve(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxBudget: nanos(0.01)}}
	l := mustAdmit(t, st, admission(T0, 0, p))
	settle(t, st, l, ledger.FromDollars(0.01), T0)
	mustDeny(t, st, admission(T0, 0, p), ledger.LimitBudget, p.Subject)
	// max_budget 0 is reached by spend 0: every call is refused, even
	// one that reserves nothing (LiteLLM: spend >= max_budget).
	zero := ledger.Party{Subject: key("k0"), Limits: ledger.Limits{MaxBudget: nanos(0)}}
	mustDeny(t, st, admission(T0, 0, zero), ledger.LimitBudget, zero.Subject)
}

func testTPM(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{TPM: 20}}
	now := T0.Add(3 * time.Second)
	l := mustAdmit(t, st, admission(now, 0, p))
	if l.Remaining[0].Tokens != 20 || l.Remaining[0].Requests != -1 {
		t.Errorf("Remaining: got %+v; want 20 tokens, -1 requests (no rpm)", l.Remaining[0])
	}
	settle(t, st, l, 0, now.Add(time.Second)) // 15 tokens
	l = mustAdmit(t, st, admission(now.Add(2*time.Second), 0, p))
	settle(t, st, l, 0, now.Add(3*time.Second)) // 30 tokens
	d := mustDeny(t, st, admission(now.Add(4*time.Second), 0, p), ledger.LimitTPM, p.Subject)
	if d.Current != 30 || d.Max != 20 {
		t.Errorf("tpm denial: got %d of %d; want 30 of 20", d.Current, d.Max)
	}
	if got := status(t, st, p.Subject, p.Limits, now.Add(4*time.Second)).Tokens; got != 30 {
		t.Errorf("Status.Tokens: got %d; want 30", got)
	}
	mustAdmit(t, st, admission(T0.Add(time.Minute), 0, p))
}

func testSettleIdempotent(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{MaxParallel: 3, MaxBudget: nanos(1)}}
	other := mustAdmit(t, st, admission(T0, ledger.FromDollars(0.1), p))
	l := mustAdmit(t, st, admission(T0, ledger.FromDollars(0.1), p))
	settle(t, st, l, ledger.FromDollars(0.05), T0.Add(time.Second))
	settle(t, st, l, ledger.FromDollars(0.05), T0.Add(time.Second))
	s := status(t, st, p.Subject, p.Limits, T0.Add(time.Second))
	if s.Spend != ledger.FromDollars(0.05) || s.Reserved != ledger.FromDollars(0.1) || s.InFlight != 1 {
		t.Errorf("after Settle twice: got spend %d reserved %d in flight %d; want %d, %d (the other request's), 1",
			s.Spend, s.Reserved, s.InFlight, ledger.FromDollars(0.05), ledger.FromDollars(0.1))
	}
	recs, _, err := st.ListRecords(ctx(t), ledger.RecordFilter{RequestID: l.RequestID})
	if err != nil || len(recs) != 1 {
		t.Errorf("records of the request: got %d, %v; want 1", len(recs), err)
	}
	day := T0.Format(ledger.DayLayout)
	tot, err := st.Totals(ctx(t), ledger.ByKey, day, day)
	if err != nil || len(tot) != 1 || tot[0].Requests != 1 || tot[0].Spend != ledger.FromDollars(0.05) {
		t.Errorf("day totals: got %+v, %v; want one request, $0.05", tot, err)
	}
	settle(t, st, other, 0, T0.Add(time.Second))
}

func testConcurrentSettles(t *testing.T, st ledger.Store) {
	// Parties without limits: Admit takes nothing and Settle only charges,
	// so the test is about concurrent charging (concurrent release is in
	// BudgetExactUnderConcurrency and PeriodRolloverUnderConcurrency).
	parties := []ledger.Party{{Subject: key("k1")}, {Subject: user("u1")}, {Subject: team("t1")}}
	const n = 100
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			l, err := st.Admit(ctx(t), admission(T0, ledger.FromDollars(0.000001), parties...))
			if err != nil {
				t.Errorf("Admit: got error %v; want nil", err)
				return
			}
			settle(t, st, l, ledger.FromDollars(0.000001), T0.Add(time.Second))
		})
	}
	wg.Wait()
	for _, p := range parties {
		s := status(t, st, p.Subject, p.Limits, T0.Add(time.Second))
		if s.Spend != n*1000 || s.Reserved != 0 || s.InFlight != 0 || s.Tokens != n*15 {
			t.Errorf("%s after %d Settles of $0.000001: got %+v; want spend %d, %d tokens, nothing reserved or in flight", p.Subject, n, s, n*1000, n*15)
		}
	}
	day := T0.Format(ledger.DayLayout)
	for _, g := range []ledger.GroupBy{ledger.ByKey, ledger.ByUser, ledger.ByTeam, ledger.ByEndpoint} {
		tot, err := st.Totals(ctx(t), g, day, day)
		if err != nil || len(tot) != 1 || tot[0].Requests != n || tot[0].Spend != n*1000 || tot[0].InputTokens != n*10 || tot[0].OutputTokens != n*5 {
			t.Errorf("Totals(%s): got %+v, %v; want one row of %d requests, %d nanos", g, tot, err, n, n*1000)
		}
	}
}

func testUnadmittedSettle(t *testing.T, st ledger.Store) {
	parties := []ledger.Party{{Subject: key("k1")}, {Subject: user("u1")}}
	l, err := st.Admit(ctx(t), admission(T0, ledger.FromDollars(1), parties...))
	if err != nil || l == nil || l.Admitted {
		t.Fatalf("Admit with no limits: got %+v, %v; want a lease not Admitted", l, err)
	}
	settle(t, st, l, ledger.FromDollars(0.25), T0)
	for _, p := range parties {
		if s := status(t, st, p.Subject, ledger.Limits{}, T0); s.Spend != ledger.FromDollars(0.25) || s.Reserved != 0 || s.InFlight != 0 {
			t.Errorf("%s: got %+v; want spend $0.25 and nothing else", p.Subject, s)
		}
	}
}

func testSoftBudget(t *testing.T, st ledger.Store) {
	p := ledger.Party{Subject: key("k1"), Limits: ledger.Limits{SoftBudget: nanos(0.025)}}
	u := ledger.Party{Subject: user("u1"), Limits: ledger.Limits{SoftBudget: nanos(0.015)}}
	var crossings [][]ledger.Subject
	for i := range 5 {
		l := mustAdmit(t, st, admission(T0, 0, p, u))
		res := settle(t, st, l, ledger.FromDollars(0.01), T0.Add(time.Duration(i)*time.Second))
		crossings = append(crossings, res.SoftCrossed)
	}
	want := [][]ledger.Subject{nil, {u.Subject}, {p.Subject}, nil, nil}
	for i := range want {
		if !slices.Equal(crossings[i], want[i]) {
			t.Errorf("Settle %d: SoftCrossed %v; want %v", i+1, crossings[i], want[i])
		}
	}
}

func testStatus(t *testing.T, st ledger.Store) {
	period, _ := ledger.ParsePeriod("1d")
	lim := ledger.Limits{RPM: 10, TPM: 1000, MaxParallel: 4, MaxBudget: nanos(5), Period: period}
	p := ledger.Party{Subject: team("t1"), Limits: lim}
	now := T0.Add(90 * time.Second)
	if s := status(t, st, p.Subject, lim, now); s.Spend != 0 || s.Reserved != 0 || s.Requests != 0 || s.Tokens != 0 || s.InFlight != 0 {
		t.Errorf("Status of an unknown subject: got %+v; want zeros", s)
	}
	a := mustAdmit(t, st, admission(now, ledger.FromDollars(0.5), p))
	settle(t, st, a, ledger.FromDollars(0.2), now.Add(time.Second))
	mustAdmit(t, st, admission(now.Add(2*time.Second), ledger.FromDollars(0.5), p))
	s := status(t, st, p.Subject, lim, now.Add(3*time.Second))
	wantReset := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	if s.Spend != ledger.FromDollars(0.2) || s.Reserved != ledger.FromDollars(0.5) || s.Requests != 2 || s.Tokens != 15 || s.InFlight != 1 || s.ResetAt == nil || !s.ResetAt.Equal(wantReset) {
		t.Errorf("Status: got %+v (reset %v); want spend $0.2, reserved $0.5, 2 requests, 15 tokens, 1 in flight, reset %v", s, s.ResetAt, wantReset)
	}
	// A minute later the windows are empty; the next day the budget too.
	if s := status(t, st, p.Subject, lim, now.Add(time.Minute)); s.Requests != 0 || s.Tokens != 0 || s.Spend != ledger.FromDollars(0.2) {
		t.Errorf("Status a window later: got %+v; want no requests or tokens, same spend", s)
	}
	if s := status(t, st, p.Subject, lim, wantReset); s.Spend != 0 || s.Reserved != 0 {
		t.Errorf("Status the next day: got %+v; want no spend or reservation", s)
	}
	if s := status(t, st, p.Subject, ledger.Limits{}, now); s.ResetAt != nil {
		t.Errorf("Status without a period: got ResetAt %v; want nil", s.ResetAt)
	}
}

func testListRecords(t *testing.T, st ledger.Store) {
	// Recent times: the DynamoDB store bounds an unfiltered listing to the
	// last days by default.
	base := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	type rc struct{ key, user, team string }
	specs := []rc{{"k1", "u1", "t1"}, {"k2", "u1", ""}, {"k3", "", "t1"}, {"k1", "u1", "t1"}, {"k4", "", ""}, {"k2", "u1", ""}, {"k1", "u1", "t1"}}
	var ids []string // oldest first
	for i, sp := range specs {
		var ps []ledger.Party
		ps = append(ps, ledger.Party{Subject: key(sp.key)})
		if sp.user != "" {
			ps = append(ps, ledger.Party{Subject: user(sp.user)})
		}
		if sp.team != "" {
			ps = append(ps, ledger.Party{Subject: team(sp.team)})
		}
		l, err := st.Admit(ctx(t), admission(base, 0, ps...))
		if err != nil {
			t.Fatal(err)
		}
		settle(t, st, l, ledger.Nanos(i+1), base.Add(time.Duration(i)*time.Minute), func(r *ledger.Record) {
			r.Model = "m"
			r.Expires = base.Add(30 * 24 * time.Hour)
		})
		ids = append(ids, l.RequestID)
	}
	newestFirst := func(idx ...int) []string {
		var out []string
		for i := len(idx) - 1; i >= 0; i-- {
			out = append(out, ids[idx[i]])
		}
		return out
	}
	list := func(f ledger.RecordFilter) []string {
		t.Helper()
		var got []string
		for page := 0; ; page++ {
			recs, next, err := st.ListRecords(ctx(t), f)
			if err != nil {
				t.Fatalf("ListRecords(%+v): got error %v; want nil", f, err)
			}
			if f.Limit > 0 && len(recs) > f.Limit {
				t.Fatalf("ListRecords: got %d records; want at most %d", len(recs), f.Limit)
			}
			for _, r := range recs {
				got = append(got, r.RequestID)
			}
			if next == "" || page > 20 {
				return got
			}
			f.Cursor = next
		}
	}
	all := newestFirst(0, 1, 2, 3, 4, 5, 6)
	cases := []struct {
		name string
		f    ledger.RecordFilter
		want []string
	}{
		{"all", ledger.RecordFilter{}, all},
		{"all paged by 3", ledger.RecordFilter{Limit: 3}, all},
		{"all paged by 1", ledger.RecordFilter{Limit: 1}, all},
		{"token", ledger.RecordFilter{Token: "tok-k1"}, newestFirst(0, 3, 6)},
		{"token paged", ledger.RecordFilter{Token: "tok-k1", Limit: 2}, newestFirst(0, 3, 6)},
		{"key ids", ledger.RecordFilter{KeyIDs: []string{"k2", "k3"}}, newestFirst(1, 2, 5)},
		{"key ids paged", ledger.RecordFilter{KeyIDs: []string{"k2", "k3", "k1"}, Limit: 2}, newestFirst(0, 1, 2, 3, 5, 6)},
		{"user", ledger.RecordFilter{UserID: "u1"}, newestFirst(0, 1, 3, 5, 6)},
		{"user paged", ledger.RecordFilter{UserID: "u1", Limit: 4}, newestFirst(0, 1, 3, 5, 6)},
		{"team", ledger.RecordFilter{TeamID: "t1"}, newestFirst(0, 2, 3, 6)},
		{"user and team", ledger.RecordFilter{UserID: "u1", TeamID: "t1"}, newestFirst(0, 3, 6)},
		{"request", ledger.RecordFilter{RequestID: ids[4]}, []string{ids[4]}},
		{"unknown request", ledger.RecordFilter{RequestID: "nope"}, nil},
		{"time range", ledger.RecordFilter{Start: base.Add(2 * time.Minute), End: base.Add(5 * time.Minute)}, newestFirst(2, 3, 4)},
		{"time range paged", ledger.RecordFilter{Start: base.Add(2 * time.Minute), End: base.Add(5 * time.Minute), Limit: 1}, newestFirst(2, 3, 4)},
		{"user in range", ledger.RecordFilter{UserID: "u1", Start: base.Add(time.Minute), End: base.Add(6 * time.Minute)}, newestFirst(1, 3, 5)},
		{"unknown user", ledger.RecordFilter{UserID: "nobody"}, nil},
	}
	for _, tc := range cases {
		if got := list(tc.f); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
	recs, _, err := st.ListRecords(ctx(t), ledger.RecordFilter{RequestID: ids[6]})
	if err != nil || len(recs) != 1 {
		t.Fatalf("record %s: got %d, %v", ids[6], len(recs), err)
	}
	r := recs[0]
	if r.Spend != 7 || r.KeyID != "k1" || r.UserID != "u1" || r.TeamID != "t1" || r.Token != "tok-k1" || r.Model != "m" ||
		r.InputTokens != 10 || r.OutputTokens != 5 || !r.EndTime.Equal(base.Add(6*time.Minute)) || r.StatusCode != 200 || r.Status != "success" || r.Endpoint != "/v1/test" {
		t.Errorf("record fields: got %+v", r)
	}
	if _, _, err := st.ListRecords(ctx(t), ledger.RecordFilter{Cursor: "%%%"}); err == nil {
		t.Errorf("ListRecords with a malformed cursor: got nil error; want one")
	}
}

func testTotals(t *testing.T, st ledger.Store) {
	day1 := time.Date(2026, 3, 9, 23, 59, 0, 0, time.UTC)
	day2 := day1.Add(2 * time.Minute)
	type sp struct {
		at        time.Time
		key, user string
		endpoint  string
		cost      ledger.Nanos
	}
	for _, s := range []sp{
		{day1, "k1", "u1", "/a", 100},
		{day1, "k2", "u1", "/a", 200},
		{day2, "k1", "u1", "/b", 400},
		{day2, "k1", "", "/a", 800},
	} {
		ps := []ledger.Party{{Subject: key(s.key)}}
		if s.user != "" {
			ps = append(ps, ledger.Party{Subject: user(s.user)})
		}
		l, err := st.Admit(ctx(t), admission(s.at, 0, ps...))
		if err != nil {
			t.Fatal(err)
		}
		settle(t, st, l, s.cost, s.at, func(r *ledger.Record) { r.Endpoint = s.endpoint })
	}
	type row struct {
		day, id string
		spend   ledger.Nanos
		reqs    int64
	}
	check := func(g ledger.GroupBy, from, to string, want []row) {
		t.Helper()
		got, err := st.Totals(ctx(t), g, from, to)
		if err != nil {
			t.Fatalf("Totals(%s): got error %v", g, err)
		}
		var rows []row
		for _, d := range got {
			if d.Group != g {
				t.Errorf("Totals(%s): row of group %s", g, d.Group)
			}
			if d.InputTokens != 10*d.Requests || d.OutputTokens != 5*d.Requests {
				t.Errorf("Totals(%s): tokens %d/%d for %d requests", g, d.InputTokens, d.OutputTokens, d.Requests)
			}
			rows = append(rows, row{d.Day, d.ID, d.Spend, d.Requests})
		}
		if !slices.Equal(rows, want) {
			t.Errorf("Totals(%s, %s..%s): got %v; want %v", g, from, to, rows, want)
		}
	}
	check(ledger.ByKey, "2026-03-09", "2026-03-10", []row{{"2026-03-09", "k1", 100, 1}, {"2026-03-09", "k2", 200, 1}, {"2026-03-10", "k1", 1200, 2}})
	check(ledger.ByUser, "2026-03-09", "2026-03-10", []row{{"2026-03-09", "u1", 300, 2}, {"2026-03-10", "u1", 400, 1}})
	check(ledger.ByEndpoint, "2026-03-10", "2026-03-10", []row{{"2026-03-10", "/a", 800, 1}, {"2026-03-10", "/b", 400, 1}})
	check(ledger.ByTeam, "2026-03-01", "2026-03-31", nil)
	check(ledger.ByKey, "2026-03-11", "2026-03-12", nil)
	if _, err := st.Totals(ctx(t), ledger.ByKey, "2025-01-01", "2026-03-10"); err == nil {
		t.Errorf("Totals over more than %d days: got nil error; want one", ledger.MaxTotalsDays)
	}
	if _, err := st.Totals(ctx(t), ledger.ByKey, "2026-03-10", "2026-03-09"); err == nil {
		t.Errorf("Totals with end before start: got nil error; want one")
	}
}
