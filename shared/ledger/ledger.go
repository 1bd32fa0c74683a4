// Package ledger is Keyway's governance store: the counters behind rate
// limits, parallel-request leases, budget reservations and spend, and the
// usage records and per-day totals that metering writes. It is a separate
// contract from keys.Store on purpose: counters live in their own records
// (their own bbolt buckets, their own DynamoDB items), so no admin write to
// a key, user or team record can ever overwrite spend or a window count
// (issue 13, defect 1).
//
// Money is integer nano-dollars (Nanos) everywhere below this package's API,
// so a million charges of $0.000001 add up to exactly $1.
//
// The request path is: Admit (only when some party has a limit) → forward →
// Settle (always, on every exit path). Admission checks and takes everything
// for every party in one atomic store operation; Settle releases what
// Admit took and charges what was metered, idempotently per request id.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Nanos is an amount of money in nano-dollars (1e-9 USD).
type Nanos int64

// NanosPerDollar converts dollars to Nanos.
const NanosPerDollar = 1_000_000_000

// MaxDollars is the largest amount Nanos holds safely (about $9.2e9 is
// int64's limit); FromDollars saturates there.
const MaxDollars = 9e9

// FromDollars converts a dollar amount to Nanos, rounding to the nearest
// nano-dollar. It saturates: NaN and negative amounts are 0, amounts above
// MaxDollars are MaxDollars, so no input (a huge usage count, a hostile
// upstream) can wrap around to a negative charge. Config and the admin API
// refuse amounts out of range before they get here.
func FromDollars(d float64) Nanos {
	switch {
	case math.IsNaN(d) || d <= 0:
		return 0
	case d >= MaxDollars:
		return Nanos(MaxDollars * NanosPerDollar)
	}
	return Nanos(math.Round(d * NanosPerDollar))
}

// Dollars is n in dollars, for display.
func (n Nanos) Dollars() float64 { return float64(n) / NanosPerDollar }

// Kind is whose counters a Subject names.
type Kind string

// The kinds of subject. A key's counters are keyed by its TokenID, which is
// stable across /key/regenerate, so spend follows the key through rotation.
const (
	KindKey  Kind = "key"
	KindUser Kind = "user"
	KindTeam Kind = "team"
)

// Subject names one set of counters.
type Subject struct {
	Kind Kind
	ID   string
}

func (s Subject) String() string { return string(s.Kind) + " " + fmt.Sprintf("%q", s.ID) }

// Limits are one subject's enforced limits. Zero (or nil) means "no limit".
type Limits struct {
	// RPM caps requests admitted per fixed 60 s window (UTC minute).
	RPM int64
	// TPM caps tokens per fixed 60 s window: a request is admitted while
	// the window's count is below TPM; tokens are counted at Settle.
	TPM int64
	// MaxParallel caps requests in flight (leases).
	MaxParallel int64
	// MaxBudget caps spend plus open reservations in the current period:
	// an admission passes while committed + max(Reserve, 1 nano) <=
	// MaxBudget, so a party whose spend has reached it is refused even by
	// a request that reserves nothing (LiteLLM: spend >= max_budget).
	MaxBudget *Nanos
	// SoftBudget: crossing it is reported by Settle (SettleResult); it
	// never refuses.
	SoftBudget *Nanos
	// Period is budget_duration: spend returns to 0 when it ends. The zero
	// Period is "never" (lifetime spend).
	Period Period
}

// Enforced reports whether Admit has anything to check for l.
func (l Limits) Enforced() bool {
	return l.RPM > 0 || l.TPM > 0 || l.MaxParallel > 0 || l.MaxBudget != nil
}

// Party is a subject with the limits that apply to it on this request.
type Party struct {
	Subject Subject
	Limits  Limits
}

