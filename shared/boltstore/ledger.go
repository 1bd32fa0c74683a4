package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/keywaygw/keyway/shared/ledger"
)

// Ledger buckets (part of the file format, like the key buckets):
//
//	ledger_counters  kind "\x00" id          -> ledger.Counter (JSON; leases inside)
//	ledger_records   TimeKey(end) "#" reqid  -> ledger.Record (JSON), time order
//	ledger_requests  reqid                   -> record key: the settled marker
//	ledger_expiry    TimeKey(expires) "#" reqid -> record key, for pruning
//	ledger_days      group "\x00" day "\x00" id -> ledger.DayTotal (JSON)
//
// Counters are records of their own, never fields of a key, user or team,
// so no admin write can overwrite spend. Every Admit and Settle is one bbolt
// write transaction: bbolt runs one writer at a time, which makes each
// check-then-take exact without any condition machinery. The file lock keeps
// other processes out, so there is no cross-process case to handle.
var (
	bucketLedgerCounters = []byte("ledger_counters")
	bucketLedgerRecords  = []byte("ledger_records")
	bucketLedgerRequests = []byte("ledger_requests")
	bucketLedgerExpiry   = []byte("ledger_expiry")
	bucketLedgerDays     = []byte("ledger_days")
)

func init() {
	allBuckets = append(allBuckets, bucketLedgerCounters, bucketLedgerRecords, bucketLedgerRequests, bucketLedgerExpiry, bucketLedgerDays)
}

// pruneBatch bounds how many expired usage records one Settle deletes, so
// retention never makes one request's settlement slow.
const pruneBatch = 16

var _ ledger.Store = (*Store)(nil)

func counterKey(s ledger.Subject) []byte { return []byte(string(s.Kind) + "\x00" + s.ID) }

func getCounter(tx *bbolt.Tx, s ledger.Subject) (*ledger.Counter, error) {
	c := ledger.NewCounter()
	v := tx.Bucket(bucketLedgerCounters).Get(counterKey(s))
	if v == nil {
		return c, nil
	}
	if err := json.Unmarshal(v, c); err != nil {
		return nil, fmt.Errorf("decoding counters of %s: %w", s, err)
	}
	return c, nil
}

func putCounter(tx *bbolt.Tx, s ledger.Subject, c *ledger.Counter) error {
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encoding counters of %s: %w", s, err)
	}
	return tx.Bucket(bucketLedgerCounters).Put(counterKey(s), v)
}

// errAdmittedBefore: a party already holds the admission's lease (the same
// request id admitted twice); the admission stands and nothing more is taken.
var errAdmittedBefore = errors.New("admitted before")

