package govern

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/usage"
)

// MaxInspectBytes is the largest request body read before forwarding (to
// add include_usage or to estimate a reservation from max_tokens). A larger
// body is forwarded untouched, streaming, and the estimate falls back to
// DefaultReserveOutputTokens.
const MaxInspectBytes = 1 << 20

// DefaultReserveOutputTokens is the output a reservation assumes when the
// request names no max_tokens.
const DefaultReserveOutputTokens = 4096

// inspected is what the governor learned from, or did to, a request.
type inspected struct {
	r        *http.Request
	injected bool         // include_usage was added: strip the usage chunk
	reserve  ledger.Nanos // held against budgets until settle
	// estimate is the request's expected cost on a token-priced endpoint
	// (cost_per_request plus the token estimate, or budget_reservation):
	// the least a successful response whose usage never arrived is
	// charged (a cut stream, an oversized body). 0 elsewhere.
	estimate ledger.Nanos
}

// inspect reads the request body (JSON, at most MaxInspectBytes) only when
// something needs it: the include_usage injection on usage: openai
// endpoints, or the cost estimate of a token-priced endpoint (from
// max_tokens and n). Everything else passes untouched and streaming.
func inspect(r *http.Request, ep *config.Endpoint, parties []ledger.Party) inspected {
	out := inspected{r: r}
	m := &ep.Metering
	budgeted := false
	for _, p := range parties {
		budgeted = budgeted || p.Limits.MaxBudget != nil
	}
	flat := ledger.FromDollars(ep.CostPerRequest)
	wantInject := m.InjectStreamUsage && m.Usage == usage.FormatOpenAI && r.Method == http.MethodPost &&
		(strings.HasSuffix(r.URL.Path, "/chat/completions") || strings.HasSuffix(r.URL.Path, "/completions"))
	tokenPriced := m.TokenPriced() && m.Usage != usage.FormatNone
	wantEstimate := tokenPriced && m.BudgetReservation == nil
	if m.BudgetReservation != nil {
		out.estimate = flat + ledger.FromDollars(*m.BudgetReservation)
	}
	var body []byte
	ok := false
	if wantInject || wantEstimate {
		body, ok = readSmallJSON(r)
	}
	if wantEstimate {
		out.estimate = flat + estimate(m, body, ok, r.ContentLength)
	}
	switch {
	case budgeted && tokenPriced:
		out.reserve = out.estimate
	case budgeted:
		out.reserve = flat // flat-priced: exact
	}
	if !ok {
		return out
	}
	if wantInject {
		if nb, injected := usage.InjectStreamUsage(body); injected {
			body, out.injected = nb, true
		}
	}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	r2.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r2.Header.Del("Transfer-Encoding")
	out.r = r2
	return out
}

// readSmallJSON reads a JSON request body of at most MaxInspectBytes. When
// the body is not JSON or is larger, r.Body is left able to deliver every
// byte (what was read is put back in front) and ok is false.
func readSmallJSON(r *http.Request) (body []byte, ok bool) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength > MaxInspectBytes {
		return nil, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, MaxInspectBytes+1))
	if err != nil || len(buf) > MaxInspectBytes {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		return nil, false
	}
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(buf))
	return buf, true
}

// estimate is the token part of a reservation: the prompt at about one
// token per 4 bytes of body (an over-estimate for JSON), plus max_tokens
// (max_completion_tokens, max_output_tokens) or DefaultReserveOutputTokens
// for each of the n (or best_of) choices asked for, at the endpoint's
// highest prices.
func estimate(m *config.Metering, body []byte, ok bool, contentLength int64) ledger.Nanos {
	inTokens := contentLength / 4
	outTokens := int64(DefaultReserveOutputTokens)
	if ok {
		inTokens = int64(len(body)) / 4
		var req struct {
			MaxTokens           *int64 `json:"max_tokens"`
			MaxCompletionTokens *int64 `json:"max_completion_tokens"`
			MaxOutputTokens     *int64 `json:"max_output_tokens"`
			N                   *int64 `json:"n"`
			BestOf              *int64 `json:"best_of"`
		}
		if json.Unmarshal(body, &req) == nil {
			for _, v := range []*int64{req.MaxTokens, req.MaxCompletionTokens, req.MaxOutputTokens} {
				if v != nil && *v > 0 && *v < 10_000_000 {
					outTokens = *v
					break
				}
			}
			choices := int64(1)
			for _, v := range []*int64{req.N, req.BestOf} {
				if v != nil && *v > choices {
					choices = min(*v, 1024)
				}
			}
			outTokens *= choices
		}
	}
	if inTokens < 0 {
		inTokens = 0
	}
	p := m.MaxPrice()
	return ledger.FromDollars(float64(inTokens)*p.InputCostPerToken + float64(outTokens)*p.OutputCostPerToken)
}
