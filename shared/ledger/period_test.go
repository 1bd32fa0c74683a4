package ledger

import (
	"testing"
	"time"
)

func TestPeriod(t *testing.T) {
	at := time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		spec       string
		start, end time.Time
	}{
		{"30s", time.Date(2026, 12, 2, 15, 4, 0, 0, time.UTC), time.Date(2026, 12, 2, 15, 4, 30, 0, time.UTC)},
		{"30", time.Date(2026, 12, 2, 15, 4, 0, 0, time.UTC), time.Date(2026, 12, 2, 15, 4, 30, 0, time.UTC)},
		{"30m", time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 15, 30, 0, 0, time.UTC)},
		{"1h", time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)},
		{"1d", time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		// 7-day blocks from Thursday 1970-01-01.
		{"7d", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		{"1w", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		{"1mo", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"3mo", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		p, err := ParsePeriod(tt.spec)
		if err != nil {
			t.Fatalf("%s: %v", tt.spec, err)
		}
		i := p.Index(at)
		if got := time.Unix(i, 0).UTC(); !got.Equal(tt.start) {
			t.Errorf("%s: start got %v; want %v", tt.spec, got, tt.start)
		}
		if got := p.End(at); got == nil || !got.Equal(tt.end) {
			t.Errorf("%s: end got %v; want %v", tt.spec, got, tt.end)
		}
		if p.Index(tt.end) != tt.end.Unix() || p.Index(tt.end.Add(-time.Nanosecond)) != i || i != tt.start.Unix() {
			t.Errorf("%s: the period does not change exactly at its end", tt.spec)
		}
	}
	for _, bad := range []string{"0s", "-1d", "1y", "s", "1.5h", "99999999999d", "1201mo", "x"} {
		if _, err := ParsePeriod(bad); err == nil {
			t.Errorf("%q: got no error; want one", bad)
		}
	}
	if p, _ := ParsePeriod(""); !p.IsZero() || p.End(at) != nil || p.Index(at) != 0 {
		t.Errorf("empty period: want the zero Period that never ends")
	}
}

// TestPeriodIndexComparableAcrossDurations: the index is the period's start,
// so after budget_duration grows (1d → 1mo) the stored day's index is not
// "current" forever: the next month's index is larger.
func TestPeriodIndexComparableAcrossDurations(t *testing.T) {
	day, _ := ParsePeriod("1d")
	month, _ := ParsePeriod("1mo")
	at := time.Date(2026, 12, 20, 10, 0, 0, 0, time.UTC)
	stored := day.Index(at)
	if next := month.Index(time.Date(2027, 1, 1, 0, 0, 1, 0, time.UTC)); next <= stored {
		t.Errorf("next month's index %d is not after the stored day's %d", next, stored)
	}
}

func TestNanosAddUpExactly(t *testing.T) {
	var sum Nanos
	for range 1_000_000 {
		sum += FromDollars(0.000001)
	}
	if sum != NanosPerDollar || sum.Dollars() != 1 {
		t.Errorf("a million charges of $0.000001: got %d nanos ($%v); want exactly $1", sum, sum.Dollars())
	}
}
