package ledger

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Counter is one subject's stored counters, the state both stores keep (the
// bbolt store as one JSON record, the DynamoDB store as one item with the
// same attribute names). The decisions on it live here, so that both stores
// refuse, reset and release by the same rules; the stores only make the
// read-check-write atomic.
//
// Windows and periods are never reset by a timer: a stored window or period
// older than the one of "now" reads as zero, and the next write that
// observes it replaces it (conditionally on the stored value, in DynamoDB).
type Counter struct {
	// RPMWindow and Requests: the rpm window (Window) and its count.
	RPMWindow int64 `json:"rw"`
	Requests  int64 `json:"rn"`
	// TPMWindow and Tokens: the tpm window and its token count.
	TPMWindow int64 `json:"tw"`
	Tokens    int64 `json:"tn"`
	// InFlight is len(Leases), kept as a number so DynamoDB can compare it.
	InFlight int64                `json:"inflight"`
	Leases   map[string]LeaseHold `json:"leases,omitempty"`
	// Period is the budget period index of Committed and Spend (-1: none
	// yet). Committed is Spend plus open reservations.
	Period    int64 `json:"bp"`
	Committed Nanos `json:"committed"`
	Spend     Nanos `json:"spend"`
	// SoftWarned is the period in which a soft-budget crossing was last
	// reported (-1: never), so it is reported once per period.
	SoftWarned int64 `json:"sw"`
}

// LeaseHold is what one admitted request holds on one subject.
type LeaseHold struct {
	// Exp is when the lease expires, Unix milliseconds.
	Exp int64 `json:"exp"`
	// Res is the reservation added to Committed in period Per.
	Res Nanos `json:"res"`
	Per int64 `json:"per"`
}

// NewCounter is the state of a subject that has no stored counters.
func NewCounter() *Counter {
	return &Counter{RPMWindow: -1, TPMWindow: -1, Period: -1, SoftWarned: -1}
}

// ErrLeaseLost is Renew's answer when a party's lease is gone: it expired
// and was reclaimed by an admission, or the request was already settled.
var ErrLeaseLost = errors.New("lease no longer held")

// NeedsLease reports whether an admission holds a lease on a party with
// limits l: a parallel slot, or a reservation to give back. Rate-only
// parties hold none (a lease map bounded by concurrency, not traffic).
func NeedsLease(l Limits, reserve Nanos) bool {
	return l.MaxParallel > 0 || (l.MaxBudget != nil && reserve > 0)
}

// Holds reports whether l holds a lease on party p (one of l.Parties):
// l was admitted and p's limits need one (NeedsLease; such limits are
// always Enforced).
func (l *Lease) Holds(p Party) bool { return l.Admitted && NeedsLease(p.Limits, l.Reserved) }

// BudgetNeed is the room an admission needs under a budget: Reserve, and at
// least one nano-dollar, so that a party whose spend has reached MaxBudget is
// refused even by a request that reserves nothing (LiteLLM refuses when
// spend >= max_budget).
func BudgetNeed(reserve Nanos) Nanos { return max(reserve, 1) }

// PeriodIndex is the budget period index of p at t for a party with limits
// l (0 when the party has no Period).
func PeriodIndex(l Limits, t time.Time) int64 { return l.Period.Index(t) }

// CurrentRequests is the count of the rpm window containing now.
func (c *Counter) CurrentRequests(now time.Time) int64 {
	if c.RPMWindow >= Window(now) {
		return c.Requests
	}
	return 0
}

// CurrentTokens is the token count of the tpm window containing now.
func (c *Counter) CurrentTokens(now time.Time) int64 {
	if c.TPMWindow >= Window(now) {
		return c.Tokens
	}
	return 0
}

// periodCurrent reports whether the stored period is period pi (or later: an
// instance whose clock runs ahead wrote it; it is never rolled back).
func (c *Counter) periodCurrent(pi int64) bool { return c.Period >= pi }

