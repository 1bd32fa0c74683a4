package config

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/keywaygw/keyway/shared/usage"
)

// Metering is an endpoint's `keyway:` mapping: how usage is read from its
// responses and how a call is priced. LiteLLM ignores an endpoint's keyway:
// mapping, so one config file still serves both.
type Metering struct {
	// Usage selects the usage parser: auto (default), openai, anthropic,
	// none.
	Usage usage.Format
	// InjectStreamUsage adds stream_options.include_usage to streamed
	// OpenAI chat/completions requests that lack it, and removes the
	// usage-only chunk from what the client receives. Only on usage:
	// openai endpoints; default true there.
	InjectStreamUsage bool
	// Prices is the default per-token pricing; ModelCosts override it for
	// the model the response names (see Price).
	Prices     TokenPrices
	ModelCosts map[string]TokenPrices
	// BudgetReservation is the dollars reserved against budgets before a
	// call on a token-priced endpoint; nil means estimate it from the
	// request's max_tokens and the prices.
	BudgetReservation *float64
}

// TokenPrices are dollars per token, with LiteLLM's names.
type TokenPrices struct {
	InputCostPerToken       float64
	OutputCostPerToken      float64
	CacheReadInputTokenCost *float64 // nil: cached input tokens cost InputCostPerToken
}

// TokenPriced reports whether any token price is set, i.e. whether a
// request's cost depends on its usage.
func (m *Metering) TokenPriced() bool {
	return m.Prices != (TokenPrices{}) || len(m.ModelCosts) > 0
}

// datedSuffix is the date OpenAI and Anthropic append to a model snapshot:
// gpt-4o-2024-08-06, claude-3-5-sonnet-20241022.
var datedSuffix = regexp.MustCompile(`-(\d{4}-\d{2}-\d{2}|\d{8})$`)

// PricedName is the model_costs name that model matches (exact, or
// without its date suffix), or "".
func (m *Metering) PricedName(model string) string {
	if _, ok := m.ModelCosts[model]; ok {
		return model
	}
	if base := datedSuffix.ReplaceAllString(model, ""); base != model {
		if _, ok := m.ModelCosts[base]; ok {
			return base
		}
	}
	return ""
}

// Price returns the prices for the model a response named: model_costs'
// entry for the exact name, else for the name without its date suffix
// (gpt-4o-2024-08-06 → gpt-4o), else the endpoint's default prices.
func (m *Metering) Price(model string) TokenPrices {
	if name := m.PricedName(model); name != "" {
		return m.ModelCosts[name]
	}
	return m.Prices
}

// MaxPrice is the largest per-token price on the endpoint, for reserving a
// budget estimate before the model and usage are known.
func (m *Metering) MaxPrice() TokenPrices {
	out := m.Prices
	for _, p := range m.ModelCosts {
		out.InputCostPerToken = math.Max(out.InputCostPerToken, p.InputCostPerToken)
		out.OutputCostPerToken = math.Max(out.OutputCostPerToken, p.OutputCostPerToken)
	}
	return out
}

var meteringFields = []string{"usage", "inject_stream_usage", "input_cost_per_token", "output_cost_per_token",
	"cache_read_input_token_cost", "model_costs", "budget_reservation"}

var priceFields = []string{"input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost"}

// MaxPricePerToken bounds a configured token price: $1000 per token is far
// beyond any real price, and keeps every cost representable in nano-dollars.
const MaxPricePerToken = 1000.0

// metering reads an endpoint's keyway: mapping into m.
func (p *parser) metering(name string, n *yaml.Node, m *Metering) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.addf("%s: keyway must be a mapping (usage, prices, model_costs…), got %s", name, describe(n))
		return
	}
	injectSet := false
	for _, f := range p.fields(name+": keyway", n) {
		if isNull(f.v) {
			continue
		}
		field := name + ": keyway." + f.key
		switch f.key {
		case "usage":
			if s, ok := p.str(field, f.v); ok {
				switch f := usage.Format(strings.ToLower(s)); f {
				case usage.FormatAuto, usage.FormatOpenAI, usage.FormatAnthropic, usage.FormatNone:
					m.Usage = f
				default:
					p.addf("%s must be one of auto, openai, anthropic, none; got %q", field, truncate(s))
				}
			}
		case "inject_stream_usage":
			m.InjectStreamUsage, injectSet = p.boolean(field, f.v)
		case "budget_reservation":
			if v, ok := p.price(field, f.v, 1e6); ok {
				m.BudgetReservation = &v
			}
		case "model_costs":
			p.modelCosts(field, f.v, m)
		case "input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost":
			p.priceField(field, f.key, f.v, &m.Prices)
		default:
			p.addf("%s: unknown field %q (line %d)%s", name+": keyway", f.key, f.k.Line, suggest(f.key, meteringFields))
		}
	}
	if !injectSet {
		m.InjectStreamUsage = m.Usage == usage.FormatOpenAI
	} else if m.InjectStreamUsage && m.Usage != usage.FormatOpenAI {
		p.addf("%s: keyway.inject_stream_usage only applies to usage: openai endpoints (this one is %s)", name, m.Usage)
	}
}

// modelCosts reads model_costs: {MODEL: {input_cost_per_token, output_cost_per_token}}.
func (p *parser) modelCosts(field string, n *yaml.Node, m *Metering) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		p.addf("%s must be a mapping of model name to prices, got %s", field, describe(n))
		return
	}
	m.ModelCosts = map[string]TokenPrices{}
	for _, f := range p.fields(field, n) {
		where := fmt.Sprintf("%s[%q]", field, truncate(f.key))
		v := deref(f.v)
		if f.key == "" {
			p.addf("%s: model name must not be empty", field)
			continue
		}
		if v.Kind != yaml.MappingNode {
			p.addf("%s must be a mapping with input_cost_per_token and output_cost_per_token, got %s", where, describe(v))
			continue
		}
		var tp TokenPrices
		seen := 0
		for _, pf := range p.fields(where, v) {
			if isNull(pf.v) {
				continue
			}
			if !slices.Contains(priceFields, pf.key) {
				p.addf("%s: unknown field %q (line %d)%s", where, pf.key, pf.k.Line, suggest(pf.key, priceFields))
				continue
			}
			seen++
			p.priceField(where+"."+pf.key, pf.key, pf.v, &tp)
		}
		if seen == 0 {
			p.addf("%s has no prices: set input_cost_per_token and/or output_cost_per_token", where)
			continue
		}
		m.ModelCosts[f.key] = tp
	}
}

func (p *parser) priceField(field, key string, n *yaml.Node, tp *TokenPrices) {
	v, ok := p.price(field, n, MaxPricePerToken)
	if !ok {
		return
	}
	switch key {
	case "input_cost_per_token":
		tp.InputCostPerToken = v
	case "output_cost_per_token":
		tp.OutputCostPerToken = v
	case "cache_read_input_token_cost":
		tp.CacheReadInputTokenCost = &v
	}
}

// price reads a dollar amount: a finite number in [0, max].
func (p *parser) price(field string, n *yaml.Node, max float64) (float64, bool) {
	v, ok := p.number(field, n)
	if !ok {
		return 0, false
	}
	if math.IsNaN(v) || v < 0 || v > max {
		p.addf("%s must be a number of dollars from 0 to %g, got %v", field, max, v)
		return 0, false
	}
	return v, true
}