// Admission is one request asking to go through.
type Admission struct {
	// RequestID identifies the request; leases and settlements are keyed
	// by it, which makes Settle idempotent.
	RequestID string
	// Parties are the key, its user and its team (those that exist), in
	// that order.
	Parties []Party
	// Reserve is the cost held against every budgeted party until Settle.
	Reserve Nanos
	// Now is the admission time (windows and periods are computed from it).
	Now time.Time
	// LeaseTTL is how long the lease lives without Renew; a crashed
	// instance's lease frees after it. Stores use DefaultLeaseTTL when 0.
	LeaseTTL time.Duration
}

// DefaultLeaseTTL is the life of a lease that is not renewed. Gateways renew
// leases of long responses every DefaultLeaseTTL/3.
const DefaultLeaseTTL = 30 * time.Second

// Lease is what Admit took for one request, passed back to Renew and Settle.
// A Lease with Admitted false is a request that needed no admission (no
// party had a limit); Settle still charges it.
type Lease struct {
	RequestID string
	Parties   []Party
	Reserved  Nanos
	Admitted  bool
	// At is the admission time; Periods[i] is the budget period index of
	// Parties[i] at that time (the period its reservation was taken in;
	// Settle charges spend to the period current at settlement, see
	// Store.Settle).
	At      time.Time
	Periods []int64
	Expires time.Time
	// Remaining is what was left after this admission, per party, for the
	// x-ratelimit-remaining-* headers (best effort across instances).
	Remaining []Remaining
}

// Remaining is a party's capacity left after an admission; -1 = no limit.
type Remaining struct {
	Requests int64
	Tokens   int64
}

// Limit names the limit a Denial hit, with LiteLLM's field names.
type Limit string

// The limits Admit enforces.
const (
	LimitRPM      Limit = "rpm_limit"
	LimitTPM      Limit = "tpm_limit"
	LimitParallel Limit = "max_parallel_requests"
	LimitBudget   Limit = "max_budget"
)

// Denial is Admit's answer when a party is over a limit. Nothing was taken.
type Denial struct {
	Subject Subject
	Limit   Limit
	// Max is the limit's value (requests, tokens, slots or Nanos).
	Max int64
	// Current is what was in use when refused.
	Current int64
	// RetryAfter is when capacity frees at the earliest (window end,
	// lease expiry bound, or budget period end); 0 when it never frees
	// by itself (a lifetime budget).
	RetryAfter time.Duration
}

func (d *Denial) Error() string {
	return fmt.Sprintf("%s over %s (%d of %d)", d.Subject, d.Limit, d.Current, d.Max)
}

// AsDenial returns the *Denial in err's chain, if any.
func AsDenial(err error) (*Denial, bool) {
	var d *Denial
	ok := errors.As(err, &d)
	return d, ok
}

// Charge is what a request cost, as metered.
type Charge struct {
	Cost         Nanos
	InputTokens  int64
	OutputTokens int64
}

// Record is one pass-through request's usage record, served by
// /spend/logs with LiteLLM's field names (see admin).
type Record struct {
	RequestID   string
	Token       string // the key's token (SHA-256 hex) at the time; never a secret
	KeyID       string // the key's TokenID
	KeyAlias    string
	UserID      string
	TeamID      string
	Endpoint    string // the endpoint's configured path
	Model       string
	Spend       Nanos
	InputTokens int64
	// OutputTokens, CachedTokens: as metered; 0 when unknown.
	OutputTokens int64
	CachedTokens int64
	StartTime    time.Time
	EndTime      time.Time
	StatusCode   int
	// Status is "success" (status < 400) or "failure".
	Status string
	// UsageSource says where the numbers came from: "openai", "anthropic",
	// "header" (x-litellm-response-cost), "none" (no usage: flat price), or
	// "missing: <why>".
	UsageSource string
	// Expires is when the record may be deleted (retention).
	Expires time.Time
}

// SettleResult reports what Settle observed.
type SettleResult struct {
	// SoftCrossed lists parties whose spend reached their SoftBudget,
	// reported once per period and party: by the Settle that crossed it
	// (bbolt), or by the first Settle that observes the crossing (DynamoDB:
	// concurrent Settles that each read spend below the mark leave it to
	// the next one).
	SoftCrossed []Subject
}

