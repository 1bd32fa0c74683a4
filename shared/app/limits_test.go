package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// burst sends n concurrent requests, spread over the gateways, and returns
// the responses' statuses and the 429s' bodies and headers.
func burst(t *testing.T, gws []string, n int, key, path string) (ok int, refused []*http.Response, bodies []string) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := do(t, "POST", gws[i%len(gws)]+path, key, `{}`)
			mu.Lock()
			defer mu.Unlock()
			switch resp.StatusCode {
			case 200:
				ok++
			case 429:
				refused = append(refused, resp)
				bodies = append(bodies, body)
			default:
				t.Errorf("unexpected %d %s", resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	return ok, refused, bodies
}

// awaitFreshMinute waits until at least 20 s remain in the current UTC
// minute, so that a burst against an rpm window does not straddle two
// fixed windows.
func awaitFreshMinute() {
	if s := time.Now().UTC().Second(); s > 40 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
}

func errType(t *testing.T, body string) string {
	t.Helper()
	var env struct {
		Error struct{ Type, Param, Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("429 body %q: %v", body, err)
	}
	return env.Error.Type
}

// TestLimitsAcrossInstances: two gateways sharing one DynamoDB table on
// moto enforce one limit between them (and the same on bbolt).
func TestLimitsAcrossInstances(t *testing.T) {
	for _, store := range []string{"bolt", "dynamodb"} {
		t.Run(store, func(t *testing.T) {
			gws := governanceGateways(t, store, 2)
			gw := gws[0]

			t.Run("rpm_limit", func(t *testing.T) {
				key := adminCall(t, gw, "POST", "/key/generate", `{"rpm_limit": 5}`)["key"].(string)
				awaitFreshMinute()
				ok, refused, bodies := burst(t, gws, 12, key, "/flat")
				if ok != 5 || len(refused) != 7 {
					t.Fatalf("got %d admitted, %d refused; want exactly 5 and 7", ok, len(refused))
				}
				for i, r := range refused {
					ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
					if err != nil || ra < 1 || ra > 60 {
						t.Errorf("Retry-After %q; want 1..60 seconds", r.Header.Get("Retry-After"))
					}
					if got := errType(t, bodies[i]); got != "rpm_limit_exceeded" {
						t.Errorf("type %q; want rpm_limit_exceeded", got)
					}
				}
			})

			t.Run("max_budget", func(t *testing.T) {
				gen := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 0.05}`)
				key := gen["key"].(string)
				ok, refused, bodies := burst(t, gws, 12, key, "/flat")
				if ok != 5 || len(refused) != 7 {
					t.Fatalf("got %d admitted, %d refused; want exactly 5 and 7", ok, len(refused))
				}
				if got := errType(t, bodies[0]); got != "budget_exceeded" {
					t.Errorf("type %q; want budget_exceeded", got)
				}
				wantSpend(t, gw, "/key/info?key="+key, 0.05)
			})

			t.Run("max_parallel_requests", func(t *testing.T) {
				key := adminCall(t, gw, "POST", "/key/generate", `{"max_parallel_requests": 2}`)["key"].(string)
				ok, refused, bodies := burst(t, gws, 6, key, "/flat?sleep=1500")
				if ok != 2 || len(refused) != 4 {
					t.Fatalf("got %d admitted, %d refused; want exactly 2 and 4", ok, len(refused))
				}
				if got := errType(t, bodies[0]); got != "max_parallel_requests_exceeded" {
					t.Errorf("type %q; want max_parallel_requests_exceeded", got)
				}
				// Slots are free again once the two finished: a slot is
				// released when its request settles, a moment after the
				// client read the last byte.
				waitFor(t, 5*time.Second, "both slots to be free again", func() bool {
					ok, _, _ := burst(t, gws, 2, key, "/flat")
					return ok == 2
				})
			})

			t.Run("user and team limits across keys", func(t *testing.T) {
				adminCall(t, gw, "POST", "/team/new", `{"team_id": "shared", "max_budget": 0.04}`)
				adminCall(t, gw, "POST", "/user/new", `{"user_id": "ua", "user_role": "internal_user", "teams": ["shared"], "rpm_limit": 100}`)
				adminCall(t, gw, "POST", "/user/new", `{"user_id": "ub", "user_role": "internal_user", "teams": ["shared"]}`)
				ka := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "ua", "team_id": "shared"}`)["key"].(string)
				kb := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "ub", "team_id": "shared"}`)["key"].(string)
				okA, _, _ := burst(t, gws, 3, ka, "/flat")
				okB, refused, bodies := burst(t, gws, 3, kb, "/flat")
				if okA+okB != 4 {
					t.Fatalf("team budget 0.04 at 0.01: %d + %d admitted; want 4 in all", okA, okB)
				}
				if len(refused) > 0 && errType(t, bodies[0]) != "budget_exceeded" {
					t.Errorf("type %q; want budget_exceeded", errType(t, bodies[0]))
				}
				wantSpend(t, gw, "/team/info?team_id=shared", 0.04)

				adminCall(t, gw, "POST", "/user/new", `{"user_id": "uc", "user_role": "internal_user", "rpm_limit": 3}`)
				k1 := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "uc"}`)["key"].(string)
				k2 := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "uc"}`)["key"].(string)
				awaitFreshMinute()
				ok1, _, _ := burst(t, gws, 3, k1, "/flat")
				ok2, _, _ := burst(t, gws, 3, k2, "/flat")
				if ok1+ok2 != 3 {
					t.Errorf("user rpm 3 over two keys: %d + %d admitted; want 3", ok1, ok2)
				}
			})

			t.Run("budget_duration resets", func(t *testing.T) {
				gen := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 0.02, "budget_duration": "3s"}`)
				key := gen["key"].(string)
				info := adminCall(t, gw, "GET", "/key/info?key="+key, "")["info"].(map[string]any)
				if _, err := time.Parse(time.RFC3339, info["budget_reset_at"].(string)); err != nil {
					t.Errorf("budget_reset_at %v: %v", info["budget_reset_at"], err)
				}
				// Wait for the start of a 3 s period so the burst stays in it.
				time.Sleep(time.Until(time.Now().Truncate(3 * time.Second).Add(3 * time.Second)))
				if ok, _, _ := burst(t, gws, 4, key, "/flat"); ok != 2 {
					t.Fatalf("first period: %d admitted; want 2", ok)
				}
				resp, _ := do(t, "POST", gws[len(gws)-1]+"/flat", key, `{}`)
				if resp.StatusCode != 429 {
					t.Fatalf("over budget: %d; want 429", resp.StatusCode)
				}
				if ra, _ := strconv.Atoi(resp.Header.Get("Retry-After")); ra < 1 || ra > 3 {
					t.Errorf("Retry-After %q; want the rest of the 3 s period", resp.Header.Get("Retry-After"))
				}
				time.Sleep(time.Until(time.Now().Truncate(3 * time.Second).Add(3 * time.Second)))
				if ok, _, _ := burst(t, gws, 4, key, "/flat"); ok != 2 {
					t.Errorf("next period: %d admitted; want 2 (spend back to 0)", ok)
				}
			})

			t.Run("rate limit headers", func(t *testing.T) {
				limited := adminCall(t, gw, "POST", "/key/generate", `{"rpm_limit": 1000}`)["key"].(string)
				resp, _ := do(t, "POST", gw+"/flat", limited, `{}`)
				if got := resp.Header.Get("X-Ratelimit-Limit-Requests"); got != "1000" {
					t.Errorf("limited key: x-ratelimit-limit-requests %q; want 1000", got)
				}
				if got, _ := strconv.Atoi(resp.Header.Get("X-Ratelimit-Remaining-Requests")); got < 900 || got > 999 {
					t.Errorf("limited key: x-ratelimit-remaining-requests %d; want Keyway's count, not the upstream's 999", got)
				}
				free := adminCall(t, gw, "POST", "/key/generate", `{}`)["key"].(string)
				resp, _ = do(t, "POST", gw+"/flat", free, `{}`)
				if got := resp.Header.Get("X-Ratelimit-Remaining-Requests"); got != "999" {
					t.Errorf("unlimited key: x-ratelimit-remaining-requests %q; want the upstream's 999", got)
				}
			})
		})
	}
}

