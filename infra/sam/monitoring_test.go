package sam_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keywaygw/keyway/shared/metrics"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// TestDashboardAndAlarms pins the monitoring part of the stack: the
// dashboard's body is JSON once !Sub has run, shows every panel the
// operator's guide describes, reads only metrics the gateway's EMF lines
// emit; each alarm exists and notifies AlarmTopicArn only when one is given.
func TestDashboardAndAlarms(t *testing.T) {
	tpl := loadTemplate(t)
	dash := props[struct {
		DashboardBody yaml.Node `yaml:"DashboardBody"`
	}](t, tpl, "GatewayDashboard")
	if tpl.Resources["GatewayDashboard"].Type != "AWS::CloudWatch::Dashboard" {
		t.Fatalf("GatewayDashboard is %s", tpl.Resources["GatewayDashboard"].Type)
	}
	if dash.DashboardBody.Tag != "!Sub" {
		t.Fatalf("DashboardBody tag %q; want !Sub", dash.DashboardBody.Tag)
	}
	// What !Sub would do, with stand-in values.
	body := regexp.MustCompile(`\$\{[A-Za-z0-9:.]+\}`).ReplaceAllString(dash.DashboardBody.Value, "1")
	var d struct {
		Widgets []struct {
			Type       string `json:"type"`
			Properties struct {
				Title   string  `json:"title"`
				Metrics [][]any `json:"metrics"`
				Alarms  []string
			} `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("DashboardBody is not JSON after substitution: %v", err)
	}
	var titles []string
	emitted := emittedSeries(t)
	search := regexp.MustCompile(`SEARCH\('\{` + metrics.EMFNamespace + `,([^}]*)\} MetricName="(\w+)"`)
	for _, w := range d.Widgets {
		titles = append(titles, strings.ToLower(w.Properties.Title))
		for _, m := range w.Properties.Metrics {
			var series []string
			switch first := m[0].(type) {
			case string: // [namespace, metric, dim, value, …, {options}]; "..." repeats the row above
				if first != metrics.EMFNamespace || len(m) < 2 {
					continue
				}
				name, _ := m[1].(string)
				var dims []string
				for i := 2; i+1 < len(m); i += 2 {
					if k, ok := m[i].(string); ok {
						dims = append(dims, k)
					}
				}
				series = append(series, seriesKey(name, dims))
			case map[string]any: // {"expression": "SEARCH('{Keyway,Dim,…} MetricName=\"…\"', …)"}
				expr, _ := first["expression"].(string)
				for _, sm := range search.FindAllStringSubmatch(expr, -1) {
					series = append(series, seriesKey(sm[2], strings.Split(sm[1], ",")))
				}
				if series == nil && strings.Contains(expr, "{"+metrics.EMFNamespace+",") {
					t.Errorf("widget %q: cannot read the Keyway metric of %q", w.Properties.Title, expr)
				}
			}
			for _, s := range series {
				if !emitted[s] {
					t.Errorf("widget %q reads Keyway %s, which no access line emits (emitted: %v)", w.Properties.Title, s, emitted)
				}
			}
		}
	}
	all := strings.Join(titles, " | ")
	for _, want := range []string{"requests", "5xx", "latency p50 / p99", "time to first byte", "tokens", "spend",
		"denials by reason", "lambda duration", "concurrency", "throttles", "dynamodb throttles"} {
		if !strings.Contains(all, want) {
			t.Errorf("dashboard has no %q panel (titles: %s)", want, all)
		}
	}

	alarms := []string{"ErrorRateAlarm", "LatencyAlarm", "LambdaErrorsAlarm", "LambdaThrottlesAlarm", "DynamoDBThrottlesAlarm"}
	for _, name := range alarms {
		r, ok := tpl.Resources[name]
		if !ok || r.Type != "AWS::CloudWatch::Alarm" {
			t.Errorf("no alarm %s", name)
			continue
		}
		for _, m := range alarmMetrics(t, tpl, name) {
			if m.Namespace == metrics.EMFNamespace && !emitted[seriesKey(m.MetricName, m.dims())] {
				t.Errorf("%s watches Keyway %s, which no access line emits", name, seriesKey(m.MetricName, m.dims()))
			}
		}
		a := props[struct {
			AlarmActions yaml.Node `yaml:"AlarmActions"`
		}](t, tpl, name)
		if a.AlarmActions.Tag != "!If" || len(a.AlarmActions.Content) != 3 || a.AlarmActions.Content[0].Value != "HasAlarmTopic" {
			t.Errorf("%s: AlarmActions should be !If [HasAlarmTopic, [AlarmTopicArn], NoValue]", name)
		}
		if !strings.Contains(dash.DashboardBody.Value, "${"+name+".Arn}") {
			t.Errorf("the dashboard's alarm panel does not show %s", name)
		}
	}

	raw, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	var params struct {
		Parameters map[string]struct {
			Default any `yaml:"Default"`
		} `yaml:"Parameters"`
		Conditions map[string]yaml.Node `yaml:"Conditions"`
	}
	if err := yaml.Unmarshal(raw, &params); err != nil {
		t.Fatal(err)
	}
	if p, ok := params.Parameters["AlarmTopicArn"]; !ok || p.Default != "" {
		t.Errorf("AlarmTopicArn parameter missing or not optional (default %v)", p.Default)
	}
	if _, ok := params.Conditions["HasAlarmTopic"]; !ok {
		t.Errorf("no HasAlarmTopic condition")
	}
}

// seriesKey names a metric with its dimension set: "Requests[Service StatusClass]".
func seriesKey(metric string, dims []string) string {
	dims = slices.Clone(dims)
	slices.Sort(dims)
	return metric + "[" + strings.Join(dims, " ") + "]"
}

// emittedSeries is every metric and dimension set an access line can carry,
// read from real EMF lines (a line with every optional member, and a
// refusal's).
func emittedSeries(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, e := range []*reqlog.Entry{
		{Route: "pass_through", Endpoint: "/v1/x", InputTokens: 1, OutputTokens: 1, CostNanos: 1, UpstreamTTFB: time.Millisecond},
		{Route: "pass_through", Endpoint: "/v1/x", Denied: reqlog.DenyRate},
	} {
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "request",
			metrics.EMF(e, 200, time.Millisecond, time.Now())...)
		doc, err := metrics.CheckEMF(buf.Bytes())
		if err != nil {
			t.Fatalf("EMF line: %v", err)
		}
		var meta struct {
			CloudWatchMetrics []struct {
				Dimensions [][]string
				Metrics    []struct{ Name string }
			}
		}
		raw, _ := json.Marshal(doc["_aws"])
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
		for _, d := range meta.CloudWatchMetrics {
			for _, dims := range d.Dimensions {
				for _, m := range d.Metrics {
					out[seriesKey(m.Name, dims)] = true
				}
			}
		}
	}
	return out
}

// alarmMetric is one metric an alarm watches.
type alarmMetric struct {
	Namespace  string `yaml:"Namespace"`
	MetricName string `yaml:"MetricName"`
	Dimensions []struct {
		Name string `yaml:"Name"`
	} `yaml:"Dimensions"`
}

func (m alarmMetric) dims() []string {
	var out []string
	for _, d := range m.Dimensions {
		out = append(out, d.Name)
	}
	return out
}

// alarmMetrics is the metric an alarm watches, or those of its metric math.
func alarmMetrics(t *testing.T, tpl template, name string) []alarmMetric {
	a := props[struct {
		alarmMetric `yaml:",inline"`
		Metrics     []struct {
			MetricStat struct {
				Metric alarmMetric `yaml:"Metric"`
			} `yaml:"MetricStat"`
		} `yaml:"Metrics"`
	}](t, tpl, name)
	out := []alarmMetric{a.alarmMetric}
	for _, m := range a.Metrics {
		out = append(out, m.MetricStat.Metric)
	}
	return out
}
