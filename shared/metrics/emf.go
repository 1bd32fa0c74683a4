package metrics

import (
	"log/slog"
	"time"

	"github.com/keywaygw/keyway/shared/reqlog"
)

// EMF constants: the CloudWatch namespace, and the service dimension's value,
// a constant so that one dimension set gives gateway-wide totals.
const (
	EMFNamespace = "Keyway"
	EMFService   = "keyway"
)

// EMF dimension keys, top-level members of the access line.
const (
	DimService     = "Service"
	DimEndpoint    = "Endpoint"
	DimStatusClass = "StatusClass"
	DimDenyReason  = "DenyReason"
)

// EMF metric names (top-level members of the access line). The mapping to
// the OpenTelemetry GenAI semantic conventions is in docs/operations.md.
const (
	MetricRequests     = "Requests"
	MetricLatency      = "Latency"
	MetricTTFB         = "TimeToFirstByte"
	MetricInputTokens  = "InputTokens"
	MetricOutputTokens = "OutputTokens"
	MetricCost         = "Cost"
	MetricDenied       = "Denied"
)

// emfMetadata is the _aws member (CloudWatch embedded metric format
// specification: Timestamp in epoch milliseconds and the metric directives).
type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// EMF returns the members that make one access-log line an EMF document as
// well: the _aws metadata, the dimension values and the metric values. It
// is one line per request, written by the log handler the gateway already
// uses; CloudWatch Logs extracts the metrics, so there are no API calls.
//
// Dimension sets (few, with bounded values): [Service] for totals,
// [Service, StatusClass] for error rates, [Service, Endpoint] per configured
// endpoint (or the route class for non-pass-through routes), and for a
// refusal [Service, DenyReason].
func EMF(e *reqlog.Entry, status int, d time.Duration, now time.Time) []slog.Attr {
	endpoint := e.Endpoint
	if endpoint == "" {
		endpoint = routeLabel(e.Route)
	}
	if len(endpoint) > maxLabelLen {
		endpoint = Other
	}
	denied, optional := 0, 0
	if e.Denied != "" {
		denied, optional = 1, emfDenied
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String(DimService, EMFService),
		slog.String(DimEndpoint, endpoint),
		slog.String(DimStatusClass, StatusClass(status)),
		slog.Int(MetricRequests, 1),
		slog.Float64(MetricLatency, float64(d.Microseconds())/1000),
		slog.Int(MetricDenied, denied),
	)
	if e.UpstreamTTFB > 0 {
		attrs = append(attrs, slog.Float64(MetricTTFB, float64(e.UpstreamTTFB.Microseconds())/1000))
		optional |= emfTTFB
	}
	if e.InputTokens > 0 || e.OutputTokens > 0 {
		attrs = append(attrs, slog.Int64(MetricInputTokens, e.InputTokens), slog.Int64(MetricOutputTokens, e.OutputTokens))
		optional |= emfTokens
	}
	if e.CostNanos > 0 {
		attrs = append(attrs, slog.Float64(MetricCost, float64(e.CostNanos)/1e9))
		optional |= emfCost
	}
	if denied == 1 {
		attrs = append(attrs, slog.String(DimDenyReason, DenyReason(e.Denied)))
	}
	meta := emfMetadata{Timestamp: now.UnixMilli(), CloudWatchMetrics: emfDirectives[optional]}
	return append(attrs, slog.Any("_aws", meta))
}

// Which optional members a line carries (a bit set indexing emfDirectives).
const (
	emfTTFB = 1 << iota
	emfTokens
	emfCost
	emfDenied
)

// emfDirectives are the _aws.CloudWatchMetrics of a line, by the optional
// members it carries: every line uses one of these sixteen, so they are
// built once rather than per request. Read-only after init.
var emfDirectives = func() (all [16][]emfDirective) {
	for optional := range all {
		main := emfDirective{
			Namespace:  EMFNamespace,
			Dimensions: [][]string{{DimService}, {DimService, DimStatusClass}, {DimService, DimEndpoint}},
			Metrics:    []emfMetric{{MetricRequests, "Count"}, {MetricLatency, "Milliseconds"}, {MetricDenied, "Count"}},
		}
		if optional&emfTTFB != 0 {
			main.Metrics = append(main.Metrics, emfMetric{MetricTTFB, "Milliseconds"})
		}
		if optional&emfTokens != 0 {
			main.Metrics = append(main.Metrics, emfMetric{MetricInputTokens, "Count"}, emfMetric{MetricOutputTokens, "Count"})
		}
		if optional&emfCost != 0 {
			main.Metrics = append(main.Metrics, emfMetric{MetricCost, "None"})
		}
		all[optional] = []emfDirective{main}
		if optional&emfDenied != 0 {
			all[optional] = append(all[optional], emfDirective{
				Namespace:  EMFNamespace,
				Dimensions: [][]string{{DimService, DimDenyReason}},
				Metrics:    []emfMetric{{MetricDenied, "Count"}},
			})
		}
	}
	return all
}()
