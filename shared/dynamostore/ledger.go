package dynamostore

// The governance ledger on the Keyway table (ledger.Store), beside the key,
// user and team items and never inside them.
//
// Items (new prefixes in the existing table; no definition change):
//
//	what          pk                          sk            gsi1pk / gsi1sk               gsi2pk / gsi2sk
//	counters      CTR#<kind>#<id>             CTR           -                             -
//	record        LOG#<keyId>                 <rk>          LOGU#<user> / <rk>            LOGT#<team> / <rk>
//	request       REQ#<requestId>             REQ           LOGD#<day>#<0-7> / <rk>       LOGK#<token> / <rk>
//	day total     DAY#<group>#<day>#<0-3>     <id>          -                             -
//
// rk is ledger.RecordKey: TimeKey(EndTime) "#" requestId, so string order
// is time order. A counters item holds ledger.Counter under the same names
// (rw, rn, tw, tn, inflight, leases.<requestId>{exp,res,per}, bp,
// committed, spend, sw). The request item is the usage record's second copy
// and Settle's idempotency marker (written with attribute_not_exists(pk) in
// the settling transaction); records and request items carry ttl =
// Record.Expires, so DynamoDB TTL applies retention.
//
// Access patterns (Query only, newest first, ScanIndexForward=false):
//
//	request id  GetItem REQ#<id>                          1 RCU
//	key ids     base table LOG#<keyId>, one Query per key, merged
//	token       gsi2 LOGK#<token>
//	user        gsi1 LOGU#<user>
//	team        gsi2 LOGT#<team>
//	unfiltered  gsi1 LOGD#<day>#<shard>: eight shard Queries per day, newest
//	            day first, merged; Start defaults to End (or now) minus
//	            DefaultListDays, so an unbounded listing reads a week at most
//	day totals  Query DAY#<group>#<day>#<shard>: 4 per day, ≤366 days per call
//
// Other filters are applied to what the chosen Query returns (Start/End
// narrow its sort-key range). Sharding keeps every partition below
// DynamoDB's 1,000 WCU/s per partition: records spread by key, user, team,
// token and 8 day shards; totals by 4 shards per group and day. A single
// key's (or user's, or team's) counters item is one item, so one subject's
// admissions are bounded by the per-item rate (about 1,000 writes/s, 500/s
// for transactions): that is the price of exact limits. Multi-party
// admissions and every Settle are transactions, and DynamoDB cancels
// concurrent transactions on one item (TransactionConflict): those are
// retried like any lost race (ledgerAttempts rounds, jittered backoff), so
// one very busy user or team serializes its requests' admissions and
// settlements through its counters item.
//
// Capacity, in on-demand request units (items under 1 KB, strongly
// consistent reads of items under 4 KB = 1 RRU; transactional writes are 2
// WRU per item; every index an item lands on is 1 more WRU; a write whose
// condition fails is counted as billed like one that applies, an upper
// bound for a cancelled transaction; ReturnValues costs nothing). "Steady"
// is a store that has these subjects' counters cached (below) and whose
// cache is current; "miss" is a subject it has not seen (or forgot);
// "stale" is a cache another instance has moved past (a new minute or
// period it did not see, a lease map it did not see created, or counts
// that no longer fit the limit): one failed write, then a miss. Two
// instances alternating on one key measured about one stale Admit and one
// stale Settle per instance and minute (TestLedgerAlternatingInstances...).
//
//	                              steady          miss            stale
//	Admit, no party with limits   0               0               0
//	Admit, one party              1 WRU           1 RRU + 1 WRU   1 RRU + 2 WRU
//	                              (UpdateItem)    (GetItem, then UpdateItem)
//	Admit, three parties          6 WRU           3 RRU + 6 WRU   3 RRU + 12 WRU
//	                              (TransactWriteItems of 3 items; misses read with GetItem)
//	round trips before forwarding 1               2               3
//	Admit refused                 1 RRU per party (a refusal is always read fresh;
//	                              + the failed write when the cache allowed it)
//	Settle, key only              10 WRU          1 RRU + 10 WRU  1 RRU + 16 WRU
//	                              (transaction: counter, request, record = 6 WRU;
//	                              + 2 index writes: request on gsi1 day shard and
//	                              gsi2 token; + 2 day totals: key, endpoint)
//	Settle, key+user+team         18 WRU          3 RRU + 18 WRU  3 RRU + 28 WRU
//	                              (transaction: 3 counters, request, record = 10 WRU;
//	                              + 4 index writes: request gsi1/gsi2, record gsi1
//	                              user/gsi2 team; + 4 day totals)
//	Renew                         1 WRU per party holding a lease
//	soft budget                   +1 RRU per Settle and party with a SoftBudget whose
//	                              crossing is not yet reported in the period (read
//	                              fresh, not cached); +1 WRU once per period and party
//	reclaim                       +1 read round and +1 write per reclaimed batch
//	lost race (same minute)       +1 failed write and 1 read round per retry
//	ListRecords by request id     1 RRU; by key/token/user/team: 0.5 RRU per 4 KB read
//	                              per Query page; unfiltered: ≥ 8 Queries per day in range
//	Totals                        4 Queries per day in range
//	Status                        1 RRU
//
// A counters item grows with its open leases (about 60-80 bytes each): past
// about 12 in flight it is over 1 KB and each write of it costs 2 WRU (per
// KB, before or after, whichever is larger).
//
// At us-east-1 on-demand list prices ($0.625 per million WRU, $0.125 per
// million RRU; to be checked against the current price list), in the steady
// state a key with limits, alone, costs 1 WRU to admit and 10 WRU to settle,
// about $6.9 per million requests (was 2 RRU + 11 WRU, $7.1, when every
// Admit and Settle read first); with a user and a team, all with limits,
// 24 WRU, $15.0 per million (was 6 RRU + 24 WRU, $15.75). Records are stored
// twice (request and record items) plus their index copies until their TTL.
//
// Concurrency: Admit and Settle decide with the same ledger.Counter rules
// as the bbolt store, and write with conditions that pin what the decision
// depended on (the window, the period, the lease, the lease map's presence)
// and the limits themselves ("rn < :rpm", "tn < :tpm" unless the stored tpm
// window is older, "inflight < :max", "committed <= :maxMinusNeed"). Counts
// change with ADD, so concurrent admissions in the same window and period do
// not invalidate each other. Because every limit is in the condition, a
// write is right whatever state it was built from: each Store keeps the
// last counters it read or wrote per subject (counterCache, 10,000
// subjects) and builds the first write from them without reading (issue 10:
// one round trip before forwarding). Single-party admissions get the item
// back (ReturnValues ALL_NEW), so their cache and x-ratelimit-remaining
// numbers are exact as of the write; after a transaction the cache is the
// state decided on plus this instance's change, and remaining numbers are
// computed from the state decided on (best effort across instances, as the
// contract says). A failed condition, and any refusal, reclaim or "already
// admitted" decided on a cached state, go to rounds that read every party
// fresh (strongly consistent) and decide again: budgets and in-flight
// counts go down as other instances settle, so a cached state may refuse
// wrongly, never admit wrongly. Settle's first round takes the lease to
// release from the Lease (its reservation and period, pinned in the
// condition with attribute_exists(leases.<id>)), so it reads nothing either;
// its request item stays in the transaction, so a repeated Settle is still
// a no-op.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keywaygw/keyway/shared/ledger"
)

