// Command ssebench measures server-sent-event delivery through each target:
// the upstream (infra/bench/upstream /sse) stamps every event with the
// wall-clock time it was written, and ssebench records, for every event,
// the time between that stamp and the read that completed the event
// (same machine, same clock). It also records time to first byte (request
// sent to first body byte) and how many reads carried more than one event
// (an event held back and delivered with the next one is buffering).
//
// Streams run one at a time, alternating between targets, so both paths see
// the same machine noise.
//
//	ssebench -streams 10 -t direct=http://UP/sse -t keyway=http://GW/bench/sse -H "Authorization: Bearer sk-…" -out sse.json
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/keywaygw/keyway/infra/bench/internal/cli"
)

// Result is one target's measurements.
type Result struct {
	Label       string    `json:"label"`
	Streams     int       `json:"streams"`
	Events      int       `json:"events"`
	WantEvents  int       `json:"want_events"`
	MultiReads  int       `json:"reads_with_more_than_one_event"`
	DelayP50us  float64   `json:"delay_p50_us"`
	DelayP90us  float64   `json:"delay_p90_us"`
	DelayP99us  float64   `json:"delay_p99_us"`
	DelayMaxus  float64   `json:"delay_max_us"`
	TTFBp50us   float64   `json:"ttfb_p50_us"`
	TTFBMaxus   float64   `json:"ttfb_max_us"`
	Delaysus    []float64 `json:"delays_us"`
	TTFBus      []float64 `json:"ttfb_us"`
	StreamP99us []float64 `json:"stream_p99_us"`
	// Proc is what the kernel accounted to the watched processes of this
	// target over its measured streams (nil when not watched).
	Proc *cli.ProcStat `json:"proc,omitempty"`
}

func main() {
	var targets cli.Targets
	headers := cli.Headers{}
	flag.Var(&targets, "t", "label=URL of an SSE stream (repeatable)")
	flag.Var(headers, "H", `request header "Name: value" (repeatable)`)
	watch := cli.Watch{}
	flag.Var(watch, "watch", "label=PID[,PID…]: account CPU and run-queue wait of these processes to that target (repeatable)")
	streams := flag.Int("streams", 10, "measured streams per target")
	warmup := flag.Int("warmup", 1, "unmeasured streams per target first")
	events := flag.Int("events", 100, "events the upstream sends per stream (checked)")
	out := flag.String("out", "-", "JSON output file")
	flag.Parse()
	if len(targets) == 0 {
		log.Fatal("ssebench: no -t label=URL")
	}

	client := cli.Client()
	results := make([]*Result, len(targets))
	for i, t := range targets {
		results[i] = &Result{Label: t.Label}
		if _, ok := watch[t.Label]; ok {
			results[i].Proc = &cli.ProcStat{}
		}
	}
	for s := 0; s < *warmup+*streams; s++ {
		for i, t := range targets {
			var before cli.ProcStat
			pids := watch[t.Label]
			if len(pids) > 0 {
				before = must(cli.ReadProcStat(pids...))
			}
			ttfb, delays, multi, err := stream(client, t.URL, http.Header(headers))
			if err != nil {
				log.Fatalf("ssebench: %s: %v", t.Label, err)
			}
			if len(delays) != *events {
				log.Fatalf("ssebench: %s: got %d events; want %d", t.Label, len(delays), *events)
			}
			if s < *warmup {
				continue
			}
			r := results[i]
			if len(pids) > 0 {
				d := must(cli.ReadProcStat(pids...)).Sub(before)
				r.Proc.CPUns += d.CPUns
				r.Proc.RunQueueNs += d.RunQueueNs
			}
			r.Streams++
			r.Events += len(delays)
			r.WantEvents += *events
			r.MultiReads += multi
			r.TTFBus = append(r.TTFBus, us(ttfb))
			var sd []float64
			for _, d := range delays {
				r.Delaysus = append(r.Delaysus, us(d))
				sd = append(sd, us(d))
			}
			r.StreamP99us = append(r.StreamP99us, cli.Percentile(sd, 99))
		}
	}
	for _, r := range results {
		d := append([]float64(nil), r.Delaysus...)
		r.DelayP50us = cli.Percentile(d, 50)
		r.DelayP90us = cli.Percentile(d, 90)
		r.DelayP99us = cli.Percentile(d, 99)
		r.DelayMaxus = cli.Percentile(d, 100)
		t := append([]float64(nil), r.TTFBus...)
		r.TTFBp50us = cli.Percentile(t, 50)
		r.TTFBMaxus = cli.Percentile(t, 100)
		fmt.Printf("%-8s events %d/%d  delay p50 %.0fµs p99 %.0fµs max %.0fµs  ttfb p50 %.0fµs  multi-event reads %d\n",
			r.Label, r.Events, r.WantEvents, r.DelayP50us, r.DelayP99us, r.DelayMaxus, r.TTFBp50us, r.MultiReads)
	}
	if err := cli.WriteJSON(*out, results); err != nil {
		log.Fatal(err)
	}
}

func must(s cli.ProcStat, err error) cli.ProcStat {
	if err != nil {
		log.Fatalf("ssebench: %v", err)
	}
	return s
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// stream reads one SSE stream and returns its time to first byte, each
// event's delivery delay, and the number of reads that completed more than
// one event.
func stream(client *http.Client, url string, h http.Header) (ttfb time.Duration, delays []time.Duration, multi int, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header = h.Clone()
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, nil, 0, fmt.Errorf("status %s: %s", resp.Status, b)
	}
	buf := make([]byte, 64<<10)
	var pending []byte
	first := true
	for {
		n, rerr := resp.Body.Read(buf)
		now := time.Now()
		if n > 0 {
			if first {
				ttfb, first = now.Sub(start), false
			}
			pending = append(pending, buf[:n]...)
			completed := 0
			for {
				i := bytes.Index(pending, []byte("\n\n"))
				if i < 0 {
					break
				}
				ev := pending[:i]
				pending = pending[i+2:]
				sent, perr := sentNs(ev)
				if perr != nil {
					return 0, nil, 0, perr
				}
				delays = append(delays, now.Sub(time.Unix(0, sent)))
				completed++
			}
			if completed > 1 {
				multi++
			}
		}
		if rerr == io.EOF {
			return ttfb, delays, multi, nil
		}
		if rerr != nil {
			return 0, nil, 0, rerr
		}
	}
}

// sentNs extracts sent_ns from `…"sent_ns":123}`.
func sentNs(ev []byte) (int64, error) {
	const key = `"sent_ns":`
	i := bytes.Index(ev, []byte(key))
	if i < 0 {
		return 0, fmt.Errorf("event without sent_ns: %q", ev)
	}
	rest := ev[i+len(key):]
	j := bytes.IndexByte(rest, '}')
	if j < 0 {
		return 0, fmt.Errorf("malformed event: %q", ev)
	}
	return strconv.ParseInt(string(rest[:j]), 10, 64)
}
