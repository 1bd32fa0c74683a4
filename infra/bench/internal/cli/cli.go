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
