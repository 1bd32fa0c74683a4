package ledger

import (
	"testing"
	"time"
)

func TestMillionMicroDollarsIsOneDollar(t *testing.T) {
	var sum Nanos
	for range 1_000_000 {
		sum += FromDollars(0.000001)
	}
	if sum != FromDollars(1) || sum != NanosPerDollar {
		t.Errorf("1,000,000 × $0.000001: got %d nanos; want %d", sum, NanosPerDollar)
	}
}

func TestDays(t *testing.T) {
	days, err := Days("2024-02-28", "2024-03-01")
	if err != nil || len(days) != 3 || days[1] != "2024-02-29" {
		t.Errorf("Days: got %v, %v; want the 28th, 29th and 1st", days, err)
	}
	if _, err := Days("2024-01-01", "2024-12-31"); err != nil {
		t.Errorf("Days over 366 days: got %v; want nil", err)
	}
	for _, r := range [][2]string{{"2024-01-01", "2025-01-01"}, {"2024-01-02", "2024-01-01"}, {"2024-1-1", "2024-01-02"}} {
		if _, err := Days(r[0], r[1]); err == nil {
			t.Errorf("Days(%s, %s): got nil error; want one", r[0], r[1])
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	k := TimeKey(time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)) + "#req/1"
	got, err := DecodeCursor(EncodeCursor(k))
	if err != nil || got != k {
		t.Errorf("cursor round trip: got %q, %v; want %q", got, err, k)
	}
}

func TestTruncateUTF8(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc"},
		{"aé", 2, "a"}, // é is 2 bytes: never cut in half
		{"aé", 3, "aé"},
		{"€", 2, ""},
	} {
		if got := TruncateUTF8(c.s, c.n); got != c.want {
			t.Errorf("TruncateUTF8(%q, %d) = %q; want %q", c.s, c.n, got, c.want)
		}
	}
}