// TestClientDisconnectReleasesSlot: a client that goes away mid-request
// frees its parallel slot at once.
func TestClientDisconnectReleasesSlot(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	key := adminCall(t, gws[0], "POST", "/key/generate", `{"max_parallel_requests": 1}`)["key"].(string)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "POST", gws[0]+"/flat?sleep=10000", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if resp, _ := do(t, "POST", gws[0]+"/flat", key, `{}`); resp.StatusCode != 429 {
		t.Fatalf("second call while the first is in flight: %d; want 429", resp.StatusCode)
	}
	cancel()
	<-done
	var admitted atomic.Bool
	waitFor(t, 2*time.Second, "the slot to free", func() bool {
		resp, _ := do(t, "POST", gws[0]+"/flat", key, `{}`)
		admitted.Store(resp.StatusCode == 200)
		return admitted.Load()
	})
}

// TestLimitStoreDownFailsClosed: with the store down, a limited key's call
// is a 503 and nothing reaches the upstream.
func TestLimitStoreDownFailsClosed(t *testing.T) {
	up := newAIUpstream(t)
	// Keys stay cached, so the 503 comes from the limit check itself.
	cfg := strings.Replace(governanceConfig(up.URL), "key_cache_ttl: 0s", "key_cache_ttl: 60s", 1)
	gw := startAWSGateway(t, cfg, nil)
	key := adminCall(t, gw.URL, "POST", "/key/generate", `{"rpm_limit": 100}`)["key"].(string)
	if resp, _ := do(t, "POST", gw.URL+"/flat", key, `{}`); resp.StatusCode != 200 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	before := up.calls.Load()
	gw.srv.Down(t)
	defer gw.srv.Up(t)
	resp, body := do(t, "POST", gw.URL+"/flat", key, `{}`)
	if resp.StatusCode != 503 {
		t.Errorf("store down: %d %s; want 503", resp.StatusCode, body)
	}
	if n := up.calls.Load() - before; n != 0 {
		t.Errorf("upstream got %d calls with the store down; want 0", n)
	}
}
