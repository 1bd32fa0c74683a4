// Command report turns what infra/bench/run.sh collected (one directory of
// raw wrk outputs, JSON from the Go clients, go test benchmark output,
// profiles) into docs/performance.md: the machine, how to reproduce, the
// tables, and each target of issue 6 marked met or not met from the
// numbers of this run. A hand-written notes file (the profile analysis) is
// appended as it is.
//
//	report -in .bench -notes infra/bench/notes.md -out docs/performance.md
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

func main() {
	in := flag.String("in", ".bench", "directory run.sh wrote")
	notes := flag.String("notes", "", "hand-written analysis appended to the report")
	out := flag.String("out", "docs/performance.md", "report file")
	flag.Parse()
	r := &report{dir: *in}
	r.load()
	doc := r.render(*notes)
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("report: wrote %s\n", *out)
	for _, t := range r.targets {
		fmt.Printf("  %-8s %s: %s\n", t.verdict, t.name, t.value)
	}
}

// ---------------------------------------------------------------------------
// Loading.

type wrkRun struct {
	target         string
	conns, rep     int
	rps            float64
	p50, p99       float64 // ms
	non2xx, errors int
	requests       float64
	cpuUs          float64 // CPU time of the process under test per request, µs (NaN: not recorded)
	waitFrac       float64 // its run-queue wait ÷ run duration (NaN: not recorded)
}

// procStat is cli.ProcStat as JSON.
type procStat struct {
	CPUns      int64 `json:"cpu_ns"`
	RunQueueNs int64 `json:"runqueue_ns"`
}

type sseResult struct {
	Label      string    `json:"label"`
	Streams    int       `json:"streams"`
	Events     int       `json:"events"`
	WantEvents int       `json:"want_events"`
	MultiReads int       `json:"reads_with_more_than_one_event"`
	DelayP50us float64   `json:"delay_p50_us"`
	DelayP90us float64   `json:"delay_p90_us"`
	DelayP99us float64   `json:"delay_p99_us"`
	DelayMaxus float64   `json:"delay_max_us"`
	TTFBp50us  float64   `json:"ttfb_p50_us"`
	TTFBMaxus  float64   `json:"ttfb_max_us"`
	TTFBus     []float64 `json:"ttfb_us"`
	StreamP99  []float64 `json:"stream_p99_us"`
	Proc       *procStat `json:"proc"`
}

type transfer struct {
	Label      string    `json:"label"`
	Rep        int       `json:"rep"`
	Bytes      int64     `json:"bytes"`
	Seconds    float64   `json:"seconds"`
	MiBps      float64   `json:"mib_per_s"`
	PeakRSSKiB int64     `json:"peak_rss_kib"`
	RSSKiB     int64     `json:"rss_before_kib"`
	Proc       *procStat `json:"proc"`
}

type coldSummary struct {
	Label            string  `json:"label"`
	Starts           int     `json:"starts"`
	FirstInvokeP50ms float64 `json:"first_invoke_p50_ms"`
	FirstInvokeP90ms float64 `json:"first_invoke_p90_ms"`
	FirstInvokeMaxms float64 `json:"first_invoke_max_ms"`
	WarmInvokeP50ms  float64 `json:"warm_invoke_p50_ms"`
	InitReportP50ms  float64 `json:"rie_init_report_p50_ms"`
}

type coldStart struct {
	Label         string  `json:"label"`
	N             int     `json:"n"`
	FirstInvokeMs float64 `json:"first_invoke_ms"`
}

type bench struct {
	ns, bytes, allocs []float64
}

type target struct {
	name, value string
	verdict     string
}

type report struct {
	dir        string
	params     map[string]string
	wrk        []wrkRun
	sse        []sseResult
	download   []transfer
	upload     []transfer
	cold       []coldSummary
	coldStarts []coldStart
	sizes      map[string]int64
	micro      map[string]*bench
	auth       map[string]*bench
	targets    []target
}

func (r *report) path(name string) string { return filepath.Join(r.dir, name) }

func (r *report) read(name string) string {
	b, err := os.ReadFile(r.path(name))
	if err != nil {
		return ""
	}
	return string(b)
}

func (r *report) readJSON(name string, v any) bool {
	b, err := os.ReadFile(r.path(name))
	if err != nil {
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		log.Fatalf("report: %s: %v", name, err)
	}
	return true
}

func (r *report) load() {
	r.params = keyValues(r.read("params.txt"))
	r.loadWrk()
	r.readJSON("sse.json", &r.sse)
	r.readJSON("download.json", &r.download)
	r.readJSON("upload.json", &r.upload)
	var cold struct {
		Summary []coldSummary `json:"summary"`
		Starts  []coldStart   `json:"starts"`
	}
	if r.readJSON("cold.json", &cold) {
		r.cold, r.coldStarts = cold.Summary, cold.Starts
	}
	r.sizes = map[string]int64{}
	for k, v := range keyValues(r.read("sizes.txt")) {
		n, _ := strconv.ParseInt(v, 10, 64)
		r.sizes[k] = n
	}
	r.micro = parseBench(r.read("micro.txt"))
	r.auth = parseBench(r.read("auth.txt"))
}

