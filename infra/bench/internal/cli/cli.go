// Package cli holds what the benchmark clients share: labelled targets and
// headers from the command line, a plain HTTP client, and percentiles.
package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// Target is one labelled URL ("direct", "keyway", "nginx").
type Target struct {
	Label string
	URL   string
}

// Targets collects repeated -t label=URL flags.
type Targets []Target

func (t *Targets) String() string { return fmt.Sprint(*t) }

// Set parses label=URL.
func (t *Targets) Set(v string) error {
	label, url, ok := strings.Cut(v, "=")
	if !ok || label == "" || url == "" {
		return fmt.Errorf("want label=URL, got %q", v)
	}
	*t = append(*t, Target{label, url})
	return nil
}

// Headers collects repeated -H "Name: value" flags.
type Headers http.Header

func (h Headers) String() string { return fmt.Sprint(len(h), " headers") }

// Set parses "Name: value".
func (h Headers) Set(v string) error {
	name, value, ok := strings.Cut(v, ":")
	if !ok {
		return fmt.Errorf("want \"Name: value\", got %q", v)
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

// Client returns an HTTP/1.1 client with keep-alive, no proxy from the
// environment and no transparent gzip: what a benchmark client should be.
func Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 4,
		ReadBufferSize:      256 << 10,
		WriteBufferSize:     256 << 10,
	}}
}

// Percentile returns the p-th percentile (0..100) of xs by the nearest-rank
// method; xs is sorted in place.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	rank := int(math.Ceil(p / 100 * float64(len(xs))))
	if rank < 1 {
		rank = 1
	}
	return xs[rank-1]
}

// WriteJSON writes v to path, or to stdout when path is "" or "-".
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" || path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// ProcStat is what the kernel accounts to a set of processes so far.
type ProcStat struct {
	// CPUns is user + system CPU time (from /proc/PID/stat, USER_HZ = 100).
	CPUns int64 `json:"cpu_ns"`
	// RunQueueNs is the time the processes' threads were runnable but
	// waiting for a CPU (second field of /proc/PID/task/*/schedstat): on a
	// shared machine, the time other tenants held the core.
	RunQueueNs int64 `json:"runqueue_ns"`
}

// Sub returns p − q.
func (p ProcStat) Sub(q ProcStat) ProcStat {
	return ProcStat{CPUns: p.CPUns - q.CPUns, RunQueueNs: p.RunQueueNs - q.RunQueueNs}
}

// ReadProcStat sums ProcStat over pids.
func ReadProcStat(pids ...int) (ProcStat, error) {
	var s ProcStat
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return s, err
		}
		// Fields after the command name, which is in parentheses and may
		// hold spaces: state is field 3, utime 14, stime 15.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return s, fmt.Errorf("/proc/%d/stat: short", pid)
		}
		var ut, st int64
		fmt.Sscan(f[11], &ut)
		fmt.Sscan(f[12], &st)
		s.CPUns += (ut + st) * 10_000_000
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, t := range tasks {
			sb, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				continue // the thread exited
			}
			sf := strings.Fields(string(sb))
			if len(sf) >= 2 {
				var wait int64
				fmt.Sscan(sf[1], &wait)
				s.RunQueueNs += wait
			}
		}
	}
	return s, nil
}

// Watch collects repeated -watch label=PID[,PID…] flags.
type Watch map[string][]int

func (w Watch) String() string { return fmt.Sprint(map[string][]int(w)) }

// Set parses label=PID[,PID…].
func (w Watch) Set(v string) error {
	label, list, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want label=PID[,PID…], got %q", v)
	}
	for _, p := range strings.Split(list, ",") {
		var pid int
		if _, err := fmt.Sscan(p, &pid); err != nil || pid <= 0 {
			return fmt.Errorf("want label=PID[,PID…], got %q", v)
		}
		w[label] = append(w[label], pid)
	}
	return nil
}
