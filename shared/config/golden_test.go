package config

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenSecret is a value the golden configs can resolve; it must never
// appear in a report.
const goldenSecret = "golden-secret-value-4242"

// TestGolden parses configs with many mistakes and compares the whole report
// with testdata/NAME.golden: every problem at once, in document order, each
// naming the endpoint and the rule. Run with -update to rewrite.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/invalid*.*")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, in := range inputs {
		ext := filepath.Ext(in)
		if ext != ".yaml" && ext != ".json" {
			continue
		}
		n++
		golden := strings.TrimSuffix(in, ext) + ".golden"
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			r := mapResolver{"TOKEN": goldenSecret}
			got := report(t, data, r)
			if again := report(t, data, r); again != got {
				t.Fatalf("report is not deterministic:\n%s\nthen\n%s", got, again)
			}
			for _, s := range []string{goldenSecret, "hunter2"} {
				if strings.Contains(got, s) {
					t.Errorf("report shows the secret %q", s)
				}
			}
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("report differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
	if n == 0 {
		t.Fatal("no testdata/invalid*.yaml or .json inputs")
	}
}

func report(t *testing.T, data []byte, r SecretResolver) string {
	t.Helper()
	cfg, err := Parse(context.Background(), data, r)
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got (%v, %v); want a *Error", cfg, err)
	}
	return err.Error() + "\n"
}