// CurrentCommitted and CurrentSpend read the budget period containing now.
func (c *Counter) CurrentCommitted(l Limits, now time.Time) Nanos {
	if c.periodCurrent(PeriodIndex(l, now)) {
		return c.Committed
	}
	return 0
}

// CurrentSpend is the spend of the period containing now.
func (c *Counter) CurrentSpend(l Limits, now time.Time) Nanos {
	if c.periodCurrent(PeriodIndex(l, now)) {
		return c.Spend
	}
	return 0
}

// Expired lists the request ids of leases expired at now, sorted.
func (c *Counter) Expired(now time.Time) []string {
	var ids []string
	for id, h := range c.Leases {
		if h.Exp <= now.UnixMilli() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Live counts the leases alive at now.
func (c *Counter) Live(now time.Time) int64 {
	var n int64
	for _, h := range c.Leases {
		if h.Exp > now.UnixMilli() {
			n++
		}
	}
	return n
}

// Check returns the first of p's limits that refuses a (nil if all pass).
// reclaim reports that the refusal is a parallel or budget one that
// reclaiming expired leases could lift: the store reclaims them and checks
// again before the refusal is final.
func (c *Counter) Check(p Party, a *Admission) (d *Denial, reclaim bool) {
	l, now := p.Limits, a.Now
	if l.RPM > 0 {
		if cur := c.CurrentRequests(now); cur >= l.RPM {
			return &Denial{Subject: p.Subject, Limit: LimitRPM, Max: l.RPM, Current: cur, RetryAfter: WindowEnd(Window(now)).Sub(now)}, false
		}
	}
	if l.TPM > 0 {
		if cur := c.CurrentTokens(now); cur >= l.TPM {
			return &Denial{Subject: p.Subject, Limit: LimitTPM, Max: l.TPM, Current: cur, RetryAfter: WindowEnd(Window(now)).Sub(now)}, false
		}
	}
	expired := len(c.Expired(now)) > 0
	if l.MaxParallel > 0 && c.InFlight >= l.MaxParallel {
		if expired {
			return nil, true
		}
		d := &Denial{Subject: p.Subject, Limit: LimitParallel, Max: l.MaxParallel, Current: c.InFlight, RetryAfter: DefaultLeaseTTL}
		for _, h := range c.Leases {
			d.RetryAfter = min(d.RetryAfter, time.UnixMilli(h.Exp).Sub(now))
		}
		d.RetryAfter = max(d.RetryAfter, time.Second)
		return d, false
	}
	if l.MaxBudget != nil {
		cur := c.CurrentCommitted(l, now)
		if cur+BudgetNeed(a.Reserve) > *l.MaxBudget {
			for _, id := range c.Expired(now) {
				if h := c.Leases[id]; h.Res > 0 && h.Per == c.Period {
					return nil, true
				}
			}
			d := &Denial{Subject: p.Subject, Limit: LimitBudget, Max: int64(*l.MaxBudget), Current: int64(cur)}
			if end := l.Period.End(now); end != nil {
				d.RetryAfter = end.Sub(now)
			}
			return d, false
		}
	}
	return nil, false
}

// Remaining is p's capacity left once a is admitted (c before admission).
func (c *Counter) Remaining(p Party, a *Admission) Remaining {
	r := Remaining{Requests: -1, Tokens: -1}
	if p.Limits.RPM > 0 {
		r.Requests = max(p.Limits.RPM-c.CurrentRequests(a.Now)-1, 0)
	}
	if p.Limits.TPM > 0 {
		r.Tokens = max(p.Limits.TPM-c.CurrentTokens(a.Now), 0)
	}
	return r
}

// Admit takes a's share on c: the request count, the lease and the
// reservation. The caller checked first (Check).
func (c *Counter) Admit(p Party, a *Admission, expires time.Time) {
	w := Window(a.Now)
	if c.RPMWindow < w {
		c.RPMWindow, c.Requests = w, 0
	}
	c.Requests++
	var res Nanos
	per := PeriodIndex(p.Limits, a.Now)
	if p.Limits.MaxBudget != nil {
		if c.Period < per {
			c.Period, c.Committed, c.Spend = per, 0, 0
		}
		c.Committed += a.Reserve
		res = a.Reserve
	}
	if NeedsLease(p.Limits, a.Reserve) {
		if c.Leases == nil {
			c.Leases = map[string]LeaseHold{}
		}
		c.Leases[a.RequestID] = LeaseHold{Exp: expires.UnixMilli(), Res: res, Per: per}
		c.InFlight++
	}
}

// Release removes lease id and gives back its reservation, if the period it
// was taken in is still the stored one (a newer period started from zero).
func (c *Counter) Release(id string) bool {
	h, ok := c.Leases[id]
	if !ok {
		return false
	}
	delete(c.Leases, id)
	c.InFlight--
	if h.Res > 0 && h.Per == c.Period {
		c.Committed -= h.Res
	}
	return true
}

// Charge adds a request's cost and tokens at time at: spend and committed of
// the budget period current at at (a new period starts from zero: a request
// admitted in one period and settled in the next is charged to the next, as
// spend of an ended period no longer limits anything), tokens to the tpm
// window current at at. It reports whether this charge is the first in the
// period after which spend reached SoftBudget.
func (c *Counter) Charge(l Limits, cost Nanos, tokens int64, at time.Time) (softCrossed bool) {
	if pi := PeriodIndex(l, at); c.Period < pi {
		c.Period, c.Committed, c.Spend = pi, 0, 0
	}
	c.Committed += cost
	c.Spend += cost
	if w := Window(at); c.TPMWindow < w {
		c.TPMWindow, c.Tokens = w, 0
	}
	c.Tokens += tokens
	if l.SoftBudget != nil && c.Spend >= *l.SoftBudget && c.SoftWarned < c.Period {
		c.SoftWarned = c.Period
		return true
	}
	return false
}

// Status reads c for limits l at now.
func (c *Counter) Status(l Limits, now time.Time) Status {
	st := Status{
		Spend:    c.CurrentSpend(l, now),
		ResetAt:  l.Period.End(now),
		Requests: c.CurrentRequests(now),
		Tokens:   c.CurrentTokens(now),
		InFlight: c.Live(now),
	}
	st.Reserved = c.CurrentCommitted(l, now) - st.Spend
	return st
}

// NewLease is the lease of a before anything is taken: not Admitted,
// nothing remaining reported (-1), expiring LeaseTTL (or DefaultLeaseTTL)
// after a.Now.
func NewLease(a *Admission) *Lease {
	ttl := a.LeaseTTL
	if ttl <= 0 {
		ttl = DefaultLeaseTTL
	}
	l := &Lease{
		RequestID: a.RequestID, Parties: a.Parties, Reserved: a.Reserve,
		At: a.Now, Expires: a.Now.Add(ttl),
		Periods:   make([]int64, len(a.Parties)),
		Remaining: make([]Remaining, len(a.Parties)),
	}
	for i, p := range a.Parties {
		l.Periods[i] = PeriodIndex(p.Limits, a.Now)
		l.Remaining[i] = Remaining{Requests: -1, Tokens: -1}
	}
	return l
}

// SettledRecord is the record a Settle stores: rec (or an empty one) with
// the lease's request id, the charge's cost and tokens, and EndTime at (UTC).
func SettledRecord(l *Lease, c Charge, rec *Record, at time.Time) *Record {
	r := &Record{}
	if rec != nil {
		*r = *rec
	}
	r.RequestID = l.RequestID
	r.Spend = c.Cost
	r.InputTokens, r.OutputTokens = c.InputTokens, c.OutputTokens
	// Text fields come partly from upstreams (the model) and must never
	// make a record too large to store, which would lose the charge.
	r.Model = TruncateUTF8(r.Model, MaxRecordText)
	r.UsageSource = TruncateUTF8(r.UsageSource, MaxRecordText)
	r.KeyAlias = TruncateUTF8(r.KeyAlias, 4*MaxRecordText)
	r.EndTime = at.UTC()
	r.StartTime = r.StartTime.UTC()
	if !r.Expires.IsZero() {
		r.Expires = r.Expires.UTC()
	}
	return r
}

// MaxRecordText bounds a usage record's model and usage_source.
const MaxRecordText = 256

// TruncateUTF8 cuts s to at most n bytes at a UTF-8 boundary.
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// SettleTime is when a settlement happened: the record's end time, else the
// admission time, else now.
func SettleTime(l *Lease, rec *Record) time.Time {
	switch {
	case rec != nil && !rec.EndTime.IsZero():
		return rec.EndTime
	case l != nil && !l.At.IsZero():
		return l.At
	}
	return time.Now()
}

// MaxTotalsDays caps the range of one Totals call.
const MaxTotalsDays = 366

// DayLayout is the form of a day (UTC) in DayTotal and Totals.
const DayLayout = "2006-01-02"

// Days lists the days from startDay to endDay inclusive, refusing a range of
// more than MaxTotalsDays or a malformed day.
func Days(startDay, endDay string) ([]string, error) {
	s, err := time.Parse(DayLayout, startDay)
	if err != nil {
		return nil, fmt.Errorf("start day %q: want YYYY-MM-DD", startDay)
	}
	e, err := time.Parse(DayLayout, endDay)
	if err != nil {
		return nil, fmt.Errorf("end day %q: want YYYY-MM-DD", endDay)
	}
	if e.Before(s) {
		return nil, fmt.Errorf("end day %s is before start day %s", endDay, startDay)
	}
	if n := int(e.Sub(s)/(24*time.Hour)) + 1; n > MaxTotalsDays {
		return nil, fmt.Errorf("range %s..%s is %d days; at most %d per call", startDay, endDay, n, MaxTotalsDays)
	}
	var days []string
	for d := s; !d.After(e); d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(DayLayout))
	}
	return days, nil
}