func keyValues(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

var wrkName = regexp.MustCompile(`^([a-z]+)-c(\d+)-r(\d+)\.txt$`)

func (r *report) loadWrk() {
	files, _ := filepath.Glob(r.path("wrk/*.txt"))
	for _, f := range files {
		m := wrkName.FindStringSubmatch(filepath.Base(f))
		if m == nil {
			continue
		}
		b, _ := os.ReadFile(f)
		w := parseWrk(string(b))
		w.cpuUs, w.waitFrac = math.NaN(), math.NaN()
		if c := keyValues(r.read(filepath.Join("wrk", strings.TrimSuffix(filepath.Base(f), ".txt")+".proc"))); c["cpu_ns"] != "" && w.requests > 0 {
			cpu, _ := strconv.ParseFloat(c["cpu_ns"], 64)
			wait, _ := strconv.ParseFloat(c["runqueue_ns"], 64)
			dur, _ := strconv.ParseFloat(r.params["duration_s"], 64)
			w.cpuUs = cpu / 1e3 / w.requests
			if dur > 0 {
				w.waitFrac = wait / 1e9 / dur
			}
		}
		w.target = m[1]
		w.conns, _ = strconv.Atoi(m[2])
		w.rep, _ = strconv.Atoi(m[3])
		r.wrk = append(r.wrk, w)
	}
}

func parseWrk(s string) wrkRun {
	var w wrkRun
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			w.p50 = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			w.p99 = wrkDuration(f[1])
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			w.requests, _ = strconv.ParseFloat(f[0], 64)
		case len(f) == 2 && f[0] == "Requests/sec:":
			w.rps, _ = strconv.ParseFloat(f[1], 64)
		case strings.HasPrefix(sc.Text(), "  Non-2xx or 3xx responses:"):
			w.non2xx, _ = strconv.Atoi(f[len(f)-1])
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			for _, x := range f[2:] {
				if n, err := strconv.Atoi(strings.TrimSuffix(x, ",")); err == nil {
					w.errors += n
				}
			}
		}
	}
	return w
}