// Admit implements ledger.Store in one write transaction: every enforced
// party is checked (expired leases reclaimed first when they are what
// refuses), and only if all pass is anything written.
func (s *Store) Admit(ctx context.Context, a *ledger.Admission) (*ledger.Lease, error) {
	l := ledger.NewLease(a)
	var enforced []int
	for i, p := range a.Parties {
		if p.Limits.Enforced() {
			enforced = append(enforced, i)
		}
	}
	if len(enforced) == 0 {
		return l, nil
	}
	if a.RequestID == "" {
		return nil, fmt.Errorf("admitting: empty request id")
	}
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		cs := make([]*ledger.Counter, len(a.Parties))
		for _, i := range enforced {
			c, err := getCounter(tx, a.Parties[i].Subject)
			if err != nil {
				return err
			}
			if _, ok := c.Leases[a.RequestID]; ok {
				return errAdmittedBefore
			}
			d, reclaim := c.Check(a.Parties[i], a)
			if reclaim {
				for _, id := range c.Expired(a.Now) {
					c.Release(id)
				}
				d, _ = c.Check(a.Parties[i], a)
			}
			if d != nil {
				return d
			}
			cs[i] = c
		}
		for _, i := range enforced {
			p := a.Parties[i]
			l.Remaining[i] = cs[i].Remaining(p, a)
			cs[i].Admit(p, a, l.Expires)
			if err := putCounter(tx, p.Subject, cs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errAdmittedBefore) {
		l.Admitted = true
		return l, nil
	}
	if err != nil {
		if _, ok := ledger.AsDenial(err); ok {
			return nil, err
		}
		return nil, fmt.Errorf("admitting request %q: %w", a.RequestID, err)
	}
	l.Admitted = true
	return l, nil
}

// Renew implements ledger.Store. A party whose lease is gone (reclaimed
// after expiry, or settled) makes it return ledger.ErrLeaseLost; the others
// are still renewed.
func (s *Store) Renew(ctx context.Context, l *ledger.Lease, until time.Time) error {
	if l == nil || !l.Admitted {
		return nil
	}
	var lost []string
	err := s.update(ctx, func(tx *bbolt.Tx) error {
		lost = nil
		for _, p := range l.Parties {
			if !l.Holds(p) {
				continue
			}
			c, err := getCounter(tx, p.Subject)
			if err != nil {
				return err
			}
			h, ok := c.Leases[l.RequestID]
			if !ok {
				lost = append(lost, p.Subject.String())
				continue
			}
			h.Exp = until.UnixMilli()
			c.Leases[l.RequestID] = h
			if err := putCounter(tx, p.Subject, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("renewing lease %q: %w", l.RequestID, err)
	}
	l.Expires = until
	if len(lost) > 0 {
		return fmt.Errorf("renewing lease %q of %s: %w", l.RequestID, strings.Join(lost, ", "), ledger.ErrLeaseLost)
	}
	return nil
}

// Settle implements ledger.Store in one write transaction; the settled
// marker (ledger_requests) makes a retry a no-op.
func (s *Store) Settle(ctx context.Context, l *ledger.Lease, c ledger.Charge, rec *ledger.Record) (ledger.SettleResult, error) {
	var res ledger.SettleResult
	if l == nil || l.RequestID == "" {
		return res, fmt.Errorf("settling: no lease or empty request id")
	}
	at := ledger.SettleTime(l, rec)
	r := ledger.SettledRecord(l, c, rec, at)
	rk := []byte(ledger.RecordKey(r))
	// Settles go through bbolt's Batch: concurrent settles share one
	// transaction and one fsync. The function may run more than once
	// (Batch retries it alone if the batch fails), so it starts from
	// scratch and the settled marker keeps it from charging twice.
	err := s.batch(ctx, func(tx *bbolt.Tx) error {
		res = ledger.SettleResult{}
		reqs := tx.Bucket(bucketLedgerRequests)
		if reqs.Get([]byte(l.RequestID)) != nil {
			return nil
		}
		for _, p := range l.Parties {
			ctr, err := getCounter(tx, p.Subject)
			if err != nil {
				return err
			}
			if l.Holds(p) {
				ctr.Release(l.RequestID)
			}
			if ctr.Charge(p.Limits, c.Cost, c.InputTokens+c.OutputTokens, at) {
				res.SoftCrossed = append(res.SoftCrossed, p.Subject)
			}
			if err := putCounter(tx, p.Subject, ctr); err != nil {
				return err
			}
		}
		if err := reqs.Put([]byte(l.RequestID), rk); err != nil {
			return err
		}
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encoding record: %w", err)
		}
		if err := tx.Bucket(bucketLedgerRecords).Put(rk, v); err != nil {
			return err
		}
		if !r.Expires.IsZero() {
			if err := tx.Bucket(bucketLedgerExpiry).Put([]byte(ledger.TimeKey(r.Expires)+"#"+r.RequestID), rk); err != nil {
				return err
			}
		}
		if err := addDayTotals(tx, r, c); err != nil {
			return err
		}
		return prune(tx, time.Now())
	})
	if err != nil {
		return ledger.SettleResult{}, fmt.Errorf("settling request %q: %w", l.RequestID, err)
	}
	return res, nil
}

func dayKey(g ledger.GroupBy, day, id string) []byte {
	return []byte(string(g) + "\x00" + day + "\x00" + id)
}

func addDayTotals(tx *bbolt.Tx, r *ledger.Record, c ledger.Charge) error {
	b := tx.Bucket(bucketLedgerDays)
	day := r.EndTime.UTC().Format(ledger.DayLayout)
	for g, id := range ledger.GroupIDs(r) {
		k := dayKey(g, day, id)
		t := ledger.DayTotal{Day: day, Group: g, ID: id}
		if v := b.Get(k); v != nil {
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decoding day total %s %s %q: %w", g, day, id, err)
			}
		}
		t.Spend += c.Cost
		t.Requests++
		t.InputTokens += c.InputTokens
		t.OutputTokens += c.OutputTokens
		v, err := json.Marshal(t)
		if err != nil {
			return err
		}
		if err := b.Put(k, v); err != nil {
			return err
		}
	}
	return nil
}

// prune deletes up to pruneBatch usage records whose retention ended
// before now, with their settled markers.
func prune(tx *bbolt.Tx, now time.Time) error {
	exp := tx.Bucket(bucketLedgerExpiry)
	limit := []byte(ledger.TimeKey(now))
	var done [][]byte
	cur := exp.Cursor()
	for k, rk := cur.First(); k != nil && bytes.Compare(k, limit) < 0 && len(done) < pruneBatch; k, rk = cur.Next() {
		if err := tx.Bucket(bucketLedgerRecords).Delete(rk); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(rk, '#'); i >= 0 {
			if err := tx.Bucket(bucketLedgerRequests).Delete(rk[i+1:]); err != nil {
				return err
			}
		}
		done = append(done, slices.Clone(k))
	}
	for _, k := range done {
		if err := exp.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Status implements ledger.Store.
func (s *Store) Status(ctx context.Context, sub ledger.Subject, limits ledger.Limits, now time.Time) (ledger.Status, error) {
	var st ledger.Status
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		c, err := getCounter(tx, sub)
		if err != nil {
			return err
		}
		st = c.Status(limits, now)
		return nil
	})
	if err != nil {
		return ledger.Status{}, fmt.Errorf("reading counters of %s: %w", sub, err)
	}
	return st, nil
}

// ListRecords implements ledger.Store: a reverse walk of ledger_records (time
// order) from the cursor or End down to Start, filtering as it goes. A
// request id is one lookup. Filters other than time and request id read
// every record in the range: fine for a single machine's file, which is
// why the DynamoDB store has indexes instead.
func (s *Store) ListRecords(ctx context.Context, f ledger.RecordFilter) ([]*ledger.Record, string, error) {
	limit := ledger.PageLimit(f)
	var upper string // exclusive
	if f.Cursor != "" {
		c, err := ledger.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("listing records: %w", err)
		}
		upper = c
	}
	if !f.End.IsZero() {
		if e := ledger.TimeKey(f.End); upper == "" || e < upper {
			upper = e
		}
	}
	var lower string
	if !f.Start.IsZero() {
		lower = ledger.TimeKey(f.Start)
	}
	var out []*ledger.Record
	var next string
	err := s.view(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLedgerRecords)
		decode := func(k, v []byte) (*ledger.Record, error) {
			r := new(ledger.Record)
			if err := json.Unmarshal(v, r); err != nil {
				return nil, fmt.Errorf("decoding record %q: %w", k, err)
			}
			return r, nil
		}
		if f.RequestID != "" {
			rk := tx.Bucket(bucketLedgerRequests).Get([]byte(f.RequestID))
			if rk == nil {
				return nil
			}
			v := b.Get(rk)
			if v == nil || (upper != "" && string(rk) >= upper) {
				return nil
			}
			r, err := decode(rk, v)
			if err != nil {
				return err
			}
			if f.Match(r) {
				out = append(out, r)
			}
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if upper == "" {
			k, v = c.Last()
		} else {
			k, v = c.Seek([]byte(upper))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && string(k) >= upper {
				k, v = c.Prev()
			}
		}
		for ; k != nil && string(k) >= lower; k, v = c.Prev() {
			r, err := decode(k, v)
			if err != nil {
				return err
			}
			if !f.Match(r) {
				continue
			}
			if len(out) == limit {
				next = ledger.EncodeCursor(ledger.RecordKey(out[len(out)-1]))
				return nil
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing records: %w", err)
	}
	return out, next, nil
}

// Totals implements ledger.Store: one range read of ledger_days.
func (s *Store) Totals(ctx context.Context, g ledger.GroupBy, startDay, endDay string) ([]ledger.DayTotal, error) {
	days, err := ledger.Days(startDay, endDay)
	if err != nil {
		return nil, fmt.Errorf("reading totals: %w", err)
	}
	var out []ledger.DayTotal
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketLedgerDays).Cursor()
		from := []byte(string(g) + "\x00" + days[0] + "\x00")
		to := []byte(string(g) + "\x00" + days[len(days)-1] + "\x01")
		for k, v := c.Seek(from); k != nil && bytes.Compare(k, to) < 0; k, v = c.Next() {
			var t ledger.DayTotal
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decoding day total %q: %w", k, err)
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading totals: %w", err)
	}
	return out, nil
}