var _ ledger.Store = (*Store)(nil)

// Ledger item prefixes and attributes.
const (
	ledgerCounterPrefix = "CTR#"
	ledgerCounterSK     = "CTR"
	ledgerRecordPrefix  = "LOG#"
	ledgerRequestPrefix = "REQ#"
	ledgerRequestSK     = "REQ"
	ledgerUserLog       = "LOGU#"
	ledgerTeamLog       = "LOGT#"
	ledgerTokenLog      = "LOGK#"
	ledgerDayLog        = "LOGD#"
	ledgerDayPrefix     = "DAY#"
	attrRecordKey       = "rk"

	// ledgerLogShards spreads the unfiltered (all records) index per day;
	// ledgerDayShards spreads the day totals of one group and day.
	ledgerLogShards = 8
	ledgerDayShards = 4

	// ledgerAttempts bounds the read-decide-write rounds of one Admit or
	// Settle under contention (each lost race is one round).
	ledgerAttempts = 40
	// ledgerReclaimBatch bounds the leases one reclaim write removes.
	ledgerReclaimBatch = 25
)

// DefaultListDays is how far back an unfiltered ListRecords without Start
// reads (from End, or now).
const DefaultListDays = 7

type ledgerItem = map[string]types.AttributeValue

func lS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func lN[T ~int64](v T) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(v), 10)}
}

func counterPK(s ledger.Subject) ledgerItem {
	return ledgerItem{attrPK: lS(ledgerCounterPrefix + string(s.Kind) + "#" + s.ID), attrSK: lS(ledgerCounterSK)}
}

// errLedgerRetry is a lost race: re-read and decide again.
var errLedgerRetry = errors.New("concurrent ledger update")

// expr builds one UpdateItem's expression, condition and placeholders.
type expr struct {
	set, add, remove, cond []string
	names                  map[string]string
	vals                   ledgerItem
}

func newExpr() *expr { return &expr{names: map[string]string{}, vals: ledgerItem{}} }

func (e *expr) val(name string, v types.AttributeValue) string {
	e.vals[name] = v
	return name
}

func (e *expr) update() string {
	var parts []string
	if len(e.set) > 0 {
		parts = append(parts, "SET "+strings.Join(e.set, ", "))
	}
	if len(e.remove) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(e.remove, ", "))
	}
	if len(e.add) > 0 {
		parts = append(parts, "ADD "+strings.Join(e.add, ", "))
	}
	return strings.Join(parts, " ")
}

func (e *expr) condition() *string {
	if len(e.cond) == 0 {
		return nil
	}
	return aws.String(strings.Join(e.cond, " AND "))
}

func nilIfEmpty[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

func (st *Store) txUpdate(key ledgerItem, e *expr) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(st.table), Key: key, UpdateExpression: aws.String(e.update()),
		ConditionExpression: e.condition(), ExpressionAttributeNames: nilIfEmpty(e.names), ExpressionAttributeValues: nilIfEmpty(e.vals),
	}}
}

// updateOne applies one update; a failed condition is errLedgerRetry.
func (st *Store) updateOne(ctx context.Context, key ledgerItem, e *expr) error {
	_, err := st.updateItem(ctx, key, e, "")
	return err
}

// updateNew is updateOne returning the item as written (ReturnValues
// ALL_NEW: no read units are charged for it).
func (st *Store) updateNew(ctx context.Context, key ledgerItem, e *expr) (counterState, error) {
	out, err := st.updateItem(ctx, key, e, types.ReturnValueAllNew)
	if err != nil {
		return counterState{}, err
	}
	return decodeCounter(out.Attributes)
}

func (st *Store) updateItem(ctx context.Context, key ledgerItem, e *expr, rv types.ReturnValue) (*dynamodb.UpdateItemOutput, error) {
	out, err := st.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key, UpdateExpression: aws.String(e.update()),
		ConditionExpression: e.condition(), ExpressionAttributeNames: nilIfEmpty(e.names), ExpressionAttributeValues: nilIfEmpty(e.vals),
		ReturnValues: rv,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil, errLedgerRetry
	}
	if err != nil {
		return nil, fmt.Errorf("update item: %w", err)
	}
	return out, nil
}

// transact applies items atomically. A cancelled transaction returns
// errLedgerRetry and the index of the first item whose condition failed
// (-1 for a conflict with another transaction).
func (st *Store) transact(ctx context.Context, items []types.TransactWriteItem) (int, error) {
	_, err := st.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tc *types.TransactionCanceledException
	if errors.As(err, &tc) {
		for i, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return i, errLedgerRetry
			}
		}
		for _, r := range tc.CancellationReasons {
			if aws.ToString(r.Code) == "TransactionConflict" {
				return -1, errLedgerRetry
			}
		}
	}
	if err != nil {
		return -1, fmt.Errorf("transact write items: %w", err)
	}
	return -1, nil
}

