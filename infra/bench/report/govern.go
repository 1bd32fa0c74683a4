package main

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Governance benchmarks (infra/bench/govbench, issues 9 and 10): metered vs
// unmetered CPU per request, limited vs unlimited key latency on moto, and
// the peak RSS of 1000 concurrent streams.

var metricPair = regexp.MustCompile(`([0-9.]+) (\S+/op|peak-RSS-MiB)`)

// parseMetrics reads every "value unit" of each benchmark line, by name
// (without the -GOMAXPROCS suffix), as lists over repetitions.
func parseMetrics(s string) map[string]map[string][]float64 {
	out := map[string]map[string][]float64{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if out[name] == nil {
			out[name] = map[string][]float64{}
		}
		for _, m := range metricPair.FindAllStringSubmatch(line, -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			out[name][m[2]] = append(out[name][m[2]], v)
		}
	}
	return out
}

func (r *report) governSection(p func(string, ...any)) {
	raw := r.read("govern.txt")
	if raw == "" {
		return
	}
	m := parseMetrics(raw)
	get := func(name, unit string) float64 {
		if b := m[name]; b != nil {
			return median(b[unit])
		}
		return math.NaN()
	}
	p("## 7. Metering and limits (issues 9 and 10)\n\n")
	p("`go test -run '^$' -bench . -count %s ./infra/bench/govbench` (see its package doc).\n", r.params["count"])
	p("Every request, metered or not, ends with one ledger settle (usage record, day totals,\n")
	p("spend); on bbolt that is a write transaction with an fsync, shared by concurrent\n")
	p("requests (bbolt Batch).\n\n")
	p("| measurement | value |\n| --- | ---: |\n")
	plain, metered := get("BenchmarkMetering/plain", "cpu-ns/op"), get("BenchmarkMetering/metered", "cpu-ns/op")
	p("| CPU per request, usage: none | %.0f µs |\n", plain/1000)
	p("| CPU per request, usage: openai (chat JSON parsed, priced) | %.0f µs |\n", metered/1000)
	if !math.IsNaN(plain) && !math.IsNaN(metered) {
		ratio := metered / plain
		p("| metered ÷ unmetered CPU | %.2f × |\n", ratio)
		r.target("CPU per request, metered ≤ 1.1 × unmetered", verdict(ratio <= 1.1), "%.2f × (%.0f vs %.0f µs)", ratio, metered/1000, plain/1000)
	}
	free, limited := get("BenchmarkLimitedKey/unlimited", "ns/op"), get("BenchmarkLimitedKey/limited", "ns/op")
	if !math.IsNaN(free) && !math.IsNaN(limited) {
		p("| latency, key with limits ÷ key without, DynamoDB on moto | %.2f × (%.1f vs %.1f ms) |\n", limited/free, limited/1e6, free/1e6)
		r.target("added latency of a limited key (ratio, moto)", "measured", "%.2f × an unlimited key", limited/free)
	}
	for _, kind := range []string{"plain", "metered"} {
		if v := get("BenchmarkSSEStreams/"+kind, "peak-RSS-MiB"); !math.IsNaN(v) {
			p("| peak RSS, 1000 concurrent streams, %s | %.1f MiB |\n", kind, v)
			if kind == "metered" {
				r.target("1000 concurrent metered SSE streams ≤ 128 MiB RSS", verdict(v <= 128), "%.1f MiB", v)
			}
		}
	}
	p("\n```\n%s```\n\n", raw)
}
