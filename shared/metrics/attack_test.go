package metrics_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/metrics"
	"github.com/keywaygw/keyway/shared/reqlog"
)

// TestAttackModelLabelCapIsFirstComeFirstServed: the model label admits
// the first MaxModels (100) distinct names a process sees, for its whole
// life, and folds every later name into "other". The names come from
// upstream answers (and, with echoing upstreams, from the caller's own
// request body). One internal_user key holder — or a malicious upstream —
// sending 100 cheap requests with junk model names right after a deploy
// claims every slot, so the operator's real models (gpt-4o below) are
// invisible in keyway_tokens_total until the next restart. The cap bounds
// cardinality but lets an attacker choose which series exist; prefer the
// configured model_costs names as the admitted set (others → "other").
func TestAttackModelLabelCapIsFirstComeFirstServed(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntime: true})
	for i := range metrics.DefaultMaxModels {
		m.Observe(&reqlog.Entry{Route: "pass_through", Endpoint: "/v1/chat",
			Model: fmt.Sprintf("junk-%d", i), InputTokens: 1}, 200, time.Millisecond)
	}
	// gpt-4o is priced by the endpoint (model_costs): govern marks it so.
	m.Observe(&reqlog.Entry{Route: "pass_through", Endpoint: "/v1/chat",
		Model: "gpt-4o-2024-08-06", PricedModel: "gpt-4o", InputTokens: 1000}, 200, time.Millisecond)

	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "keyway_tokens_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "model" && l.GetValue() == "gpt-4o" {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("after %d junk model names, the real model gpt-4o has no series (folded into %q): attacker-chosen names own the label set", metrics.DefaultMaxModels, metrics.Other)
	}
}