// counterState is a decoded counters item and whether it has a leases map.
type counterState struct {
	*ledger.Counter
	hasLeases bool
}

func decodeCounter(it ledgerItem) (counterState, error) {
	c := ledger.NewCounter()
	if len(it) == 0 {
		return counterState{Counter: c}, nil
	}
	if err := attributevalue.UnmarshalMapWithOptions(it, c, decOpts); err != nil {
		return counterState{}, fmt.Errorf("decoding counters item: %w", err)
	}
	_, has := it["leases"]
	return counterState{Counter: c, hasLeases: has}, nil
}

// readCounters reads the counters of subs, one strongly consistent GetItem
// each, in parallel. (Not BatchGetItem: the same read units and about the
// same latency for three keys, without the unprocessed-keys loop; against
// moto server it measured several times slower.)
func (st *Store) readCounters(ctx context.Context, subs []ledger.Subject) ([]counterState, error) {
	out := make([]counterState, len(subs))
	errs := make([]error, len(subs))
	read := func(i int) {
		r, err := st.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: counterPK(subs[i]), ConsistentRead: aws.Bool(true)})
		if err != nil {
			errs[i] = fmt.Errorf("reading counters of %s: %w", subs[i], err)
			return
		}
		out[i], errs[i] = decodeCounter(r.Item)
	}
	if len(subs) == 1 {
		read(0)
	} else {
		var wg sync.WaitGroup
		for i := range subs {
			wg.Go(func() { read(i) })
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, s := range subs {
		st.ctrs.put(s, out[i])
	}
	return out, nil
}

// counters is the state of every subject of subs: the cached one where use
// accepts it (cached[i] true), read (readCounters) for the others. A nil
// use reads them all.
func (st *Store) counters(ctx context.Context, subs []ledger.Subject, use func(i int, c counterState) bool) (cs []counterState, cached []bool, err error) {
	cs, cached = make([]counterState, len(subs)), make([]bool, len(subs))
	var miss []int
	var missSubs []ledger.Subject
	for i, s := range subs {
		if use != nil {
			if c, ok := st.ctrs.get(s); ok && use(i, c) {
				cs[i], cached[i] = c, true
				continue
			}
		}
		miss = append(miss, i)
		missSubs = append(missSubs, s)
	}
	if len(miss) > 0 {
		read, err := st.readCounters(ctx, missSubs)
		if err != nil {
			return nil, nil, err
		}
		for k, i := range miss {
			cs[i] = read[k]
		}
	}
	return cs, cached, nil
}

// Admit implements ledger.Store: decide (ledger.Counter.Check) on the
// enforced parties' counters and take everything in one conditional write —
// UpdateItem for one party, TransactWriteItems for more. The first round
// decides on the cached counters (counterCache) and reads only the parties
// it has none of: in the steady state that is the write alone. A refusal
// (or a reclaim, or a lease already held) decided on a cached state, and a
// write whose conditions fail, go to the read-decide-write rounds, which
// read every party fresh (strongly consistent).
func (st *Store) Admit(ctx context.Context, a *ledger.Admission) (*ledger.Lease, error) {
	l := ledger.NewLease(a)
	var enforced []int
	var subs []ledger.Subject
	for i, p := range a.Parties {
		if p.Limits.Enforced() {
			enforced = append(enforced, i)
			subs = append(subs, p.Subject)
		}
	}
	if len(enforced) == 0 {
		return l, nil
	}
	if a.RequestID == "" {
		return nil, fmt.Errorf("admitting: empty request id")
	}
	if done, err := st.admitRound(ctx, a, l, enforced, subs, true); done {
		return admitted(l, err)
	}
	for attempt := range ledgerAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return nil, fmt.Errorf("admitting request %q: %w", a.RequestID, err)
			}
		}
		if done, err := st.admitRound(ctx, a, l, enforced, subs, false); done {
			return admitted(l, err)
		}
	}
	return nil, fmt.Errorf("admitting request %q: counters still contended after %d attempts", a.RequestID, ledgerAttempts)
}

func admitted(l *ledger.Lease, err error) (*ledger.Lease, error) {
	if err != nil {
		return nil, err
	}
	return l, nil
}

// admitRound is one decide-and-write round of Admit: done is false when
// another round must follow (a lost race, reclaimed leases, or a cached
// state that must be confirmed by a read); err is a *Denial or a failure.
// With useCache, states the cache holds are not read.
func (st *Store) admitRound(ctx context.Context, a *ledger.Admission, l *ledger.Lease, enforced []int, subs []ledger.Subject, useCache bool) (done bool, err error) {
	var use func(int, counterState) bool
	if useCache {
		use = func(int, counterState) bool { return true }
	}
	cs, cached, err := st.counters(ctx, subs, use)
	if err != nil {
		return true, fmt.Errorf("admitting request %q: %w", a.RequestID, err)
	}
	if admittedBefore(a, enforced, cs) {
		if slices.Contains(cached, true) {
			return false, nil // confirm with a read
		}
		// An earlier attempt of this admission was applied but its
		// answer lost (the SDK retried a conditional UpdateItem).
		l.Admitted = true
		return true, nil
	}
	for j, i := range enforced {
		d, reclaim := cs[j].Check(a.Parties[i], a)
		if d == nil && !reclaim {
			continue
		}
		if cached[j] {
			// Others may have settled since: budgets and in-flight
			// counts go down. Only a fresh read refuses (or reclaims).
			return false, nil
		}
		if reclaim {
			if err := st.reclaim(ctx, subs[j], cs[j], a.Now); err != nil && !errors.Is(err, errLedgerRetry) {
				return true, fmt.Errorf("admitting request %q: reclaiming expired leases of %s: %w", a.RequestID, subs[j], err)
			}
			return false, nil
		}
		return true, d
	}
	if len(enforced) == 1 {
		i := enforced[0]
		post, err := st.updateNew(ctx, counterPK(subs[0]), admitExpr(a.Parties[i], a, cs[0], l.Expires))
		if errors.Is(err, errLedgerRetry) {
			return false, nil
		}
		if err != nil {
			st.ctrs.forget(subs...)
			return true, fmt.Errorf("admitting request %q: %w", a.RequestID, err)
		}
		// The item as written: exact counts for the headers and the cache.
		st.ctrs.put(subs[0], post)
		l.Remaining[i] = remainingAfter(post, a.Parties[i], a)
		l.Admitted = true
		return true, nil
	}
	items := make([]types.TransactWriteItem, len(enforced))
	for j, i := range enforced {
		items[j] = st.txUpdate(counterPK(subs[j]), admitExpr(a.Parties[i], a, cs[j], l.Expires))
	}
	if _, err := st.transact(ctx, items); errors.Is(err, errLedgerRetry) {
		return false, nil
	} else if err != nil {
		st.ctrs.forget(subs...)
		return true, fmt.Errorf("admitting request %q: %w", a.RequestID, err)
	}
	for j, i := range enforced {
		// As far as this instance knows: the state decided on, plus
		// this admission (a transaction returns no item).
		post := cs[j].clone()
		post.Admit(a.Parties[i], a, l.Expires)
		post.hasLeases = post.hasLeases || ledger.NeedsLease(a.Parties[i].Limits, a.Reserve)
		st.ctrs.put(subs[j], post)
		l.Remaining[i] = cs[j].Remaining(a.Parties[i], a)
	}
	l.Admitted = true
	return true, nil
}

