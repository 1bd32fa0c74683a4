package sam_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/keywaygw/keyway/shared/metrics"
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
	emitted := []string{metrics.MetricRequests, metrics.MetricLatency, metrics.MetricTTFB,
		metrics.MetricInputTokens, metrics.MetricOutputTokens, metrics.MetricCost, metrics.MetricDenied}
	for _, w := range d.Widgets {
		titles = append(titles, strings.ToLower(w.Properties.Title))
		for _, m := range w.Properties.Metrics {
			if len(m) >= 2 && m[0] == metrics.EMFNamespace && !slices.Contains(emitted, m[1].(string)) {
				t.Errorf("widget %q reads Keyway/%v, which the gateway never emits", w.Properties.Title, m[1])
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
