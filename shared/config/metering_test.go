package config

import (
	"reflect"
	"testing"

	"github.com/keywaygw/keyway/shared/usage"
)

func TestMeteringConfig(t *testing.T) {
	doc := `general_settings:
  pass_through_endpoints:
    - path: /openai
      target: https://api.openai.com
      keyway:
        usage: openai
        input_cost_per_token: 0.0000025
        output_cost_per_token: 0.00001
        model_costs:
          gpt-4o-mini: {input_cost_per_token: 0.00000015, output_cost_per_token: 0.0000006, cache_read_input_token_cost: 0.000000075}
        budget_reservation: 0.25
    - path: /anthropic
      target: https://api.anthropic.com
      keyway: {usage: anthropic}
    - path: /plain
      target: https://api.example.com
    - path: /noinject
      target: https://api.openai.com
      keyway: {usage: openai, inject_stream_usage: false}
`
	cfg := mustParse(t, doc, mapResolver{})
	oa, an, plain, noinj := cfg.Endpoints[0].Metering, cfg.Endpoints[1].Metering, cfg.Endpoints[2].Metering, cfg.Endpoints[3].Metering
	cached := 0.000000075
	mini := TokenPrices{InputCostPerToken: 0.00000015, OutputCostPerToken: 0.0000006, CacheReadInputTokenCost: &cached}
	checks := []struct {
		name      string
		got, want any
	}{
		{"openai usage", oa.Usage, usage.FormatOpenAI},
		{"openai injects by default", oa.InjectStreamUsage, true},
		{"opt-out", noinj.InjectStreamUsage, false},
		{"anthropic never injects", an.InjectStreamUsage, false},
		{"default usage is auto", plain.Usage, usage.FormatAuto},
		{"plain is not token priced", plain.TokenPriced(), false},
		{"openai is token priced", oa.TokenPriced(), true},
		{"reservation", *oa.BudgetReservation, 0.25},
		{"exact model", oa.Price("gpt-4o-mini"), mini},
		{"dated snapshot", oa.Price("gpt-4o-mini-2024-07-18"), mini},
		{"compact date", oa.Price("gpt-4o-mini-20240718"), mini},
		{"unknown model → default", oa.Price("gpt-4o"), TokenPrices{InputCostPerToken: 0.0000025, OutputCostPerToken: 0.00001}},
		{"prefix is not a match", oa.Price("gpt-4o-mini-high"), TokenPrices{InputCostPerToken: 0.0000025, OutputCostPerToken: 0.00001}},
		{"max price", oa.MaxPrice(), TokenPrices{InputCostPerToken: 0.0000025, OutputCostPerToken: 0.00001}},
		{"max price from model_costs", (&Metering{Prices: TokenPrices{InputCostPerToken: 2, OutputCostPerToken: 1},
			ModelCosts: map[string]TokenPrices{"a": {InputCostPerToken: 1, OutputCostPerToken: 3}}}).MaxPrice(),
			TokenPrices{InputCostPerToken: 2, OutputCostPerToken: 3}},
		{"priced name of a snapshot", oa.PricedName("gpt-4o-mini-2024-07-18"), "gpt-4o-mini"},
		{"priced name of an unknown model", oa.PricedName("gpt-4o"), ""},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v; want %#v", c.name, c.got, c.want)
		}
	}
}