// wrkDuration converts wrk's "812.00us", "4.01ms", "1.20s", "2.00m" to ms.
func wrkDuration(s string) float64 {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f * u.ms
			}
		}
	}
	return math.NaN()
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+([0-9.]+) ns/op(?:\s+([0-9.]+) B/op\s+([0-9.]+) allocs/op)?`)

func parseBench(s string) map[string]*bench {
	m := map[string]*bench{}
	for _, line := range strings.Split(s, "\n") {
		g := benchLine.FindStringSubmatch(line)
		if g == nil {
			continue
		}
		b := m[g[1]]
		if b == nil {
			b = &bench{}
			m[g[1]] = b
		}
		ns, _ := strconv.ParseFloat(g[3], 64)
		b.ns = append(b.ns, ns)
		if g[4] != "" {
			by, _ := strconv.ParseFloat(g[4], 64)
			al, _ := strconv.ParseFloat(g[5], 64)
			b.bytes, b.allocs = append(b.bytes, by), append(b.allocs, al)
		}
	}
	return m
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ---------------------------------------------------------------------------
// Rendering.

const (
	met          = "met"
	notMet       = "NOT MET"
	inconclusive = "inconclusive (noise)"
)

func verdict(ok bool) string {
	if ok {
		return met
	}
	return notMet
}

// agreed is the verdict of repeated measurements xs against pass: met or
// not met when they agree (all of fewer than 5, or at least 80% of 5 or
// more), else inconclusive — a target is not declared met or missed on noise.
func agreed(xs []float64, pass func(float64) bool) string {
	n, ok := 0, 0
	for _, x := range xs {
		if math.IsNaN(x) {
			continue
		}
		n++
		if pass(x) {
			ok++
		}
	}
	switch {
	case n == 0:
		return inconclusive
	case ok == n || (n >= 5 && float64(ok) >= 0.8*float64(n)):
		return met
	case ok == 0 || (n >= 5 && float64(ok) <= 0.2*float64(n)):
		return notMet
	}
	return inconclusive
}

func (r *report) target(name, verdict string, format string, args ...any) {
	r.targets = append(r.targets, target{name: name, value: fmt.Sprintf(format, args...), verdict: verdict})
}

func (r *report) render(notesFile string) string {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	sections := []func(p func(string, ...any)){
		r.overhead, r.streaming, r.bigBodies, r.authCost, r.coldStart, r.microSection, r.governSection, r.listingSection,
	}
	var body bytes.Buffer
	bp := func(format string, args ...any) { fmt.Fprintf(&body, format, args...) }
	for _, s := range sections {
		s(bp)
	}

	p("# Performance\n\n")
	p("What a request through Keyway costs, measured by `make bench` on one machine against\n")
	p("the physical floor (a direct call to the upstream) and the best plain proxy (nginx)\n")
	p("in the same run. Absolute numbers depend on the machine and on what else runs on it;\n")
	p("the ratios, measured side by side, are what carries over. Every figure below is\n")
	p("from the run described under *Machine*; this file is generated by\n")
	p("`infra/bench/report` from that run's raw output, except the final section\n")
	p("(*Analysis*), which is written by hand from the profiles.\n\n")

	p("## Targets (issue 6)\n\n")
	p("A verdict stands only when the repeated measurements agree (all of fewer than five,\n")
	p("or at least 80%% of five or more); otherwise it is *inconclusive (noise)*, never a pass.\n\n")
	p("| target | this run | verdict |\n| --- | --- | --- |\n")
	for _, t := range r.targets {
		p("| %s | %s | **%s** |\n", t.name, t.value, t.verdict)
	}
	p("\nWhy each target is missed or inconclusive, from the profiles: *Analysis* at the end.\n\n")

	p("## Machine\n\n```\n%s```\n\n", r.read("machine.txt"))
	p("Run parameters: %s.\n\n", r.paramLine())

	p("## Reproduce\n\n")
	p("```sh\nmake bench          # everything below, ~10 minutes here; writes .bench/ and this file\n```\n\n")
	p("`make bench` runs `infra/bench/run.sh`, which installs `wrk`, `nginx` and `hyperfine`\n")
	p("(apt-get), `benchstat` and the Lambda RIE (go install) when missing, starts every\n")
	p("process on loopback and stops them on exit. Knobs (environment): `BENCH_DURATION`\n")
	p("(seconds per wrk run, default 5), `BENCH_REPS` (default 5), `BENCH_CONNS`\n")
	p("(default `1 16 64`), `BENCH_SSE_STREAMS` (default 20), `BENCH_BIG_BYTES` (default\n")
	p("1 GiB), `BENCH_BIG_REPS` (default 5), `BENCH_COUNT` (go test -count, default 6), `BENCH_COLD_STARTS`\n")
	p("(default 20), `BENCH_PROXY_CPU` / `BENCH_LOAD_CPU` (defaults 0 / 1), `BENCH_OUT`\n")
	p("(default `.bench`), `BENCH_DOC` (default `docs/performance.md`). Single parts:\n\n")
	p("```sh\n")
	p("# micro benchmarks (request path vs bare ReverseProxy, classify, auth)\n")
	p("go test -run '^$' -bench . -benchmem -count 6 ./shared/route ./shared/auth ./shared/proxy ./shared/gateway | tee micro.txt\n")
	p("benchstat micro.txt\n")
	p("# auth cost, bbolt and DynamoDB (moto server)\n")
	p("go test -run '^$' -bench . -benchmem -count 6 ./infra/bench/authbench | tee auth.txt\n")
	p("# profile of the whole request path\n")
	p("go test -run '^$' -bench '^BenchmarkRequestPath$' -benchtime 3s -cpuprofile cpu.pprof -memprofile mem.pprof ./shared/gateway\n")
	p("go tool pprof -top -sample_index=alloc_objects mem.pprof\n")
	p("# metering and limits (bbolt; DynamoDB on moto server; the gateway binary)\n")
	p("go test -run '^$' -bench . -count 3 ./infra/bench/govbench | tee govern.txt\n")
	p("# listing keys, 100 vs 10,000 (bbolt)\n")
	p("go test -run '^$' -bench . -count 3 ./infra/bench/listbench | tee listing.txt\n")
	p("```\n\n")
	p("Raw outputs of a run (wrk text, client JSON, benchmark text, profiles, RIE logs)\n")
	p("stay in `.bench/`.\n\n")

	b.Write(body.Bytes())

	if notesFile != "" {
		if n, err := os.ReadFile(notesFile); err == nil {
			p("%s", n)
			if !bytes.HasSuffix(n, []byte("\n")) {
				p("\n")
			}
		}
	}
	return b.String()
}

func (r *report) paramLine() string {
	keys := make([]string, 0, len(r.params))
	for k := range r.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("`%s=%s`", k, r.params[k]))
	}
	return strings.Join(parts, ", ")
}

func fmtMs(ms float64) string {
	switch {
	case math.IsNaN(ms):
		return "—"
	case math.Abs(ms) < 1:
		return fmt.Sprintf("%.0f µs", ms*1000)
	case math.Abs(ms) < 10:
		return fmt.Sprintf("%.2f ms", ms)
	default:
		return fmt.Sprintf("%.1f ms", ms)
	}
}

func signedMs(ms float64) string {
	if math.IsNaN(ms) {
		return "—"
	}
	if ms >= 0 {
		return "+" + fmtMs(ms)
	}
	return "−" + fmtMs(-ms)
}

// ---- 1. overhead

