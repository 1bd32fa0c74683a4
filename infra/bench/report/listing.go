package main

import "math"

// Listing benchmark (infra/bench/listbench, issue 13): GET /key/list?size=10
// with 100 keys versus 10,000, bbolt, through the whole handler.

func (r *report) listingSection(p func(string, ...any)) {
	raw := r.read("listing.txt")
	if raw == "" {
		return
	}
	m := parseMetrics(raw)
	get := func(name string) float64 {
		if b := m[name]; b != nil {
			return median(b["ns/op"])
		}
		return math.NaN()
	}
	p("## 8. Listing keys (issue 13)\n\n")
	p("`go test -run '^$' -bench . -count 3 ./infra/bench/listbench` (see its package doc):\n")
	p("`GET /key/list?size=10` (page 1 and a middle page, alternately) through the whole\n")
	p("handler on bbolt. Listings are paged in the store, so the cost follows the page, not\n")
	p("the number of keys.\n\n")
	p("| answer | 100 keys | 10,000 keys | ratio |\n| --- | ---: | ---: | ---: |\n")
	for _, kind := range []string{"tokens", "full"} {
		small, large := get("BenchmarkKeyList/keys=100/"+kind), get("BenchmarkKeyList/keys=10000/"+kind)
		if math.IsNaN(small) || math.IsNaN(large) {
			continue
		}
		label := "tokens (default)"
		if kind == "full" {
			label = "return_full_object=true (records + spend)"
		}
		ratio := large / small
		p("| %s | %.0f µs | %.0f µs | %.2f × |\n", label, small/1000, large/1000, ratio)
		if kind == "tokens" {
			r.target("/key/list?size=10 at 10,000 keys ≤ 2 × at 100 keys", verdict(ratio <= 2), "%.2f × (%.0f vs %.0f µs)", ratio, large/1000, small/1000)
		}
	}
	p("\n```\n%s```\n\n", raw)
}