// Status is a subject's counters now, for info responses.
type Status struct {
	// Spend in the current budget period (lifetime when no Period).
	Spend Nanos
	// Reserved is open reservations in the current period.
	Reserved Nanos
	// ResetAt is when the current period ends (nil: no Period).
	ResetAt *time.Time
	// Requests and Tokens in the current 60 s window; InFlight live leases.
	Requests int64
	Tokens   int64
	InFlight int64
}

// RecordFilter selects usage records. Empty fields match everything.
type RecordFilter struct {
	Token     string // api_key
	KeyIDs    []string
	UserID    string
	TeamID    string
	RequestID string
	// Start and End bound EndTime (records are ordered by end time).
	// A listing with no filter but time may be bounded by the store when
	// Start is zero (the DynamoDB store reads the last DefaultListDays).
	Start time.Time // inclusive; zero = no bound
	End   time.Time // exclusive; zero = no bound
	// Limit caps the page (stores cap it at MaxPage); Cursor continues a
	// previous page ("" = first).
	Limit  int
	Cursor string
}

// MaxPage is the largest page ListRecords returns.
const MaxPage = 1000

// GroupBy names the dimension of per-day totals.
type GroupBy string

// The per-day total dimensions, kept as charges happen (no scans).
const (
	ByKey      GroupBy = "key" // by TokenID
	ByUser     GroupBy = "user"
	ByTeam     GroupBy = "team"
	ByEndpoint GroupBy = "endpoint"
)

// DayTotal is one day's total for one group value.
type DayTotal struct {
	Day          string // YYYY-MM-DD (UTC)
	Group        GroupBy
	ID           string
	Spend        Nanos
	Requests     int64
	InputTokens  int64
	OutputTokens int64
}

// Store is the governance store. Implementations must be safe for concurrent
// use across goroutines, processes and (DynamoDB) instances, and pass
// ledgertest.
type Store interface {
	// Admit checks every party's limits and, only if all pass, takes an rpm
	// count, a parallel lease and the reservation for each, atomically. It
	// returns a *Denial (wrapped or not) when a limit refuses, having taken
	// nothing. Leases of crashed instances (expired) are reclaimed before a
	// parallel or budget refusal is final.
	Admit(ctx context.Context, a *Admission) (*Lease, error)
	// Renew extends an admitted lease until the given time (and sets
	// l.Expires). A party whose lease is gone (expired and reclaimed, or
	// settled) makes it return an error wrapping ErrLeaseLost; the other
	// parties' leases are still renewed. Renew of a lease not Admitted is a
	// no-op.
	Renew(ctx context.Context, l *Lease, until time.Time) error
	// Settle releases l's lease and reservation, charges c to every party's
	// spend, counts its tokens in each party's current tpm window, writes
	// rec and adds it to the day's totals. The settlement time is
	// rec.EndTime (else l.At): spend and tokens go to the budget period and
	// window current then. A request admitted in one period and settled in
	// the next is charged to the next (the ended period's spend limits
	// nothing any more); its reservation is given back only if the period
	// it was taken in is still the stored one (a new period starts from
	// zero). The stored record is rec with RequestID, Spend, tokens and
	// EndTime from l, c and that time (rec may be nil). It is idempotent per
	// l.RequestID: a retried Settle charges once and reports nothing.
	Settle(ctx context.Context, l *Lease, c Charge, rec *Record) (SettleResult, error)
	// Status reads a subject's counters (period from limits.Period).
	Status(ctx context.Context, s Subject, limits Limits, now time.Time) (Status, error)
	// ListRecords pages usage records, newest first.
	ListRecords(ctx context.Context, f RecordFilter) (recs []*Record, next string, err error)
	// Totals returns per-day totals in [startDay, endDay] (YYYY-MM-DD) for g.
	Totals(ctx context.Context, g GroupBy, startDay, endDay string) ([]DayTotal, error)
}