func (r *report) runs(target string, conns int) []wrkRun {
	var out []wrkRun
	for _, w := range r.wrk {
		if w.target == target && w.conns == conns {
			out = append(out, w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rep < out[j].rep })
	return out
}

func field(runs []wrkRun, f func(wrkRun) float64) []float64 {
	xs := make([]float64, len(runs))
	for i, w := range runs {
		xs[i] = f(w)
	}
	return xs
}

// paired returns f(a_i, b_i) for the reps both have.
func paired(a, b []wrkRun, f func(a, b wrkRun) float64) []float64 {
	var xs []float64
	for _, x := range a {
		for _, y := range b {
			if x.rep == y.rep {
				xs = append(xs, f(x, y))
			}
		}
	}
	return xs
}

func (r *report) overhead(p func(string, ...any)) {
	p("## 1. Overhead: direct vs nginx vs Keyway\n\n")
	if len(r.wrk) == 0 {
		p("Not measured in this run.\n\n")
		return
	}
	var conns []int
	for _, w := range r.wrk {
		if !slices.Contains(conns, w.conns) {
			conns = append(conns, w.conns)
		}
	}
	slices.Sort(conns)
	p("`GET` of 1 KiB of JSON from the loopback upstream (`infra/bench/upstream`), with\n")
	p("`wrk -t1 -cN -d%ss --latency` and the same `Authorization: Bearer sk-…` header on\n", r.params["duration_s"])
	p("every path. **direct**: wrk → upstream. **nginx**: wrk → nginx (`worker_processes 1`,\n")
	p("`proxy_pass` to an `upstream` block with `keepalive 64`, HTTP/1.1 to the upstream,\n")
	p("access log to /dev/null) → upstream. **go-bare**: a reference Go proxy\n")
	p("(`infra/bench/bareproxy`: a bare `httputil.ReverseProxy` on Keyway's transport, no\n")
	p("auth, no log) — the share of Keyway's cost that is Go's `net/http` itself.\n")
	p("**Keyway**: the local gateway binary (an `auth: true` endpoint, a virtual key made\n")
	p("with `/key/generate` for a user made with `/user/new`, bbolt store, key cache default\n")
	p("5 s, one JSON access-log line per request on stderr to /dev/null) → upstream.\n\n")
	p("Pinning: the proxy under test on CPU %s (Go proxies with `GOMAXPROCS=1`, nginx with\n", r.params["proxy_cpu"])
	p("one worker); wrk and the upstream (`GOMAXPROCS=1`) on CPU %s. Paths alternate run by\n", r.params["load_cpu"])
	p("run (all paths at 1, 16, 64 connections, then again), %s repetition(s); each cell is\n", r.params["reps"])
	p("the median over the repetitions, each ratio and difference the median of the\n")
	p("per-repetition values (the paths of one repetition ran back to back).\n\n")
	p("**CPU per request** is the CPU time (user + system, `/proc/PID/stat`) of the process\n")
	p("under test — the proxy; for *direct*, the upstream — divided by the requests served.\n")
	p("**Waiting** is the time its threads were runnable but not running\n")
	p("(`/proc/PID/task/*/schedstat`), as a share of the run: the time other processes held\n")
	p("its core (for *direct*, mostly wrk's turns: the upstream shares wrk's core by design).\n")
	p("Where waiting is high, RPS and latency measure the machine's other tenants\n")
	p("as much as the proxy, and CPU per request is the steadier measure of cost (a proxy\n")
	p("alone on a core would serve about 10⁶ ÷ CPU-µs requests per second).\n\n")
	p("| conns | path | RPS | p50 | p99 | CPU per request | waiting |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	bad := 0
	for _, c := range conns {
		for _, t := range paths {
			rs := r.runs(t, c)
			if len(rs) == 0 {
				continue
			}
			for _, w := range rs {
				bad += w.non2xx + w.errors
			}
			p("| %d | %s | %.0f | %s | %s | %s | %s |\n", c, pathName(t),
				median(field(rs, func(w wrkRun) float64 { return w.rps })),
				fmtMs(median(field(rs, func(w wrkRun) float64 { return w.p50 }))),
				fmtMs(median(field(rs, func(w wrkRun) float64 { return w.p99 }))),
				fmtUs(median(field(rs, func(w wrkRun) float64 { return w.cpuUs }))),
				fmtPct(median(field(rs, func(w wrkRun) float64 { return w.waitFrac }))))
		}
	}
	p("\n")
	if bad > 0 {
		p("**Warning:** %d non-2xx responses or socket errors in the wrk runs (see `.bench/wrk/`).\n\n", bad)
	} else {
		p("Every response in every run was a 2xx (wrk reported no non-2xx and no socket errors).\n\n")
	}

	p("| conns | RPS Keyway ÷ nginx | RPS Keyway ÷ direct | RPS nginx ÷ direct | added p50 Keyway / nginx | added p99 Keyway / nginx | CPU per request Keyway ÷ nginx | Keyway ÷ go-bare |\n")
	p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	ratio := func(a, b wrkRun) float64 { return a.rps / b.rps }
	add50 := func(a, b wrkRun) float64 { return a.p50 - b.p50 }
	add99 := func(a, b wrkRun) float64 { return a.p99 - b.p99 }
	cpu := func(a, b wrkRun) float64 { return a.cpuUs / b.cpuUs }
	for _, c := range conns {
		d, n, k, g := r.runs("direct", c), r.runs("nginx", c), r.runs("keyway", c), r.runs("gobare", c)
		p("| %d | %.2f | %.2f | %.2f | %s / %s | %s / %s | %.2f | %.2f |\n", c,
			median(paired(k, n, ratio)), median(paired(k, d, ratio)), median(paired(n, d, ratio)),
			signedMs(median(paired(k, d, add50))), signedMs(median(paired(n, d, add50))),
			signedMs(median(paired(k, d, add99))), signedMs(median(paired(n, d, add99))),
			median(paired(k, n, cpu)), median(paired(k, g, cpu)))
	}
	p("\n")
	if cpu := r.read("gateway-cpu-top.txt"); cpu != "" {
		p("CPU profile of the gateway's code (`infra/bench/profgw`: `app.Build` + `app.Serve` as\n")
		p("`functions/gateway` runs them, JSON log to /dev/null, same pinning) under `wrk -c64`\n")
		p("for one run (`go tool pprof -top -cum`, trimmed; flat profile in\n")
		p("`.bench/gateway-cpu-flat.txt`):\n\n```\n%s```\n\n", r.read("gateway-cpu-top.txt"))
	}

	k64, n64 := r.runs("keyway", 64), r.runs("nginx", 64)
	if len(k64) > 0 && len(n64) > 0 {
		ratios := paired(k64, n64, ratio)
		cpus := paired(n64, k64, cpu) // nginx CPU ÷ Keyway CPU: the capacity ratio
		extra := ""
		if m := median(cpus); !math.IsNaN(m) {
			extra = fmt.Sprintf("; by CPU per request, Keyway's single-core capacity is %.2f × nginx's (per repetition: %s)", m, list(cpus, "%.2f"))
		}
		r.target("Keyway RPS ≥ 0.8 × nginx at 64 connections", agreed(ratios, func(x float64) bool { return x >= 0.8 }),
			"%.2f × (per repetition: %s)%s", median(ratios), list(ratios, "%.2f"), extra)
	}
	k16, d16 := r.runs("keyway", 16), r.runs("direct", 16)
	if len(k16) > 0 && len(d16) > 0 {
		adds := paired(k16, d16, add99)
		r.target("added p99 over direct ≤ 1 ms at 16 connections", agreed(adds, func(x float64) bool { return x <= 1 }),
			"%s (per repetition: %s; direct's own p99: %s)", signedMs(median(adds)), listMs(adds),
			plainMs(field(d16, func(w wrkRun) float64 { return w.p99 })))
	}
}

func pathName(t string) string {
	switch t {
	case "gobare":
		return "go-bare"
	case "keyway":
		return "Keyway"
	}
	return t
}

func fmtPct(f float64) string {
	if math.IsNaN(f) {
		return "—"
	}
	return fmt.Sprintf("%.0f %%", f*100)
}

// paths are the overhead test's paths, in table order.
var paths = []string{"direct", "nginx", "gobare", "keyway"}

func fmtUs(us float64) string {
	if math.IsNaN(us) {
		return "—"
	}
	return fmt.Sprintf("%.1f µs", us)
}

func list(xs []float64, format string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(s, ", ")
}

func plainMs(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmtMs(x)
	}
	return strings.Join(s, ", ")
}

func listMs(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = signedMs(x)
	}
	return strings.Join(s, ", ")
}

