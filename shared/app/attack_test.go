package app

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// doH is do with extra request headers.
func doH(t *testing.T, method, url, key, body string, h map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// TestAttackReusedRequestIDMakesCallsFree shows that a caller who sends the
// same X-Request-Id on every call is charged only once: the gateway adopts
// the caller's id, and Settle's idempotency marker (ledger_requests, keyed
// by request id alone) makes every later settlement a no-op. With a
// max_budget of $0.05 at $0.01 per call, 20 sequential calls all go through
// and spend stays at $0.01 (and only one usage record exists).
func TestAttackReusedRequestIDMakesCallsFree(t *testing.T) {
	for _, store := range []string{"bolt", "dynamodb"} {
		t.Run(store, func(t *testing.T) { reusedRequestIDMakesCallsFree(t, store) })
	}
}

func reusedRequestIDMakesCallsFree(t *testing.T, store string) {
	gws := governanceGateways(t, store, 1)
	gw := gws[0]
	gen := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 0.05}`)
	key := gen["key"].(string)
	ok := 0
	for range 20 {
		resp, _ := doH(t, "POST", gw+"/flat", key, `{}`, map[string]string{"X-Request-Id": "same-id-every-time"})
		if resp.StatusCode == 200 {
			ok++
		}
	}
	if ok > 5 {
		t.Errorf("%d calls at $0.01 admitted under max_budget $0.05 by reusing one X-Request-Id; want at most 5", ok)
	}
	wantSpend(t, gw, "/key/info?key="+key, float64(ok)*0.01)
}

// TestAttackReusedRequestIDBypassesParallelLimit shows that concurrent
// calls sharing one X-Request-Id skip admission: Admit finds a lease under
// that id already (errAdmittedBefore) and admits without checking rpm,
// parallel or budget. A key with max_parallel_requests 1 and rpm_limit 1
// gets 8 calls in flight at once.
func TestAttackReusedRequestIDBypassesParallelLimit(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	gw := gws[0]
	awaitFreshMinute()
	key := adminCall(t, gw, "POST", "/key/generate", `{"max_parallel_requests": 1, "rpm_limit": 1}`)["key"].(string)
	// The first call holds the lease for 1.5 s.
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := doH(t, "POST", gw+"/flat?sleep=1500", key, `{}`, map[string]string{"X-Request-Id": "shared-id"})
			mu.Lock()
			if resp.StatusCode == 200 {
				ok++
			}
			mu.Unlock()
		}()
		if i == 0 {
			// let the first be admitted before the rest arrive
			time.Sleep(300 * time.Millisecond)
		}
	}
	wg.Wait()
	if ok > 1 {
		t.Errorf("%d concurrent calls admitted for a key with max_parallel_requests 1 and rpm_limit 1 (shared X-Request-Id); want 1", ok)
	}
}

// TestAttackForeignRequestIDSuppressesAnotherUsersCharge shows that request
// ids are global, not per key: once anyone has used id X, a later call by a
// different user with id X is not charged, not recorded, and its lease is
// not released (its parallel slot stays taken until the 30 s lease expiry).
func TestAttackForeignRequestIDSuppressesAnotherUsersCharge(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	gw := gws[0]
	adminCall(t, gw, "POST", "/user/new", `{"user_id": "mallory", "user_role": "internal_user"}`)
	adminCall(t, gw, "POST", "/user/new", `{"user_id": "victim", "user_role": "internal_user"}`)
	mk := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "mallory"}`)["key"].(string)
	vk := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "victim", "max_parallel_requests": 1}`)["key"].(string)
	// mallory pre-settles the id the victim's client will use
	if resp, body := doH(t, "POST", gw+"/flat", mk, `{}`, map[string]string{"X-Request-Id": "victim-req-1"}); resp.StatusCode != 200 {
		t.Fatalf("mallory: %d %s", resp.StatusCode, body)
	}
	if resp, body := doH(t, "POST", gw+"/flat", vk, `{}`, map[string]string{"X-Request-Id": "victim-req-1"}); resp.StatusCode != 200 {
		t.Fatalf("victim: %d %s", resp.StatusCode, body)
	}
	wantSpend(t, gw, "/user/info?user_id=victim", 0.01)
	// The victim's slot was never released: its next call is refused.
	if resp, body := do(t, "POST", gw+"/flat", vk, `{}`); resp.StatusCode != 200 {
		t.Errorf("victim's next call: %d %s; its parallel slot leaked because its settle was skipped", resp.StatusCode, body)
	}
}

// TestAttackHugeMaxBudgetRefusesEverything: a max_budget that does not fit
// in int64 nano-dollars (1e300 as "practically unlimited") once overflowed
// to an enforced budget of -$9.2e9 that refused every call. The admin API
// now refuses it with a 400 naming max_budget, and money conversion
// saturates, so no stored value can turn into a negative budget.
func TestAttackHugeMaxBudgetRefusesEverything(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	gw := gws[0]
	status, out := call(t, "POST", gw+"/team/new", testMaster, `{"team_id": "big", "max_budget": 1e300}`)
	if e, _ := out["error"].(map[string]any); status != 400 || e["param"] != "max_budget" {
		t.Errorf("/team/new with max_budget 1e300: %d %v; want a 400 naming max_budget", status, out)
	}
}

// TestAttackKeyBudgetMultipliedByMintingKeys shows that a key-level budget
// an admin put on an internal user's key does not bind the user: the key
// may call /key/generate, and the new key gets a copy of the limits
// ("restrictions carry over") but fresh counters (spend is per TokenID).
// A key with max_budget $0.02 at $0.01 per call, once exhausted, mints a
// new key and goes on: 5 keys spend $0.10. The same multiplies rpm_limit,
// tpm_limit and max_parallel_requests. Keys minted by a budget-bound key
// should share its counters (charge the parent too), or a scoped caller
// should not get a fresh budget at all.
func TestAttackKeyBudgetMultipliedByMintingKeys(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	gw := gws[0]
	adminCall(t, gw, "POST", "/user/new", `{"user_id": "alice", "user_role": "internal_user"}`)
	key := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "alice", "max_budget": 0.02}`)["key"].(string)
	spent := 0
	for range 5 {
		for {
			resp, _ := do(t, "POST", gw+"/flat", key, `{}`)
			if resp.StatusCode != 200 {
				break
			}
			spent++
		}
		st, out := call(t, "POST", gw+"/key/generate", key, `{}`)
		if st != 200 {
			break
		}
		key = out["key"].(string)
	}
	if spent > 2 {
		t.Errorf("alice's $0.02-budget key made %d calls at $0.01 by minting new keys", spent)
	}
}