// TimeKey renders t so that string order is time order; record sort keys are
// TimeKey(EndTime) + "#" + RequestID in both stores.
func TimeKey(t time.Time) string { return t.UTC().Format("20060102T150405.000000000Z") }

// RecordKey is the sort key of r: newest first is descending RecordKey.
func RecordKey(r *Record) string { return TimeKey(r.EndTime) + "#" + r.RequestID }

// EncodeCursor and DecodeCursor make a record key an opaque page cursor.
func EncodeCursor(recordKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(recordKey))
}

// DecodeCursor reverses EncodeCursor.
func DecodeCursor(c string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", fmt.Errorf("malformed cursor")
	}
	return string(b), nil
}

// PageLimit is f's page size: 100 by default, at most MaxPage.
func PageLimit(f RecordFilter) int {
	switch {
	case f.Limit <= 0:
		return 100
	case f.Limit > MaxPage:
		return MaxPage
	}
	return f.Limit
}

// Match reports whether r passes every filter of f (cursor excluded).
func (f RecordFilter) Match(r *Record) bool {
	if f.Token != "" && r.Token != f.Token ||
		f.UserID != "" && r.UserID != f.UserID ||
		f.TeamID != "" && r.TeamID != f.TeamID ||
		f.RequestID != "" && r.RequestID != f.RequestID ||
		!f.Start.IsZero() && r.EndTime.Before(f.Start) ||
		!f.End.IsZero() && !r.EndTime.Before(f.End) {
		return false
	}
	return len(f.KeyIDs) == 0 || slices.Contains(f.KeyIDs, r.KeyID)
}

// GroupIDs are rec's ids per totals dimension (empty ones left out).
func GroupIDs(rec *Record) map[GroupBy]string {
	m := map[GroupBy]string{}
	for g, id := range map[GroupBy]string{ByKey: rec.KeyID, ByUser: rec.UserID, ByTeam: rec.TeamID, ByEndpoint: rec.Endpoint} {
		if id != "" {
			m[g] = id
		}
	}
	return m
}