// ---- 2. streaming

func (r *report) streaming(p func(string, ...any)) {
	p("## 2. Streaming (SSE)\n\n")
	res := map[string]*sseResult{}
	for i := range r.sse {
		res[r.sse[i].Label] = &r.sse[i]
	}
	direct, keyway := res["direct"], res["keyway"]
	if direct == nil || keyway == nil {
		p("Not measured in this run.\n\n")
		return
	}
	p("The upstream sends 100 events 10 ms apart, each stamped with the wall-clock time it\n")
	p("was written; `infra/bench/ssebench` records, per event, the time from that stamp to\n")
	p("the read that completed the event (same clock), and the time to first byte (request\n")
	p("sent → first body byte, on a warm keep-alive connection). %d streams per path,\n", keyway.Streams)
	p("alternating direct / go-bare / Keyway, after one unmeasured stream each; same pinning\n")
	p("as above. *Multi-event reads* counts reads that completed more than one event (an\n")
	p("event held back and delivered with the next one). *Waiting* is the proxy's run-queue\n")
	p("wait over its streams (other processes holding its core).\n\n")
	p("| path | events | delay p50 | p90 | p99 | max | TTFB p50 | TTFB max | multi-event reads | proxy CPU | waiting |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, label := range []string{"direct", "gobare", "keyway"} {
		s := res[label]
		if s == nil {
			continue
		}
		cpu, wait := "—", "—"
		if s.Proc != nil {
			cpu, wait = fmtMs(float64(s.Proc.CPUns)/1e6), fmtMs(float64(s.Proc.RunQueueNs)/1e6)
		}
		p("| %s | %d/%d | %s | %s | %s | %s | %s | %s | %d | %s | %s |\n", pathName(s.Label), s.Events, s.WantEvents,
			fmtMs(s.DelayP50us/1000), fmtMs(s.DelayP90us/1000), fmtMs(s.DelayP99us/1000), fmtMs(s.DelayMaxus/1000),
			fmtMs(s.TTFBp50us/1000), fmtMs(s.TTFBMaxus/1000), s.MultiReads, cpu, wait)
	}
	p("\n")
	// Per stream pair (stream i through Keyway vs stream i direct, run back
	// to back): the p99 of its 100 events.
	var adds []float64
	for i := range min(len(keyway.StreamP99), len(direct.StreamP99)) {
		adds = append(adds, (keyway.StreamP99[i]-direct.StreamP99[i])/1000)
	}
	add50 := (keyway.DelayP50us - direct.DelayP50us) / 1000
	p("Over all events, Keyway adds %s at p50 and %s at p99 per event, and %s to the\n",
		signedMs(add50), signedMs((keyway.DelayP99us-direct.DelayP99us)/1000), signedMs((keyway.TTFBp50us-direct.TTFBp50us)/1000))
	p("time to first byte (p50). Stream by stream (each Keyway stream against the direct\n")
	p("stream run just before it), the added p99 is: %s.\n\n", listMs(adds))
	if g := res["gobare"]; g != nil {
		p("The bare Go proxy on the same core: p50 %s, p99 %s.\n\n", fmtMs(g.DelayP50us/1000), fmtMs(g.DelayP99us/1000))
	}
	r.target("SSE: added per-event delay p99 ≤ 1 ms", agreed(adds, func(x float64) bool { return x <= 1 }),
		"%s (median over %d stream pairs; pooled: Keyway p99 %s, direct p99 %s)", signedMs(median(adds)), len(adds),
		fmtMs(keyway.DelayP99us/1000), fmtMs(direct.DelayP99us/1000))
	// A proxy that held back even every other event would put the median
	// delay near half the 10 ms interval; one that buffered to a size or to
	// the end, far beyond it.
	r.target("SSE: nothing buffered", verdict(keyway.Events == keyway.WantEvents && keyway.DelayP50us < 1000),
		"%d/%d events; median delay %s (holding back every other event would make it ≈ 5 ms); multi-event reads %d (direct %d)",
		keyway.Events, keyway.WantEvents, fmtMs(keyway.DelayP50us/1000), keyway.MultiReads, direct.MultiReads)
}