// TestAttackBadSpendQueriesAre5xx shows two bad inputs that an internal
// user can send and that get a 503 "the key store is unavailable" instead
// of a 400 naming the field (and count as store failures in metrics and
// access logs at warn level): a cursor that is not base64url, and a
// /spend/daily start_date after the default end_date (today).
func TestAttackBadSpendQueriesAre5xx(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	gw := gws[0]
	adminCall(t, gw, "POST", "/user/new", `{"user_id": "alice", "user_role": "internal_user"}`)
	key := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "alice"}`)["key"].(string)
	for _, q := range []string{"/spend/logs?cursor=~~~~", "/spend/daily?start_date=9999-12-31"} {
		resp, body := do(t, "GET", gw+q, key, "")
		if resp.StatusCode >= 500 {
			t.Errorf("%s: %d %s; want a 400 naming the parameter", q, resp.StatusCode, body)
		}
	}
}

// TestAttackLongerBudgetDurationNeverResets shows that lengthening a
// budget_duration freezes spend for good: the stored period index is in
// the old duration's units (e.g. days since the epoch), the new one's is
// smaller (months since the epoch), and Counter.periodCurrent treats any
// stored index >= the current one as current ("never rolled back"), so no
// admission or charge ever starts a new period again. Shown with 1s → 2s
// (the same happens with 1d → 1mo or 7d → 1mo): after the change, the
// exhausted key is refused forever although several 2 s periods ended.
// The period's length (or the duration string) should be part of the
// stored period, and a different one should reset it.
func TestAttackLongerBudgetDurationNeverResets(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	gw := gws[0]
	key := adminCall(t, gw, "POST", "/key/generate", `{"max_budget": 0.01, "budget_duration": "1s"}`)["key"].(string)
	if resp, body := do(t, "POST", gw+"/flat", key, `{}`); resp.StatusCode != 200 {
		t.Fatalf("first call: %d %s", resp.StatusCode, body)
	}
	adminCall(t, gw, "POST", "/key/update", `{"key": "`+key+`", "budget_duration": "2s"}`)
	time.Sleep(4500 * time.Millisecond) // at least two whole 2 s periods
	if resp, body := do(t, "POST", gw+"/flat", key, `{}`); resp.StatusCode != 200 {
		t.Errorf("call after two 2 s budget periods ended: %d %s", resp.StatusCode, body)
	}
}

// TestAttackRevokedSecretReclaimsAnotherKeysID shows that a key's stable id
// (token_id: the hash of its first secret, which spend, budgets and the
// per-key day totals are keyed by) can be taken over. After bob's key is
// rotated with /key/regenerate (say, because its secret leaked), the old
// secret is free again, and an internal user who holds it may create a key
// with that custom "key" value: the new key's token_id is bob's. Its calls
// are then charged to bob's key counters and budget, and /spend/daily
// group_by=key shows alice bob's key's totals. A token_id in use (or ever
// used) should never be given to a new key (e.g. random token ids, or a
// uniqueness check on token_id).
func TestAttackRevokedSecretReclaimsAnotherKeysID(t *testing.T) {
	gws := governanceGateways(t, "bolt", 1)
	gw := gws[0]
	adminCall(t, gw, "POST", "/user/new", `{"user_id": "alice", "user_role": "internal_user"}`)
	adminCall(t, gw, "POST", "/user/new", `{"user_id": "bob", "user_role": "internal_user"}`)
	ak := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "alice"}`)["key"].(string)
	bob := adminCall(t, gw, "POST", "/key/generate", `{"user_id": "bob", "max_budget": 0.05}`)
	old := bob["key"].(string)
	newBob := adminCall(t, gw, "POST", "/key/regenerate", `{"key": "`+old+`"}`)["key"].(string)
	st, out := call(t, "POST", gw+"/key/generate", ak, `{"key": "`+old+`"}`)
	if st != 200 {
		return // refused: fine
	}
	if out["token_id"] == bob["token_id"] {
		t.Errorf("alice's new key got bob's token_id %v", out["token_id"])
	}
	do(t, "POST", gw+"/flat", old, `{}`) // alice's call with her new key
	time.Sleep(200 * time.Millisecond)
	if s := spendOf(t, gw, "/key/info?key="+newBob); s != 0 {
		t.Errorf("bob's key shows spend $%v from alice's call", s)
	}
}
