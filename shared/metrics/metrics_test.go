package metrics_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keywaygw/keyway/shared/metrics"
	"github.com/keywaygw/keyway/shared/reqlog"
)

func TestObserveCountsExactly(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntime: true})
	ok := &reqlog.Entry{Route: "pass_through", Endpoint: "/v1/chat", Model: "gpt-4o",
		InputTokens: 10, OutputTokens: 32, CostNanos: 500_000_000, UpstreamTTFB: 120 * time.Millisecond}
	for range 3 {
		m.Observe(ok, 200, 250*time.Millisecond)
	}
	m.Observe(&reqlog.Entry{Route: "pass_through", Endpoint: "/v1/chat", Denied: reqlog.DenyNoKey}, 401, time.Millisecond)
	m.Observe(&reqlog.Entry{Route: "pass_through", Endpoint: "/v1/chat", Denied: reqlog.DenyBudget}, 429, time.Millisecond)
	m.Observe(&reqlog.Entry{Route: "admin", Denied: reqlog.DenyStore, StoreOp: "key_lookup"}, 503, time.Millisecond)
	m.Observe(&reqlog.Entry{Route: "admin", Denied: "something new"}, 403, time.Millisecond)
	m.ConfigReload(metrics.ReloadSuccess)
	m.ConfigReload(metrics.ReloadFailure)
	m.ConfigReload(metrics.ReloadFailure)

	want := fmt.Sprintf(`
# HELP keyway_requests_total Requests answered, by route class, configured endpoint path and status code.
# TYPE keyway_requests_total counter
keyway_requests_total{code="200",endpoint="/v1/chat",route="pass_through"} 3
keyway_requests_total{code="401",endpoint="/v1/chat",route="pass_through"} 1
keyway_requests_total{code="403",endpoint="",route="admin"} 1
keyway_requests_total{code="429",endpoint="/v1/chat",route="pass_through"} 1
keyway_requests_total{code="503",endpoint="",route="admin"} 1
# HELP keyway_tokens_total Metered tokens, by endpoint, model (capped; the rest is "other") and type (input or output).
# TYPE keyway_tokens_total counter
keyway_tokens_total{endpoint="/v1/chat",model="gpt-4o",type="input"} 30
keyway_tokens_total{endpoint="/v1/chat",model="gpt-4o",type="output"} 96
# HELP keyway_spend_dollars_total Metered cost charged to keys, in dollars, by endpoint.
# TYPE keyway_spend_dollars_total counter
keyway_spend_dollars_total{endpoint="/v1/chat"} %v
# HELP keyway_store_errors_total Key store errors, by operation (answered 503, fail closed; a failed settle after the response left its charge unrecorded).
# TYPE keyway_store_errors_total counter
keyway_store_errors_total{operation="key_lookup"} 1
# HELP keyway_config_reloads_total Background config reloads, by result (success, unchanged, failure).
# TYPE keyway_config_reloads_total counter
keyway_config_reloads_total{result="failure"} 2
keyway_config_reloads_total{result="success"} 1
keyway_config_reloads_total{result="unchanged"} 0
`, 1.5)
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"keyway_requests_total", "keyway_tokens_total", "keyway_spend_dollars_total",
		"keyway_store_errors_total", "keyway_config_reloads_total"); err != nil {
		t.Error(err)
	}
	denied := map[string]float64{reqlog.DenyNoKey: 1, reqlog.DenyBudget: 1, reqlog.DenyStore: 1, metrics.Other: 1, reqlog.DenyExpired: 0}
	for reason, want := range denied {
		if got := deniedCount(t, m, reason); got != want {
			t.Errorf("keyway_denied_total{reason=%q} = %v; want %v", reason, got, want)
		}
	}
	if got := histCount(t, m, "keyway_request_duration_seconds", `endpoint="/v1/chat"`); got != 5 {
		t.Errorf("request duration observations on /v1/chat = %d; want 5", got)
	}
	if got := histCount(t, m, "keyway_upstream_time_to_first_byte_seconds", `endpoint="/v1/chat"`); got != 3 {
		t.Errorf("ttfb observations = %d; want 3 (only requests whose upstream answered)", got)
	}
}