// remainingAfter is p's capacity left as c shows it after an admission
// (ledger.Counter.Remaining reads the state before).
func remainingAfter(c counterState, p ledger.Party, a *ledger.Admission) ledger.Remaining {
	r := ledger.Remaining{Requests: -1, Tokens: -1}
	if p.Limits.RPM > 0 {
		r.Requests = max(p.Limits.RPM-c.CurrentRequests(a.Now), 0)
	}
	if p.Limits.TPM > 0 {
		r.Tokens = max(p.Limits.TPM-c.CurrentTokens(a.Now), 0)
	}
	return r
}

// admittedBefore reports whether a party already holds a's lease.
func admittedBefore(a *ledger.Admission, enforced []int, cs []counterState) bool {
	for j, i := range enforced {
		if _, ok := cs[j].Leases[a.RequestID]; ok && ledger.NeedsLease(a.Parties[i].Limits, a.Reserve) {
			return true
		}
	}
	return false
}

// admitExpr is the update taking a's share on p's counters c, conditional on
// the state the decision read and on the limits themselves.
func admitExpr(p ledger.Party, a *ledger.Admission, c counterState, expires time.Time) *expr {
	e := newExpr()
	lim := p.Limits
	one := e.val(":one", lN(int64(1)))
	if w := ledger.Window(a.Now); c.RPMWindow >= w {
		e.add = append(e.add, "rn "+one)
		e.cond = append(e.cond, "rw = "+e.val(":rw", lN(c.RPMWindow)))
		if lim.RPM > 0 {
			e.cond = append(e.cond, "rn < "+e.val(":rpm", lN(lim.RPM)))
		}
	} else {
		v := e.val(":w", lN(w))
		e.set = append(e.set, "rw = "+v, "rn = "+one)
		e.cond = append(e.cond, "(attribute_not_exists(rw) OR rw < "+v+")")
	}
	if lim.TPM > 0 {
		// Check's tpm test itself, whatever the state decided on: the
		// stored window is older than now's (it reads as 0) or its count
		// is below the limit.
		e.cond = append(e.cond, "(attribute_not_exists(tw) OR tw < "+e.val(":tww", lN(ledger.Window(a.Now)))+" OR tn < "+e.val(":tpm", lN(lim.TPM))+")")
	}
	per := ledger.PeriodIndex(lim, a.Now)
	var res ledger.Nanos
	if lim.MaxBudget != nil {
		res = a.Reserve
		if c.Period >= per {
			if res != 0 {
				e.add = append(e.add, "committed "+e.val(":res", lN(res)))
			}
			e.cond = append(e.cond, "bp = "+e.val(":bp", lN(c.Period)),
				"committed <= "+e.val(":mmr", lN(*lim.MaxBudget-ledger.BudgetNeed(a.Reserve))))
		} else {
			v := e.val(":per", lN(per))
			e.set = append(e.set, "bp = "+v, "committed = "+e.val(":res", lN(res)), "spend = "+e.val(":zero", lN(int64(0))))
			e.cond = append(e.cond, "(attribute_not_exists(bp) OR bp < "+v+")")
		}
	}
	if ledger.NeedsLease(lim, a.Reserve) {
		hold := &types.AttributeValueMemberM{Value: ledgerItem{"exp": lN(expires.UnixMilli()), "res": lN(res), "per": lN(per)}}
		if c.hasLeases {
			e.names["#rid"] = a.RequestID
			e.set = append(e.set, "leases.#rid = "+e.val(":lease", hold))
			e.cond = append(e.cond, "attribute_exists(leases)", "attribute_not_exists(leases.#rid)")
		} else {
			e.set = append(e.set, "leases = "+e.val(":leases", &types.AttributeValueMemberM{Value: ledgerItem{a.RequestID: hold}}))
			e.cond = append(e.cond, "attribute_not_exists(leases)")
		}
		e.add = append(e.add, "inflight "+one)
		if lim.MaxParallel > 0 {
			e.cond = append(e.cond, "(attribute_not_exists(inflight) OR inflight < "+e.val(":mp", lN(lim.MaxParallel))+")")
		}
	}
	return e
}

