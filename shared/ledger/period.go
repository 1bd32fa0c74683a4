package ledger

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is a budget_duration: a fixed length of seconds, minutes, hours or
// days, or a number of calendar months. Periods are aligned to the Unix
// epoch in UTC, so every instance computes the same boundaries without
// coordination: "1d" resets at 00:00 UTC, "1mo" on the 1st of the month at
// 00:00 UTC, "7d" every seven days counted from 1970-01-01 (a Thursday),
// "30s" at every multiple of 30 s. The zero Period never ends.
type Period struct {
	// Spec is the string it was parsed from ("" for the zero Period).
	Spec   string
	fixed  time.Duration
	months int
}

// maxPeriod bounds a fixed period (100 years), as the admin API bounds
// durations.
const maxPeriod = 100 * 366 * 24 * time.Hour

// ParsePeriod reads LiteLLM's budget_duration forms: Ns (or a bare N, in
// seconds), Nm, Nh, Nd, Nw, Nmo (N a positive integer). "" is the zero
// Period.
func ParsePeriod(s string) (Period, error) {
	if s == "" {
		return Period{}, nil
	}
	unit := strings.TrimLeft(s, "0123456789")
	num := s[:len(s)-len(unit)]
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > 1_000_000_000 {
		return Period{}, fmt.Errorf("budget_duration %q: want a positive whole number and a unit, like 30s, 30m, 1h, 1d, 7d, 1w or 1mo", s)
	}
	p := Period{Spec: s}
	switch unit {
	case "s", "":
		p.fixed = time.Duration(n) * time.Second
	case "m":
		p.fixed = time.Duration(n) * time.Minute
	case "h":
		p.fixed = time.Duration(n) * time.Hour
	case "d":
		p.fixed = time.Duration(n) * 24 * time.Hour
	case "w":
		p.fixed = time.Duration(n) * 7 * 24 * time.Hour
	case "mo":
		p.months = n
	default:
		return Period{}, fmt.Errorf("budget_duration %q: unknown unit %q (use s, m, h, d, w or mo)", s, unit)
	}
	if p.fixed > maxPeriod || p.fixed < 0 || p.months > 1200 {
		return Period{}, fmt.Errorf("budget_duration %q is too long (at most 100 years)", s)
	}
	return p, nil
}

// IsZero reports whether p never ends.
func (p Period) IsZero() bool { return p.fixed == 0 && p.months == 0 }

// Index identifies the period containing t: its start, in Unix seconds
// (0 for the zero Period). Stores keep it beside spend and compare it with
// < and >=. Being a time rather than a count, it stays comparable when
// budget_duration changes: a longer duration never leaves a stored period
// looking current forever, and the first period boundary of the new
// duration after the stored one starts a new period.
func (p Period) Index(t time.Time) int64 {
	if p.IsZero() {
		return 0
	}
	return p.start(p.number(t)).Unix()
}

// End is when the period containing t ends (nil for the zero Period).
func (p Period) End(t time.Time) *time.Time {
	if p.IsZero() {
		return nil
	}
	e := p.start(p.number(t) + 1)
	return &e
}

// number counts periods from the Unix epoch to the one containing t.
func (p Period) number(t time.Time) int64 {
	t = t.UTC()
	switch {
	case p.fixed > 0:
		return floorDiv(t.Unix(), int64(p.fixed/time.Second))
	case p.months > 0:
		return floorDiv(int64((t.Year()-1970)*12+int(t.Month())-1), int64(p.months))
	}
	return 0
}

// start is when period number n begins.
func (p Period) start(n int64) time.Time {
	switch {
	case p.fixed > 0:
		return time.Unix(n*int64(p.fixed/time.Second), 0).UTC()
	case p.months > 0:
		m := n * int64(p.months)
		return time.Date(1970, time.Month(m+1), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Window is the fixed 60 s rate window containing t (Unix minutes).
func Window(t time.Time) int64 { return t.Unix() / 60 }

// WindowEnd is when window w ends.
func WindowEnd(w int64) time.Time { return time.Unix((w+1)*60, 0).UTC() }