func deniedCount(t *testing.T, m *metrics.Metrics, reason string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keyway_denied_total" {
			continue
		}
		for _, mm := range mf.GetMetric() {
			if mm.GetLabel()[0].GetValue() == reason {
				return mm.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func histCount(t *testing.T, m *metrics.Metrics, name, label string) uint64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mm := range mf.GetMetric() {
			for _, l := range mm.GetLabel() {
				if fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()) == label {
					n += mm.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// TestLabelsStayBounded sends 10,000 distinct model names and endpoints:
// the series count stops at the caps, and the rest is counted as "other".
func TestLabelsStayBounded(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntime: true, MaxModels: 50, MaxEndpoints: 20})
	for i := range 10_000 {
		m.Observe(&reqlog.Entry{Route: "pass_through", Endpoint: fmt.Sprintf("/ep%d", i%40),
			Model: fmt.Sprintf("model-%d", i), InputTokens: 1, OutputTokens: 1}, 200+i%400, time.Millisecond)
	}
	m.Observe(&reqlog.Entry{Route: "pass_through", Endpoint: "/ep0", Model: strings.Repeat("m", 1000), InputTokens: 1}, 999, time.Millisecond)
	counts := map[string]int{}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var tokens float64
	for _, mf := range mfs {
		counts[mf.GetName()] = len(mf.GetMetric())
		if mf.GetName() == "keyway_tokens_total" {
			for _, mm := range mf.GetMetric() {
				tokens += mm.GetCounter().GetValue()
			}
		}
	}
	// models: 50 + other, × input/output, × at most 21 endpoints.
	if n := counts["keyway_tokens_total"]; n > 51*2*21 {
		t.Errorf("keyway_tokens_total has %d series; want ≤ %d", n, 51*2*21)
	}
	if tokens != 20_001 {
		t.Errorf("tokens summed over series = %v; want 20001 (nothing lost by folding)", tokens)
	}
	// endpoints ≤ 21 × codes ≤ 401 (100..599 + other).
	if n := counts["keyway_request_duration_seconds"]; n > 21 {
		t.Errorf("duration series = %d; want ≤ 21 (20 endpoints + other)", n)
	}
	if n := counts["keyway_upstream_time_to_first_byte_seconds"]; n != 0 {
		t.Errorf("ttfb series = %d; want 0", n)
	}
}

// TestEMF checks one access line against the CloudWatch embedded metric
// format rules: _aws.Timestamp and CloudWatchMetrics, every dimension key and
// metric name a top-level member, ≤ 30 dimensions per set, ≤ 100 metrics.
func TestEMF(t *testing.T) {
	cases := map[string]*reqlog.Entry{
		"metered": {Route: "pass_through", Endpoint: "/v1/chat", Model: "gpt-4o", InputTokens: 7, OutputTokens: 9,
			CostNanos: 2_000_000, UpstreamTTFB: 80 * time.Millisecond},
		"denied": {Route: "pass_through", Endpoint: "/v1/chat", Denied: reqlog.DenyBadKey},
		"admin":  {Route: "admin"},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, nil))
			status := 200
			if e.Denied != "" {
				status = 401
			}
			log.LogAttrs(t.Context(), slog.LevelInfo, "request", metrics.EMF(e, status, 1500*time.Microsecond, time.Now())...)
			if n := strings.Count(strings.TrimSpace(buf.String()), "\n"); n != 0 {
				t.Fatalf("EMF wrote %d lines; want 1", n+1)
			}
			doc := ValidateEMF(t, buf.Bytes())
			if doc["Latency"] != 1.5 || doc["Requests"] != float64(1) {
				t.Errorf("Latency %v, Requests %v; want 1.5 and 1", doc["Latency"], doc["Requests"])
			}
			switch name {
			case "metered":
				if doc["InputTokens"] != float64(7) || doc["OutputTokens"] != float64(9) || doc["Cost"] != 0.002 || doc["TimeToFirstByte"] != float64(80) {
					t.Errorf("metered values %v", doc)
				}
				if doc["Endpoint"] != "/v1/chat" || doc["StatusClass"] != "2xx" {
					t.Errorf("dimensions %v %v", doc["Endpoint"], doc["StatusClass"])
				}
			case "denied":
				if doc["Denied"] != float64(1) || doc["DenyReason"] != reqlog.DenyBadKey || doc["StatusClass"] != "4xx" {
					t.Errorf("denied values %v", doc)
				}
			case "admin":
				if doc["Endpoint"] != "admin" {
					t.Errorf("Endpoint %v; want the route class for non-pass-through routes", doc["Endpoint"])
				}
				if _, ok := doc["InputTokens"]; ok {
					t.Errorf("unmetered line carries InputTokens")
				}
			}
		})
	}
}

// ValidateEMF is metrics.CheckEMF that fails t.
func ValidateEMF(t *testing.T, line []byte) map[string]any {
	t.Helper()
	doc, err := metrics.CheckEMF(line)
	if err != nil {
		t.Fatalf("invalid EMF: %v: %s", err, line)
	}
	return doc
}

func TestCheckEMFRejects(t *testing.T) {
	for name, line := range map[string]string{
		"no _aws":           `{"Requests":1}`,
		"no timestamp":      `{"_aws":{"CloudWatchMetrics":[{"Namespace":"K","Dimensions":[["S"]],"Metrics":[{"Name":"R"}]}]},"S":"x","R":1}`,
		"missing dimension": `{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"K","Dimensions":[["S"]],"Metrics":[{"Name":"R"}]}]},"R":1}`,
		"missing metric":    `{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"K","Dimensions":[["S"]],"Metrics":[{"Name":"R"}]}]},"S":"x"}`,
	} {
		if _, err := metrics.CheckEMF([]byte(line)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestEveryRouteClassIsItsOwnLabel: each route class the gateway logs keeps
// its name as the route label (and as the EMF Endpoint of a request with no
// endpoint); only values outside the set fold into "other".
func TestEveryRouteClassIsItsOwnLabel(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntime: true})
	want := "# HELP keyway_requests_total Requests answered, by route class, configured endpoint path and status code.\n" +
		"# TYPE keyway_requests_total counter\n"
	for _, c := range []string{"admin", "console", "health", "metrics", "other", "pass_through", "unknown"} {
		route := c
		if c == metrics.Other {
			route = "made-up"
		}
		e := &reqlog.Entry{Route: route}
		m.Observe(e, 200, time.Millisecond)
		want += `keyway_requests_total{code="200",endpoint="",route="` + c + `"} 1` + "\n"
		for _, a := range metrics.EMF(e, 200, time.Millisecond, time.Now()) {
			if a.Key == metrics.DimEndpoint && a.Value.String() != c {
				t.Errorf("EMF Endpoint for route %q = %q; want %q", route, a.Value.String(), c)
			}
		}
	}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "keyway_requests_total"); err != nil {
		t.Error(err)
	}
}