// reclaim removes the expired leases of c (as read) from s's counters in one
// write, conditional on each still having the expiry that was read (so a
// lease renewed, settled or reclaimed meanwhile is left alone and nothing is
// released twice), and gives back their reservations of the stored period.
func (st *Store) reclaim(ctx context.Context, s ledger.Subject, c counterState, now time.Time) error {
	ids := c.Expired(now)
	if len(ids) > ledgerReclaimBatch {
		ids = ids[:ledgerReclaimBatch]
	}
	if len(ids) == 0 {
		return nil
	}
	e := newExpr()
	var give ledger.Nanos
	for i, id := range ids {
		h := c.Leases[id]
		n := "#r" + strconv.Itoa(i)
		e.names[n] = id
		e.remove = append(e.remove, "leases."+n)
		e.cond = append(e.cond, "leases."+n+".exp = "+e.val(":e"+strconv.Itoa(i), lN(h.Exp)))
		if h.Res > 0 && h.Per == c.Period {
			give += h.Res
		}
	}
	e.add = append(e.add, "inflight "+e.val(":n", lN(-int64(len(ids)))))
	if give > 0 {
		e.add = append(e.add, "committed "+e.val(":give", lN(-give)))
		e.cond = append(e.cond, "bp = "+e.val(":bp", lN(c.Period)))
	}
	return st.updateOne(ctx, counterPK(s), e)
}

// Renew implements ledger.Store: one conditional UpdateItem per party that
// holds a lease. A lease that is gone makes it return ledger.ErrLeaseLost
// (after renewing the others).
func (st *Store) Renew(ctx context.Context, l *ledger.Lease, until time.Time) error {
	if l == nil || !l.Admitted {
		return nil
	}
	var lost []string
	for _, p := range l.Parties {
		if !l.Holds(p) {
			continue
		}
		e := newExpr()
		e.names["#rid"] = l.RequestID
		e.set = append(e.set, "leases.#rid.exp = "+e.val(":u", lN(until.UnixMilli())))
		e.cond = append(e.cond, "attribute_exists(leases.#rid)")
		err := st.updateOne(ctx, counterPK(p.Subject), e)
		if errors.Is(err, errLedgerRetry) {
			lost = append(lost, p.Subject.String())
			continue
		}
		if err != nil {
			return fmt.Errorf("renewing lease %q on %s: %w", l.RequestID, p.Subject, err)
		}
		st.ctrs.renewed(p.Subject, l.RequestID, until.UnixMilli())
	}
	l.Expires = until
	if len(lost) > 0 {
		return fmt.Errorf("renewing lease %q of %s: %w", l.RequestID, strings.Join(lost, ", "), ledger.ErrLeaseLost)
	}
	return nil
}

func shardOf(s string, n uint32) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % n)
}

// Settle implements ledger.Store: one transaction of every party's counters
// update, the record and the request item (the settled marker: a retried
// Settle finds it and charges nothing), then the day totals (addDayTotals).
// The first round builds the counters updates on the cached counters
// (counterCache) and the lease to release on l itself (its reservation and
// period), reading only the parties it has none of and those whose
// soft-budget crossing may be due in this period (softDue); a failed
// condition goes to rounds that read every party fresh.
func (st *Store) Settle(ctx context.Context, l *ledger.Lease, c ledger.Charge, rec *ledger.Record) (ledger.SettleResult, error) {
	var res ledger.SettleResult
	if l == nil || l.RequestID == "" {
		return res, fmt.Errorf("settling: no lease or empty request id")
	}
	at := ledger.SettleTime(l, rec)
	r := ledger.SettledRecord(l, c, rec, at)
	recItems, err := st.recordItems(r)
	if err != nil {
		return res, fmt.Errorf("settling request %q: %w", l.RequestID, err)
	}
	s := &settlement{l: l, c: c, r: r, at: at, recItems: recItems}
	for _, p := range l.Parties {
		s.subs = append(s.subs, p.Subject)
	}
	useCached := func(i int, cs counterState) bool { return !softDue(l.Parties[i], cs, at) }
	if done, err := st.settleRound(ctx, s, useCached); done {
		return s.res, err
	}
	for attempt := range ledgerAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return res, fmt.Errorf("settling request %q: %w", l.RequestID, err)
			}
		}
		if done, err := st.settleRound(ctx, s, nil); done {
			return s.res, err
		}
	}
	return res, fmt.Errorf("settling request %q: counters still contended after %d attempts", l.RequestID, ledgerAttempts)
}

// settlement is one Settle's inputs and result.
type settlement struct {
	l        *ledger.Lease
	c        ledger.Charge
	r        *ledger.Record
	at       time.Time
	recItems []types.TransactWriteItem
	subs     []ledger.Subject
	res      ledger.SettleResult
}

// softDue reports whether a Settle on party p might be the one that reports
// its soft-budget crossing, judged on the cached counters c:
// unless c shows the crossing already reported in the period the charge
// goes to, Settle reads p fresh. (A write built on c pins c's period, and
// the stored sw only grows, so "reported" in c is reported in the table.)
func softDue(p ledger.Party, c counterState, at time.Time) bool {
	if p.Limits.SoftBudget == nil {
		return false
	}
	return c.SoftWarned < max(c.Period, ledger.PeriodIndex(p.Limits, at))
}

// settleRound is one round of Settle: done is false when another round must
// follow (a counters condition failed).
func (st *Store) settleRound(ctx context.Context, s *settlement, use func(int, counterState) bool) (done bool, err error) {
	l, c, at := s.l, s.c, s.at
	cs, cached, err := st.counters(ctx, s.subs, use)
	if err != nil {
		return true, fmt.Errorf("settling request %q: %w", l.RequestID, err)
	}
	items := make([]types.TransactWriteItem, 0, len(l.Parties)+len(s.recItems))
	holds := make([]*ledger.LeaseHold, len(l.Parties))
	for i, p := range l.Parties {
		holds[i] = heldLease(l, i, cs[i], cached[i])
		items = append(items, st.txUpdate(counterPK(p.Subject), settleExpr(p, l, c, cs[i], at, holds[i])))
	}
	marker := len(items)
	items = append(items, s.recItems...)
	failed, err := st.transact(ctx, items)
	if errors.Is(err, errLedgerRetry) {
		if failed == marker {
			return true, nil // settled before
		}
		return false, nil
	}
	if err != nil {
		st.ctrs.forget(s.subs...)
		return true, fmt.Errorf("settling request %q: %w", l.RequestID, err)
	}
	for i, p := range l.Parties {
		// As far as this instance knows: the state decided on, the lease
		// released if that state had it, the charge added.
		post := cs[i].clone()
		if holds[i] != nil {
			post.Release(l.RequestID)
		}
		post.Charge(p.Limits, c.Cost, c.InputTokens+c.OutputTokens, at)
		st.ctrs.put(p.Subject, post)
	}
	if err := st.addDayTotals(ctx, s.r); err != nil {
		return true, fmt.Errorf("settling request %q (charged): %w", l.RequestID, err)
	}
	for i, p := range l.Parties {
		crossed, err := st.softCrossing(ctx, p, c, cs[i], at)
		if err != nil {
			st.ctrs.forget(p.Subject)
			return true, fmt.Errorf("settling request %q: soft budget of %s: %w", l.RequestID, p.Subject, err)
		}
		if crossed {
			s.res.SoftCrossed = append(s.res.SoftCrossed, p.Subject)
		}
	}
	return true, nil
}

