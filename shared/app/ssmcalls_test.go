package app

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
)

// ssmCounter sits between the gateway and moto and counts SSM calls by
// operation (the X-Amz-Target header: AmazonSSM.GetParameter, …).
type ssmCounter struct {
	mu  sync.Mutex
	ops map[string]int
}

func (c *ssmCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.ops {
		out[k] = v
	}
	return out
}

func (c *ssmCounter) total() int {
	n := 0
	for _, v := range c.snapshot() {
		n += v
	}
	return n
}

// countSSM points this process's SSM endpoint (AWS_ENDPOINT_URL_SSM) at a
// counting proxy in front of srv for the rest of the test.
func countSSM(t *testing.T, srv *awstest.Server) *ssmCounter {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c := &ssmCounter{ops: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.ops[strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSSM.")]++
		c.mu.Unlock()
		r.Host = target.Host // the signature covers Host
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	t.Setenv("AWS_ENDPOINT_URL_SSM", front.URL)
	return c
}

// manySecretsConfig has the master key and n-1 upstream secrets, all
// os.environ/ references.
func manySecretsConfig(upstreamURL string, n int) string {
	var b strings.Builder
	b.WriteString("general_settings:\n  master_key: os.environ/KEYWAY_MASTER_KEY\n  pass_through_endpoints:\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "    - path: /v1/up%02d\n      target: %s/up%02d\n      headers:\n        Authorization: \"Bearer os.environ/UPSTREAM_%02d\"\n", i, upstreamURL, i, i)
	}
	return b.String()
}

// TestSSMStartupBatchesSecrets: start-up with 25 secrets in SSM makes at
// most 4 SSM calls (the config, then three GetParameters of at most ten
// names), not one call per secret; a reload costs the same.
func TestSSMStartupBatchesSecrets(t *testing.T) {
	srv := awstest.Start(t)
	counter := countSSM(t, srv)
	up := newRecordingUpstream(t)
	_, table := awstest.NewTable(t, srv)
	prefix := awstest.ParamPrefix(t)
	const secrets = 25
	awstest.PutParameter(t, srv, prefix+"/secrets/KEYWAY_MASTER_KEY", testMaster, true)
	for i := 1; i < secrets; i++ {
		awstest.PutParameter(t, srv, fmt.Sprintf("%s/secrets/UPSTREAM_%02d", prefix, i), fmt.Sprintf("secret-%02d", i), true)
	}
	awstest.PutParameter(t, srv, prefix+"/config", manySecretsConfig(up.URL, secrets), true)
	before := counter.total()

	gw := startGatewayEnv(t, map[string]string{
		EnvConfig:           "ssm:" + prefix + "/config",
		EnvStore:            "dynamodb:" + table,
		EnvSecretsPrefix:    prefix + "/secrets",
		EnvConfigTTL:        "300ms",
		"KEYWAY_MASTER_KEY": "", // from SSM, like every other secret
	})
	calls := counter.snapshot()
	if got := counter.total() - before; got > 4 {
		t.Fatalf("start-up made %d SSM calls (%v); want at most 4", got, calls)
	}
	if got, want := calls["GetParameters"], 3; got != want {
		t.Errorf("got %d GetParameters calls; want %d (25 secrets, 10 a call)", got, want)
	}
	// Every secret arrived: the last endpoint sends its own.
	if status, _ := call(t, "GET", gw.URL+"/v1/up24", testMaster, ""); status != http.StatusOK {
		t.Fatalf("GET /v1/up24 with the master key from SSM: got %d; want 200", status)
	}
	reqs := up.all()
	if got, want := reqs[len(reqs)-1].Header.Get("Authorization"), "Bearer secret-24"; got != want {
		t.Errorf("upstream got Authorization %q; want %q", got, want)
	}

	// A reload (first request past the ttl) costs the same four calls.
	time.Sleep(400 * time.Millisecond)
	before = counter.total()
	if status, _ := call(t, "GET", gw.URL+"/v1/up01", testMaster, ""); status != http.StatusOK {
		t.Fatalf("after the ttl: got %d; want 200", status)
	}
	if got := counter.total() - before; got > 4 {
		t.Errorf("a reload made %d SSM calls; want at most 4", got)
	}
}

// TestSSMRotatedMasterKeyRefusedAfterTTL: a master key rotated in SSM is
// refused on the very first request after KEYWAY_CONFIG_TTL, however long the
// instance sat idle, and the new one works on that same request.
func TestSSMRotatedMasterKeyRefusedAfterTTL(t *testing.T) {
	up := newRecordingUpstream(t)
	oldKey, newKey := "sk-old-master-0123456789abcdef", "sk-new-master-0123456789abcdef"
	srv := awstest.Start(t)
	prefix := awstest.ParamPrefix(t)
	_, table := awstest.NewTable(t, srv)
	awstest.PutParameter(t, srv, prefix+"/secrets/KEYWAY_MASTER_KEY", oldKey, true)
	awstest.PutParameter(t, srv, prefix+"/secrets/NVDEV_API_KEY", "upstream-secret", true)
	awstest.PutParameter(t, srv, prefix+"/config", awsConfig(up.URL, ""), true)
	g := startGatewayEnv(t, map[string]string{
		EnvConfig:           "ssm:" + prefix + "/config",
		EnvStore:            "dynamodb:" + table,
		EnvSecretsPrefix:    prefix + "/secrets",
		EnvConfigTTL:        "300ms",
		"KEYWAY_MASTER_KEY": "",
	})
	if status, _ := call(t, "GET", g.URL+"/user/list", oldKey, ""); status != http.StatusOK {
		t.Fatalf("old master key before rotation: got %d; want 200", status)
	}
	for i, idle := range []time.Duration{400 * time.Millisecond, 1500 * time.Millisecond} {
		awstest.PutParameter(t, srv, prefix+"/secrets/KEYWAY_MASTER_KEY", newKey, true)
		time.Sleep(idle)
		if status, _ := call(t, "GET", g.URL+"/user/list", oldKey, ""); status != http.StatusUnauthorized {
			t.Fatalf("rotation %d, first request after %v idle with the old master key: got %d; want 401", i, idle, status)
		}
		if status, _ := call(t, "GET", g.URL+"/user/list", newKey, ""); status != http.StatusOK {
			t.Fatalf("rotation %d: new master key got %d; want 200", i, status)
		}
		oldKey, newKey = newKey, oldKey
	}
}