// ---- 3. big bodies

func byLabel(ts []transfer, label string) []transfer {
	var out []transfer
	for _, t := range ts {
		if t.Label == label {
			out = append(out, t)
		}
	}
	return out
}

func (r *report) bigBodies(p func(string, ...any)) {
	p("## 3. Big bodies\n\n")
	if len(r.download) == 0 && len(r.upload) == 0 {
		p("Not measured in this run.\n\n")
		return
	}
	size := int64(0)
	if len(r.download) > 0 {
		size = r.download[0].Bytes
	} else {
		size = r.upload[0].Bytes
	}
	p("One %s body per transfer (`infra/bench/bigbody`): a download (`GET`, upstream-generated,\n", humanBytes(size))
	p("with Content-Length) and an upload (`POST` with Content-Length, counted by the upstream,\n")
	p("which must confirm every byte). Transfers alternate direct / go-bare / Keyway, %s per\n", r.params["big_reps"])
	p("path. The gateway's peak RSS is its `VmHWM` from `/proc/PID/status`, reset before each\n")
	p("transfer (`echo 5 > /proc/PID/clear_refs`, which sets it to the current RSS, shown as\n")
	p("*RSS before*). The bench config sets `keyway: max_request_body_bytes` to 2 GiB for the\n")
	p("upload. Same pinning as above. *CPU per GiB* and *waiting* are the proxy's, per\n")
	p("transfer.\n\n")
	p("| transfer | direct MiB/s | go-bare MiB/s | Keyway MiB/s | Keyway ÷ direct | Keyway ÷ go-bare | CPU s/GiB Keyway / go-bare | waiting Keyway | Keyway peak RSS (max) | RSS before |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	peak := int64(0)
	type row struct {
		name   string
		ratios []float64
	}
	var rows []row
	for _, x := range []struct {
		name string
		ts   []transfer
	}{{"download", r.download}, {"upload", r.upload}} {
		d, g, k := byLabel(x.ts, "direct"), byLabel(x.ts, "gobare"), byLabel(x.ts, "keyway")
		if len(d) == 0 || len(k) == 0 {
			continue
		}
		mib := func(t transfer) float64 { return t.MiBps }
		md, mg, mk := median(tfield(d, mib)), median(tfield(g, mib)), median(tfield(k, mib))
		var ratios []float64
		for _, kt := range k {
			for _, dt := range d {
				if kt.Rep == dt.Rep {
					ratios = append(ratios, kt.MiBps/dt.MiBps)
				}
			}
		}
		pk := int64(0)
		for _, t := range k {
			pk = max(pk, t.PeakRSSKiB)
		}
		peak = max(peak, pk)
		cpuPerGiB := func(t transfer) float64 {
			if t.Proc == nil {
				return math.NaN()
			}
			return float64(t.Proc.CPUns) / 1e9 / (float64(t.Bytes) / (1 << 30))
		}
		waitShare := func(t transfer) float64 {
			if t.Proc == nil {
				return math.NaN()
			}
			return float64(t.Proc.RunQueueNs) / 1e9 / t.Seconds
		}
		p("| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f / %.2f | %s | %.1f MiB | %.1f MiB |\n", x.name, md, mg, mk,
			median(ratios), mk/mg, median(tfield(k, cpuPerGiB)), median(tfield(g, cpuPerGiB)),
			fmtPct(median(tfield(k, waitShare))), float64(pk)/1024,
			median(tfield(k, func(t transfer) float64 { return float64(t.RSSKiB) }))/1024)
		rows = append(rows, row{x.name, ratios})
	}
	p("\nMedians over the repetitions; per transfer, in order (MiB/s):\n\n")
	for _, x := range []struct {
		name string
		ts   []transfer
	}{{"download", r.download}, {"upload", r.upload}} {
		var parts []string
		for _, t := range x.ts {
			parts = append(parts, fmt.Sprintf("%s %.0f", pathName(t.Label), t.MiBps))
		}
		if len(parts) > 0 {
			p("- %s: %s\n", x.name, strings.Join(parts, ", "))
		}
	}
	p("\n")
	if top := r.read("gateway-bigbody-cpu-top.txt"); top != "" {
		p("CPU profile of the gateway's code during one download and one upload (`profgw`,\n")
		p("`go tool pprof -top -cum`, trimmed; flat in `.bench/gateway-bigbody-cpu-flat.txt`):\n\n```\n%s```\n\n", top)
	}
	for _, x := range rows {
		r.target(fmt.Sprintf("%s %s throughput ≥ 0.8 × direct", humanBytes(size), x.name),
			agreed(x.ratios, func(v float64) bool { return v >= 0.8 }),
			"%.2f × (per repetition: %s)", median(x.ratios), list(x.ratios, "%.2f"))
	}
	r.target("big-body peak RSS ≤ 64 MiB", verdict(float64(peak)/1024 <= 64), "%.1f MiB (highest of all Keyway transfers)", float64(peak)/1024)
}

func tfield(ts []transfer, f func(transfer) float64) []float64 {
	xs := make([]float64, len(ts))
	for i, t := range ts {
		xs[i] = f(t)
	}
	return xs
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d B", n)
}

// ---- 4. auth cost

func (r *report) authCost(p func(string, ...any)) {
	p("## 4. Authentication cost\n\n")
	if len(r.auth) == 0 {
		p("Not measured in this run.\n\n")
		return
	}
	p("`auth.Authenticator.Authenticate` for a virtual key of a user\n")
	p("(`infra/bench/authbench`, `-count %s`): the key served from the in-process cache\n", r.params["count"])
	p("(cache hit) vs read from the store on every call (cache miss: the key and its user,\n")
	p("two reads — what the first request of a key, or every request after the cache TTL,\n")
	p("costs). The DynamoDB store runs against **moto server** on loopback: moto is a Python\n")
	p("emulator (and `shared/awstest` serialises requests to it), so its absolute latency\n")
	p("says nothing about DynamoDB's; only the ratio is reported for it.\n\n")
	p("| store | cache hit | cache miss | hit calls/s (one goroutine) | miss calls/s | hit ÷ miss (speed-up) | allocs hit / miss |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, st := range []string{"bolt", "dynamodb-moto"} {
		hit := r.auth["BenchmarkAuthenticate/store="+st+"/cache=hit"]
		miss := r.auth["BenchmarkAuthenticate/store="+st+"/cache=miss"]
		if hit == nil || miss == nil {
			continue
		}
		h, m := median(hit.ns), median(miss.ns)
		if st == "bolt" {
			p("| bbolt | %s | %s | %.0f | %.0f | %.0f × | %.0f / %.0f |\n", fmtNs(h), fmtNs(m), 1e9/h, 1e9/m, m/h, median(hit.allocs), median(miss.allocs))
		} else {
			p("| DynamoDB (moto) | %s | (moto's latency) | %.0f | (moto's) | %.0f × | %.0f / %.0f |\n", fmtNs(h), 1e9/h, m/h, median(hit.allocs), median(miss.allocs))
		}
	}
	p("\n<details><summary>benchstat</summary>\n\n```\n%s```\n</details>\n\n", r.read("auth-benchstat.txt"))
}

func fmtNs(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
}

// ---- 5. cold start

func (r *report) coldStart(p func(string, ...any)) {
	p("## 5. Cold start (Lambda)\n\n")
	if arm := r.sizes["bootstrap_arm64"]; arm > 0 {
		p("`bootstrap` as `sam build` builds it (`make build-GatewayFunction`: linux/arm64,\n")
		p("`CGO_ENABLED=0 -trimpath -ldflags='-s -w' -tags lambda.norpc`): **%d bytes** (%.1f MB,\n", arm, float64(arm)/1e6)
		p("%.1f MiB). The same flags for linux/amd64, the build measured below: %d bytes.\n", float64(arm)/(1<<20), r.sizes["bootstrap_amd64"])
		p("Baseline (`infra/bench/nullfn`, the smallest aws-lambda-go function, same flags, amd64):\n")
		p("%d bytes.\n\n", r.sizes["nullfn_amd64"])
		r.target("`bootstrap` ≤ 15 MB (arm64)", verdict(float64(arm) <= 15e6), "%.1f MB (%d bytes)", float64(arm)/1e6, arm)
	}
	var k, base *coldSummary
	for i := range r.cold {
		switch r.cold[i].Label {
		case "keyway":
			k = &r.cold[i]
		case "baseline":
			base = &r.cold[i]
		}
	}
	if k == nil || base == nil {
		p("Cold starts not measured in this run.\n\n")
		return
	}
	p("Each start (`infra/bench/coldstart`) launches a fresh AWS Lambda Runtime Interface\n")
	p("Emulator with the bootstrap, waits until the RIE listens (it starts the bootstrap\n")
	p("lazily, on the first invoke), then times the first invoke — bootstrap exec, Go runtime\n")
	p("and package init, `app.Build` (config file parsed and validated, bbolt store opened,\n")
	p("handler built), the first request (a REST v1 event for `GET /health`, stream response\n")
	p("mode, the default) — and one warm invoke, then stops both. No AWS round trip is\n")
	p("involved: `KEYWAY_CONFIG` is a file, `KEYWAY_STORE` a bbolt file (created before the\n")
	p("first start). Keyway and the baseline alternate, %d starts each after one unmeasured\n", k.Starts)
	p("start each. The RIE's own *INIT REPORT* (runtime start → first `/next`) is shown too.\n\n")
	p("| function | first invoke p50 | p90 | max | warm invoke p50 | RIE init report p50 |\n")
	p("| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range []*coldSummary{k, base} {
		p("| %s | %s | %s | %s | %s | %s |\n", s.Label, fmtMs(s.FirstInvokeP50ms), fmtMs(s.FirstInvokeP90ms),
			fmtMs(s.FirstInvokeMaxms), fmtMs(s.WarmInvokeP50ms), fmtMs(s.InitReportP50ms))
	}
	work := k.FirstInvokeP50ms - base.FirstInvokeP50ms
	p("\n**Keyway's cold-start work** (its first invoke minus the baseline's, medians): %s;\n", fmtMs(work))
	p("by the RIE's init reports: %s.\n\n", fmtMs(k.InitReportP50ms-base.InitReportP50ms))
	// Per start pair (Keyway start i against the baseline start i just after it).
	var works []float64
	for _, ks := range r.coldStarts {
		for _, bs := range r.coldStarts {
			if ks.Label == "keyway" && bs.Label == "baseline" && ks.N == bs.N {
				works = append(works, ks.FirstInvokeMs-bs.FirstInvokeMs)
			}
		}
	}
	p("Start by start (Keyway's first invoke minus the baseline's that ran right after it),\n")
	p("the work is: %s.\n\n", listMs(works))
	r.target("cold start work ≤ 30 ms", agreed(works, func(x float64) bool { return x <= 30 }),
		"%s (first invoke p50 %s − baseline %s; per-start-pair median %s)", fmtMs(work), fmtMs(k.FirstInvokeP50ms),
		fmtMs(base.FirstInvokeP50ms), fmtMs(median(works)))

	if it := r.read("inittrace.txt"); it != "" {
		p("Package initialisation of the bootstrap (`GODEBUG=inittrace=1`, one start; the\n")
		p("RIE's own lines left out), the ten slowest packages and the total:\n\n```\n%s```\n\n", it)
	}
	if hf := r.read("check.txt"); hf != "" {
		p("Local mode, for comparison: `gateway -check` (process start, config load and\n")
		p("validation, exit) under `hyperfine`:\n\n```\n%s```\n\n", hf)
	}
}

// ---- 6. micro

func (r *report) microSection(p func(string, ...any)) {
	p("## 6. Micro benchmarks (request path)\n\n")
	if len(r.micro) == 0 {
		p("Not measured in this run.\n\n")
		return
	}
	p("`go test -run '^$' -bench . -benchmem -count %s` over `shared/route`, `shared/auth`,\n", r.params["count"])
	p("`shared/proxy` and `shared/gateway`. `BenchmarkRequestPath` is one pass-through\n")
	p("request through the whole handler `app.Build` assembles (access log as JSON to a\n")
	p("discarding writer, classify, authenticate from the cache, authorize, forward) to a\n")
	p("real loopback upstream answering 1 KiB; `BenchmarkRequestPathBareReverseProxy` is the\n")
	p("same forward by a bare `httputil.ReverseProxy` (`Rewrite` + `SetURL`) on the same\n")
	p("transport. `BenchmarkForward` / `BenchmarkBareReverseProxy` compare the proxy package\n")
	p("alone the same way.\n\n")
	p("| pair | allocs/op | B/op | ratio (allocs) |\n| --- | ---: | ---: | ---: |\n")
	for _, pair := range [][2]string{
		{"BenchmarkRequestPath", "BenchmarkRequestPathBareReverseProxy"},
		{"BenchmarkForward", "BenchmarkBareReverseProxy"},
	} {
		a, b := r.micro[pair[0]], r.micro[pair[1]]
		if a == nil || b == nil || len(a.allocs) == 0 || len(b.allocs) == 0 {
			continue
		}
		ra := median(a.allocs) / median(b.allocs)
		p("| `%s` vs `%s` | %.0f vs %.0f | %.0f vs %.0f | %.2f × |\n", strings.TrimPrefix(pair[0], "Benchmark"), strings.TrimPrefix(pair[1], "Benchmark"),
			median(a.allocs), median(b.allocs), median(a.bytes), median(b.bytes), ra)
		if pair[0] == "BenchmarkRequestPath" {
			r.target("request-path allocations ≤ 1.5 × bare ReverseProxy", verdict(ra <= 1.5),
				"%.2f × (%.0f vs %.0f allocs/op; %.0f vs %.0f B/op)", ra, median(a.allocs), median(b.allocs), median(a.bytes), median(b.bytes))
		}
	}
	p("\n```\n%s```\n\n", r.read("micro-benchstat.txt"))
	if cpu := r.read("cpu-top.txt"); cpu != "" {
		p("CPU profile of `BenchmarkRequestPath` (`go tool pprof -top`, cumulative, trimmed):\n\n```\n%s```\n\n", cpu)
	}
	if mem := r.read("mem-top.txt"); mem != "" {
		p("Allocations of `BenchmarkRequestPath` by function (`-sample_index=alloc_objects`, flat):\n\n```\n%s```\n\n", mem)
	}
}