// heldLease is the lease l holds on its party i, if any: as read (c fresh),
// or as l took it (c cached: the reservation and period of the admission;
// whether it is still held, the write's condition checks).
func heldLease(l *ledger.Lease, i int, c counterState, cached bool) *ledger.LeaseHold {
	p := l.Parties[i]
	if !l.Holds(p) {
		return nil
	}
	if !cached {
		if h, ok := c.Leases[l.RequestID]; ok {
			return &h
		}
		return nil
	}
	h := ledger.LeaseHold{Per: ledger.PeriodIndex(p.Limits, l.At)}
	if i < len(l.Periods) {
		h.Per = l.Periods[i]
	}
	if p.Limits.MaxBudget != nil {
		h.Res = l.Reserved
	}
	return &h
}

// settleExpr is the update of p's counters c for settling l: release the
// lease hold (nil: l holds none on p), charge cost and tokens
// (ledger.Counter.Release and Charge, as expressions conditional on the
// state decided on, and on the lease's reservation and period).
func settleExpr(p ledger.Party, l *ledger.Lease, ch ledger.Charge, c counterState, at time.Time, hold *ledger.LeaseHold) *expr {
	e := newExpr()
	var give ledger.Nanos
	if l.Holds(p) {
		e.names["#rid"] = l.RequestID
		if hold != nil {
			e.remove = append(e.remove, "leases.#rid")
			e.add = append(e.add, "inflight "+e.val(":m1", lN(int64(-1))))
			e.cond = append(e.cond, "attribute_exists(leases.#rid)",
				"leases.#rid.res = "+e.val(":hres", lN(hold.Res)), "leases.#rid.per = "+e.val(":hper", lN(hold.Per)))
			if hold.Res > 0 && hold.Per == c.Period {
				give = hold.Res
			}
		} else {
			e.cond = append(e.cond, "attribute_not_exists(leases.#rid)")
		}
	}
	cost := e.val(":cost", lN(ch.Cost))
	if pi := ledger.PeriodIndex(p.Limits, at); c.Period >= pi {
		e.add = append(e.add, "spend "+cost)
		if d := ch.Cost - give; d != 0 {
			e.add = append(e.add, "committed "+e.val(":dc", lN(d)))
		}
		e.cond = append(e.cond, "bp = "+e.val(":bp", lN(c.Period)))
	} else {
		v := e.val(":per", lN(pi))
		e.set = append(e.set, "bp = "+v, "committed = "+cost, "spend = "+cost)
		e.cond = append(e.cond, "(attribute_not_exists(bp) OR bp < "+v+")")
	}
	tok := e.val(":tok", lN(ch.InputTokens+ch.OutputTokens))
	if w := ledger.Window(at); c.TPMWindow >= w {
		e.add = append(e.add, "tn "+tok)
		e.cond = append(e.cond, "tw = "+e.val(":tw", lN(c.TPMWindow)))
	} else {
		v := e.val(":w", lN(w))
		e.set = append(e.set, "tw = "+v, "tn = "+tok)
		e.cond = append(e.cond, "(attribute_not_exists(tw) OR tw < "+v+")")
	}
	return e
}

// softCrossing reports a soft-budget crossing once per period: when the
// spend this Settle produced (as far as its read shows) reaches SoftBudget
// and no crossing was reported in this period yet, one conditional write
// sets sw to the period if spend really is at or over the soft budget and sw
// is older; whoever sets it reports. Concurrent Settles that each see spend
// below the mark leave the report to the next Settle, which sees it over.
func (st *Store) softCrossing(ctx context.Context, p ledger.Party, ch ledger.Charge, c counterState, at time.Time) (bool, error) {
	soft := p.Limits.SoftBudget
	if soft == nil {
		return false, nil
	}
	pi := ledger.PeriodIndex(p.Limits, at)
	per, spend := c.Period, c.Spend
	if per < pi {
		per, spend = pi, 0
	}
	if spend+ch.Cost < *soft || c.SoftWarned >= per {
		return false, nil
	}
	e := newExpr()
	v := e.val(":per", lN(per))
	e.set = append(e.set, "sw = "+v)
	e.cond = append(e.cond, "bp = "+v, "spend >= "+e.val(":soft", lN(*soft)), "(attribute_not_exists(sw) OR sw < "+v+")")
	err := st.updateOne(ctx, counterPK(p.Subject), e)
	if errors.Is(err, errLedgerRetry) {
		return false, nil
	}
	return err == nil, err
}

