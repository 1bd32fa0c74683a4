package govern

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/usage"
)

// ResponseCostHeader is LiteLLM's upstream-reported cost in dollars; when an
// upstream sends it, it outranks the computed cost (as in LiteLLM).
const ResponseCostHeader = "X-Litellm-Response-Cost"

// rateLimitHeaders are the upstream's own rate-limit headers, replaced by
// Keyway's on calls of a limited key (LiteLLM's and OpenAI's names).
var rateLimitHeaders = []string{
	"X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests",
	"X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens",
	"X-Ratelimit-Reset-Requests", "X-Ratelimit-Reset-Tokens",
}

// observer is the proxy.Observer of one request.
type observer struct {
	ep       *config.Endpoint
	inject   bool
	lease    *ledger.Lease
	estimate ledger.Nanos // see inspected.estimate

	responded  bool
	meter      *usage.Meter
	headerCost *float64
	encoded    string // a Content-Encoding the meter cannot read
}

// Outbound asks a metered upstream for an uncompressed response: the
// transport does not decode gzip (bytes reach the client as sent), so a
// compressed body could not be metered.
func (o *observer) Outbound(h http.Header) {
	if o.ep.Metering.Usage != usage.FormatNone {
		h.Del("Accept-Encoding")
	}
}

// Response starts metering and sets Keyway's rate-limit headers.
func (o *observer) Response(res *http.Response) {
	o.responded = true
	if v := res.Header.Get(ResponseCostHeader); v != "" {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= config.MaxCostPerRequest && !math.IsNaN(f) {
			o.headerCost = &f
		}
	}
	o.setRateLimitHeaders(res.Header)
	if o.ep.Metering.Usage == usage.FormatNone {
		return
	}
	if ce := res.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		o.encoded = ce
		return
	}
	o.meter = usage.NewMeter(o.ep.Metering.Usage, res.Header.Get("Content-Type"))
	var r io.Reader = io.TeeReader(res.Body, o.meter)
	if o.inject {
		r = usage.NewUsageChunkFilter(r)
		// The filtered body is shorter than the upstream announced.
		res.ContentLength = -1
		res.Header.Del("Content-Length")
	}
	res.Body = &meteredBody{Reader: r, Closer: res.Body}
}

type meteredBody struct {
	io.Reader
	io.Closer
}

// setRateLimitHeaders replaces the upstream's x-ratelimit-* with Keyway's
// when a party has an rpm or tpm limit: the tightest party's numbers.
func (o *observer) setRateLimitHeaders(h http.Header) {
	if !o.lease.Admitted {
		return
	}
	reqLimit, reqLeft, tokLimit, tokLeft := int64(-1), int64(-1), int64(-1), int64(-1)
	for i, p := range o.lease.Parties {
		var rem ledger.Remaining
		if i < len(o.lease.Remaining) {
			rem = o.lease.Remaining[i]
		}
		if p.Limits.RPM > 0 && (reqLeft < 0 || rem.Requests < reqLeft) {
			reqLimit, reqLeft = p.Limits.RPM, max(rem.Requests, 0)
		}
		if p.Limits.TPM > 0 && (tokLeft < 0 || rem.Tokens < tokLeft) {
			tokLimit, tokLeft = p.Limits.TPM, max(rem.Tokens, 0)
		}
	}
	if reqLimit < 0 && tokLimit < 0 {
		return
	}
	for _, name := range rateLimitHeaders {
		h.Del(name)
	}
	if reqLimit >= 0 {
		h.Set("X-Ratelimit-Limit-Requests", strconv.FormatInt(reqLimit, 10))
		h.Set("X-Ratelimit-Remaining-Requests", strconv.FormatInt(reqLeft, 10))
	}
	if tokLimit >= 0 {
		h.Set("X-Ratelimit-Limit-Tokens", strconv.FormatInt(tokLimit, 10))
		h.Set("X-Ratelimit-Remaining-Tokens", strconv.FormatInt(tokLeft, 10))
	}
}

// metered is what the observer learned: usage, its source, and the cost.
type metered struct {
	u      usage.Usage
	source string
	cost   ledger.Nanos
}

// maxTokens bounds a token count read from a response: no real response
// carries more, and a bound keeps a hostile or broken upstream (or a
// response whose body the caller wrote) from charging a negative or
// wrapped-around amount.
const maxTokens = 1 << 40

func clampTokens(n int64) int64 { return min(max(n, 0), maxTokens) }

// MaxModelBytes bounds the model name an upstream (or a caller, where the
// upstream echoes the request) reports: it goes into the usage record, the
// access line and metrics, and a huge one would push a record past
// DynamoDB's 400 KB item limit (failing the charge) or a log line past
// CloudWatch's 256 KB event limit.
const MaxModelBytes = 256

// result prices the metered usage for a response that ended with status.
// cost = cost_per_request + uncached input tokens × input price + cached
// input tokens × cache price + output tokens × output price, for the model
// the response named; an upstream-reported cost (x-litellm-response-cost)
// replaces it. A response without usage costs cost_per_request and says
// why; on a token-priced endpoint a successful (2xx) response whose usage
// did not arrive whole (a cut stream, an oversized body, a stream that
// never sent its final usage) costs at least the request's estimate, so
// that cutting a response short is never cheaper than letting it finish.
func (o *observer) result(status int) metered {
	m := &o.ep.Metering
	var out metered
	flat := ledger.FromDollars(o.ep.CostPerRequest)
	switch {
	case m.Usage == usage.FormatNone:
		out.source = "none"
	case !o.responded:
		out.source = "missing: no upstream response"
	case o.encoded != "":
		out.source = "missing: response is " + o.encoded + "-encoded"
	default:
		out.u = o.meter.Usage()
		switch {
		case out.u.Found && out.u.Problem != "":
			out.source = out.u.Source + " (partial: " + out.u.Problem + ")"
		case out.u.Found:
			out.source = out.u.Source
		case out.u.Problem != "":
			out.source = "missing: " + out.u.Problem
		default:
			out.source = "missing: no usage in response"
		}
	}
	u := &out.u
	u.Model = ledger.TruncateUTF8(u.Model, MaxModelBytes)
	u.InputTokens, u.OutputTokens = clampTokens(u.InputTokens), clampTokens(u.OutputTokens)
	u.CachedInputTokens = clampTokens(u.CachedInputTokens)
	out.cost = flat
	if u.Found {
		p := m.Price(u.Model)
		cachePrice := p.InputCostPerToken
		if p.CacheReadInputTokenCost != nil {
			cachePrice = *p.CacheReadInputTokenCost
		}
		out.cost += ledger.FromDollars(float64(u.UncachedInputTokens())*p.InputCostPerToken +
			float64(u.CachedInputTokens)*cachePrice +
			float64(u.OutputTokens)*p.OutputCostPerToken)
	}
	if o.headerCost != nil {
		out.cost = ledger.FromDollars(*o.headerCost)
		out.source = "header"
		if u.Found {
			out.source = "header (" + u.Source + " tokens)"
		}
		return out
	}
	incomplete := !u.Found || u.Problem != ""
	if o.estimate > out.cost && incomplete && status >= 200 && status < 300 && m.Usage != usage.FormatNone {
		out.cost = o.estimate
		out.source += "; charged the estimate"
	}
	return out
}
