package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestLambdaLimitsAndSpend: under the Lambda emulator, with the real
// bootstrap on DynamoDB (moto), rpm_limit and max_budget refuse with 429
// and Retry-After, and every call's charge is written before its
// invocation returns (the next invocation already sees it).
func TestLambdaLimitsAndSpend(t *testing.T) {
	e := newLambdaEnv(t, "stream", "buffered")
	for _, p := range lambdaPaths {
		t.Run(p.name, func(t *testing.T) {
			gen := func(body string) string {
				r := e.call(t, p, apiRequest{Method: "POST", Path: "/key/generate", Body: []byte(body)}.
					with("Content-Type", "application/json").with(bearer(e.master)...))
				if r.Status != http.StatusOK {
					t.Fatalf("/key/generate: %d %s", r.Status, r.Body)
				}
				return r.json(t)["key"].(string)
			}
			post := apiRequest{Method: "POST", Path: "/v1/ocr/x", Body: []byte(`{}`)}.with("Content-Type", "application/json")
			errType := func(r lambdaResponse) string {
				var env struct{ Error struct{ Type string } }
				json.Unmarshal(r.Body, &env)
				return env.Error.Type
			}

			budget := gen(`{"max_budget": 0.03}`)
			for i := range 5 {
				r := e.call(t, p, post.with(bearer(budget)...))
				switch {
				case i < 3 && r.Status != http.StatusOK:
					t.Fatalf("call %d within budget: %d %s", i, r.Status, r.Body)
				case i >= 3 && (r.Status != http.StatusTooManyRequests || errType(r) != "budget_exceeded"):
					t.Fatalf("call %d over budget: %d %s; want 429 budget_exceeded", i, r.Status, r.Body)
				}
			}
			info := e.call(t, p, apiRequest{Method: "GET", Path: "/key/info", Query: "key=" + budget}.with(bearer(e.master)...))
			if got := info.json(t)["info"].(map[string]any)["spend"]; got != 0.03 {
				t.Errorf("spend right after the calls: %v; want exactly 0.03", got)
			}

			rpm := gen(`{"rpm_limit": 2}`)
			// Keep the four calls inside one fixed UTC minute.
			if sec := time.Now().UTC().Second(); sec > 45 {
				time.Sleep(time.Duration(61-sec) * time.Second)
			}
			var statuses []int
			var refused lambdaResponse
			for range 4 {
				r := e.call(t, p, post.with(bearer(rpm)...))
				statuses = append(statuses, r.Status)
				if r.Status == http.StatusTooManyRequests {
					refused = r
				}
			}
			if !slices.Equal(statuses, []int{200, 200, 429, 429}) {
				t.Fatalf("rpm_limit 2: statuses %v; want 200 200 429 429", statuses)
			}
			if errType(refused) != "rpm_limit_exceeded" {
				t.Errorf("rpm refusal type %q", errType(refused))
			}
			if ra, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Errorf("Retry-After %q; want 1..60", refused.Header.Get("Retry-After"))
			}
		})
	}
}