// recordItems are the writes of r besides the counters: the request item
// (first: its condition is the settled marker) and the record item (when r
// has a key).
func (st *Store) recordItems(r *ledger.Record) ([]types.TransactWriteItem, error) {
	base, err := attributevalue.MarshalMap(r)
	if err != nil {
		return nil, fmt.Errorf("encoding record: %w", err)
	}
	rk := ledger.RecordKey(r)
	day := r.EndTime.Format(ledger.DayLayout)
	with := func(extra ledgerItem) ledgerItem {
		it := make(ledgerItem, len(base)+len(extra)+2)
		for k, v := range base {
			it[k] = v
		}
		for k, v := range extra {
			it[k] = v
		}
		it[attrRecordKey] = lS(rk)
		if !r.Expires.IsZero() {
			it[attrTTL] = lN(ttlSeconds(r.Expires))
		}
		return it
	}
	req := ledgerItem{
		attrPK: lS(ledgerRequestPrefix + r.RequestID), attrSK: lS(ledgerRequestSK),
		attrGSI1PK: lS(ledgerDayLog + day + "#" + strconv.Itoa(shardOf(r.RequestID, ledgerLogShards))), attrGSI1SK: lS(rk),
	}
	if r.Token != "" {
		req[attrGSI2PK], req[attrGSI2SK] = lS(ledgerTokenLog+r.Token), lS(rk)
	}
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(st.table), Item: with(req), ConditionExpression: aws.String("attribute_not_exists(pk)"),
	}}}
	if r.KeyID != "" {
		log := ledgerItem{attrPK: lS(ledgerRecordPrefix + r.KeyID), attrSK: lS(rk)}
		if r.UserID != "" {
			log[attrGSI1PK], log[attrGSI1SK] = lS(ledgerUserLog+r.UserID), lS(rk)
		}
		if r.TeamID != "" {
			log[attrGSI2PK], log[attrGSI2SK] = lS(ledgerTeamLog+r.TeamID), lS(rk)
		}
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(st.table), Item: with(log)}})
	}
	return items, nil
}

