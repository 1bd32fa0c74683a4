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
	denied := 0
	if e.Denied != "" {
		denied = 1
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
	main := emfDirective{
		Namespace:  EMFNamespace,
		Dimensions: [][]string{{DimService}, {DimService, DimStatusClass}, {DimService, DimEndpoint}},
		Metrics: []emfMetric{
			{MetricRequests, "Count"},
			{MetricLatency, "Milliseconds"},
			{MetricDenied, "Count"},
		},
	}
	if e.UpstreamTTFB > 0 {
		attrs = append(attrs, slog.Float64(MetricTTFB, float64(e.UpstreamTTFB.Microseconds())/1000))
		main.Metrics = append(main.Metrics, emfMetric{MetricTTFB, "Milliseconds"})
	}
	if e.InputTokens > 0 || e.OutputTokens > 0 {
		attrs = append(attrs, slog.Int64(MetricInputTokens, e.InputTokens), slog.Int64(MetricOutputTokens, e.OutputTokens))
		main.Metrics = append(main.Metrics, emfMetric{MetricInputTokens, "Count"}, emfMetric{MetricOutputTokens, "Count"})
	}
	if e.CostNanos > 0 {
		attrs = append(attrs, slog.Float64(MetricCost, float64(e.CostNanos)/1e9))
		main.Metrics = append(main.Metrics, emfMetric{MetricCost, "None"})
	}
	meta := emfMetadata{Timestamp: now.UnixMilli(), CloudWatchMetrics: []emfDirective{main}}
	if denied == 1 {
		attrs = append(attrs, slog.String(DimDenyReason, DenyReason(e.Denied)))
		meta.CloudWatchMetrics = append(meta.CloudWatchMetrics, emfDirective{
			Namespace:  EMFNamespace,
			Dimensions: [][]string{{DimService, DimDenyReason}},
			Metrics:    []emfMetric{{MetricDenied, "Count"}},
		})
	}
	return append(attrs, slog.Any("_aws", meta))
}