// addDayTotals adds r to the day totals of its key, user, team and
// endpoint: plain ADD updates after the settling transaction, not inside
// it. Inside, every Settle of the gateway would be a transaction on the
// same few endpoint items, and concurrent transactions on one item cancel
// each other (TransactionConflict); ADD updates on one item just queue. The
// price: a crash between the transaction and these writes loses this
// request's share of the day totals (never of spend, which the
// transaction holds), and a retried Settle does not redo them.
func (st *Store) addDayTotals(ctx context.Context, r *ledger.Record) error {
	day := r.EndTime.Format(ledger.DayLayout)
	shard := strconv.Itoa(shardOf(r.RequestID, ledgerDayShards))
	groups := ledger.GroupIDs(r)
	errs := make(chan error, len(groups))
	var wg sync.WaitGroup
	for g, id := range groups {
		wg.Go(func() {
			e := newExpr()
			e.add = append(e.add, "spend "+e.val(":s", lN(r.Spend)), "requests "+e.val(":one", lN(int64(1))),
				"input_tokens "+e.val(":in", lN(r.InputTokens)), "output_tokens "+e.val(":out", lN(r.OutputTokens)))
			if err := st.updateOne(ctx, ledgerItem{attrPK: lS(ledgerDayPrefix + string(g) + "#" + day + "#" + shard), attrSK: lS(id)}, e); err != nil {
				errs <- fmt.Errorf("day totals of %s %q: %w", g, id, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Status implements ledger.Store: one strongly consistent GetItem.
func (st *Store) Status(ctx context.Context, s ledger.Subject, limits ledger.Limits, now time.Time) (ledger.Status, error) {
	cs, err := st.readCounters(ctx, []ledger.Subject{s})
	if err != nil {
		return ledger.Status{}, err
	}
	return cs[0].Status(limits, now), nil
}

// recordSource is one newest-first Query of records, read a page at a time.
type recordSource struct {
	in   *dynamodb.QueryInput
	buf  []ledgerItem
	done bool
}

func (s *recordSource) peek(ctx context.Context, st *Store) (ledgerItem, error) {
	for len(s.buf) == 0 && !s.done {
		out, err := st.client.Query(ctx, s.in)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", aws.ToString(s.in.IndexName), err)
		}
		s.buf = out.Items
		s.in.ExclusiveStartKey = out.LastEvaluatedKey
		s.done = len(out.LastEvaluatedKey) == 0
	}
	if len(s.buf) == 0 {
		return nil, nil
	}
	return s.buf[0], nil
}

func recordKeyOf(it ledgerItem) string {
	if v, ok := it[attrRecordKey].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// ListRecords implements ledger.Store with the access patterns in this
// file's header: the most selective filter picks the Query; the others
// filter what it returns. Sources are merged newest first; the cursor is
// the last record key returned.
func (st *Store) ListRecords(ctx context.Context, f ledger.RecordFilter) ([]*ledger.Record, string, error) {
	limit := ledger.PageLimit(f)
	upper := "~" // exclusive; above every time key
	if f.Cursor != "" {
		c, err := ledger.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("listing records: %w", err)
		}
		upper = c
	}
	if !f.End.IsZero() {
		upper = min(upper, ledger.TimeKey(f.End))
	}
	lower := "0"
	if !f.Start.IsZero() {
		lower = ledger.TimeKey(f.Start)
	}
	decode := func(it ledgerItem) (*ledger.Record, error) {
		r := new(ledger.Record)
		if err := attributevalue.UnmarshalMap(it, r); err != nil {
			return nil, fmt.Errorf("listing records: decoding record: %w", err)
		}
		return r, nil
	}
	if f.RequestID != "" {
		out, err := st.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), ConsistentRead: aws.Bool(true),
			Key: ledgerItem{attrPK: lS(ledgerRequestPrefix + f.RequestID), attrSK: lS(ledgerRequestSK)}})
		if err != nil {
			return nil, "", fmt.Errorf("listing records: get item: %w", err)
		}
		if len(out.Item) == 0 || recordKeyOf(out.Item) >= upper {
			return nil, "", nil
		}
		r, err := decode(out.Item)
		if err != nil || !f.Match(r) {
			return nil, "", err
		}
		return []*ledger.Record{r}, "", nil
	}
	query := func(index, pkAttr, skAttr, pk string) *recordSource {
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(st.table),
			KeyConditionExpression:    aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
			ExpressionAttributeNames:  map[string]string{"#pk": pkAttr, "#sk": skAttr},
			ExpressionAttributeValues: ledgerItem{":pk": lS(pk), ":lo": lS(lower), ":hi": lS(upper)},
			ScanIndexForward:          aws.Bool(false),
			Limit:                     aws.Int32(int32(min(limit+1, ledger.MaxPage))),
		}
		if index != "" {
			in.IndexName = aws.String(index)
		}
		return &recordSource{in: in}
	}
	// tiers are read in order; the sources of one tier are merged.
	var tiers [][]*recordSource
	switch {
	case len(f.KeyIDs) > 0:
		var tier []*recordSource
		for _, k := range slices.Compact(slices.Sorted(slices.Values(f.KeyIDs))) {
			tier = append(tier, query("", attrPK, attrSK, ledgerRecordPrefix+k))
		}
		tiers = append(tiers, tier)
	case f.Token != "":
		tiers = append(tiers, []*recordSource{query(IndexByTeam, attrGSI2PK, attrGSI2SK, ledgerTokenLog+f.Token)})
	case f.UserID != "":
		tiers = append(tiers, []*recordSource{query(IndexByUser, attrGSI1PK, attrGSI1SK, ledgerUserLog+f.UserID)})
	case f.TeamID != "":
		tiers = append(tiers, []*recordSource{query(IndexByTeam, attrGSI2PK, attrGSI2SK, ledgerTeamLog+f.TeamID)})
	default:
		end := f.End
		if end.IsZero() {
			end = time.Now().Add(time.Minute)
		}
		start := f.Start
		if start.IsZero() {
			start = end.AddDate(0, 0, -DefaultListDays)
		}
		if upper != "~" && upper < ledger.TimeKey(end) {
			// A cursor: start from its day.
			if t, err := time.Parse("20060102T150405.000000000Z", strings.SplitN(upper, "#", 2)[0]); err == nil {
				end = t.Add(time.Nanosecond)
			}
		}
		first := time.Date(start.Year(), start.Month(), start.Day(), 0, 0, 0, 0, time.UTC)
		for d := end.UTC(); !d.Before(first); d = d.AddDate(0, 0, -1) {
			var tier []*recordSource
			for s := range ledgerLogShards {
				tier = append(tier, query(IndexByUser, attrGSI1PK, attrGSI1SK, ledgerDayLog+d.Format(ledger.DayLayout)+"#"+strconv.Itoa(s)))
			}
			tiers = append(tiers, tier)
			if d.Format(ledger.DayLayout) == first.Format(ledger.DayLayout) {
				break
			}
		}
	}
	var out []*ledger.Record
	for _, tier := range tiers {
		// The first page of every source at once: a day's shards are
		// independent Queries.
		errs := make([]error, len(tier))
		var wg sync.WaitGroup
		for i, s := range tier {
			wg.Go(func() { _, errs[i] = s.peek(ctx, st) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, "", fmt.Errorf("listing records: %w", err)
		}
		for {
			var best *recordSource
			var bestKey string
			for _, s := range tier {
				it, err := s.peek(ctx, st)
				if err != nil {
					return nil, "", fmt.Errorf("listing records: %w", err)
				}
				if it != nil && (best == nil || recordKeyOf(it) > bestKey) {
					best, bestKey = s, recordKeyOf(it)
				}
			}
			if best == nil {
				break
			}
			it := best.buf[0]
			best.buf = best.buf[1:]
			if bestKey >= upper || bestKey < lower {
				continue
			}
			r, err := decode(it)
			if err != nil {
				return nil, "", err
			}
			if !f.Match(r) {
				continue
			}
			if len(out) == limit {
				return out, ledger.EncodeCursor(ledger.RecordKey(out[len(out)-1])), nil
			}
			out = append(out, r)
		}
	}
	return out, "", nil
}

// Totals implements ledger.Store: per day in range, one Query per shard of
// DAY#<group>#<day>, summed per id.
func (st *Store) Totals(ctx context.Context, g ledger.GroupBy, startDay, endDay string) ([]ledger.DayTotal, error) {
	days, err := ledger.Days(startDay, endDay)
	if err != nil {
		return nil, fmt.Errorf("reading totals: %w", err)
	}
	var out []ledger.DayTotal
	for _, day := range days {
		byID := map[string]*ledger.DayTotal{}
		for s := range ledgerDayShards {
			items, err := st.queryAll(ctx, &dynamodb.QueryInput{
				TableName:                 aws.String(st.table),
				KeyConditionExpression:    aws.String("pk = :pk"),
				ExpressionAttributeValues: ledgerItem{":pk": lS(ledgerDayPrefix + string(g) + "#" + day + "#" + strconv.Itoa(s))},
			})
			if err != nil {
				return nil, fmt.Errorf("reading totals of %s: %w", day, err)
			}
			for _, it := range items {
				var row struct {
					ID           string       `dynamodbav:"sk"`
					Spend        ledger.Nanos `dynamodbav:"spend"`
					Requests     int64        `dynamodbav:"requests"`
					InputTokens  int64        `dynamodbav:"input_tokens"`
					OutputTokens int64        `dynamodbav:"output_tokens"`
				}
				if err := attributevalue.UnmarshalMap(it, &row); err != nil {
					return nil, fmt.Errorf("reading totals of %s: decoding: %w", day, err)
				}
				t := byID[row.ID]
				if t == nil {
					t = &ledger.DayTotal{Day: day, Group: g, ID: row.ID}
					byID[row.ID] = t
				}
				t.Spend += row.Spend
				t.Requests += row.Requests
				t.InputTokens += row.InputTokens
				t.OutputTokens += row.OutputTokens
			}
		}
		start := len(out)
		for _, t := range byID {
			out = append(out, *t)
		}
		slices.SortFunc(out[start:], func(a, b ledger.DayTotal) int { return cmp.Compare(a.ID, b.ID) })
	}
	return out, nil
}

func (st *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput) ([]ledgerItem, error) {
	var items []ledgerItem
	p := dynamodb.NewQueryPaginator(st.client, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		items = append(items, out.Items...)
	}
	return items, nil
}
