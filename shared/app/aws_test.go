package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// awsGateway is the gateway as it runs in AWS: config in one SSM parameter,
// secrets under an SSM prefix, keys in DynamoDB — all on moto server.
type awsGateway struct {
	*gatewayUnderTest
	srv    *awstest.Server
	param  string
	prefix string
	table  string
	store  *dynamostore.Store
}

func startAWSGateway(t *testing.T, configYAML string, env map[string]string) *awsGateway {
	t.Helper()
	srv := awstest.Start(t)
	client, table := awstest.NewTable(t, srv)
	prefix := awstest.ParamPrefix(t)
	param := prefix + "/config"
	awstest.PutParameter(t, srv, param, configYAML, true)
	full := map[string]string{
		EnvConfig:        "ssm:" + param,
		EnvStore:         "dynamodb:" + table,
		EnvSecretsPrefix: prefix + "/secrets",
	}
	for k, v := range env {
		full[k] = v
	}
	gw := startGatewayEnv(t, full)
	return &awsGateway{gatewayUnderTest: gw, srv: srv, param: param, prefix: prefix, table: table, store: dynamostore.New(client, table)}
}

func awsConfig(upstreamURL, extra string) string {
	return `
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/ocr
      target: ` + upstreamURL + `/v1/cv/nvidia/ocr
      include_subpath: true
      forward_headers: true
      headers:
        Authorization: "Bearer os.environ/NVDEV_API_KEY"
` + extra
}

// newUserKey creates a user and a key through the admin API.
func newUserKey(t *testing.T, gwURL, user string) string {
	t.Helper()
	if status, body := call(t, "POST", gwURL+"/user/new", testMaster, fmt.Sprintf(`{"user_id": %q, "user_role": "internal_user", "auto_create_key": false}`, user)); status != 200 {
		t.Fatalf("/user/new: %d %v", status, body)
	}
	status, body := call(t, "POST", gwURL+"/key/generate", testMaster, fmt.Sprintf(`{"user_id": %q}`, user))
	if status != 200 {
		t.Fatalf("/key/generate: %d %v", status, body)
	}
	return body["key"].(string)
}

// TestAWSSeedScenario: the seed scenario with dynamodb: and ssm:, the
// master key and the upstream secret both read from the SSM prefix.
func TestAWSSeedScenario(t *testing.T) {
	up := newRecordingUpstream(t)
	const upstreamSecret = "nvapi-from-ssm-0123"
	srv := awstest.Start(t)
	prefix := awstest.ParamPrefix(t)
	awstest.PutParameter(t, srv, prefix+"/secrets/NVDEV_API_KEY", upstreamSecret, true)
	awstest.PutParameter(t, srv, prefix+"/secrets/KEYWAY_MASTER_KEY", testMaster, true)
	_, table := awstest.NewTable(t, srv)
	awstest.PutParameter(t, srv, prefix+"/config", awsConfig(up.URL, ""), true)
	gw := startGatewayEnv(t, map[string]string{
		EnvConfig:           "ssm:" + prefix + "/config",
		EnvStore:            "dynamodb:" + table,
		EnvSecretsPrefix:    prefix + "/secrets",
		"KEYWAY_MASTER_KEY": "", // from SSM, not the environment
	})

	key := newUserKey(t, gw.URL, "test-user-1")
	route := gw.URL + "/v1/ocr/company/community/nemoretriever-ocr-v1/v1/infer"
	for _, who := range []string{key, testMaster} {
		if status, body := call(t, "POST", route, who, seedBody); status != 200 {
			t.Fatalf("pass-through: got %d %v; want 200", status, body)
		}
	}
	reqs := up.all()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests; want 2", len(reqs))
	}
	for _, r := range reqs {
		if got := r.Header.Get("Authorization"); got != "Bearer "+upstreamSecret {
			t.Errorf("upstream Authorization %q; want the secret from SSM", got)
		}
	}
	if status, _ := call(t, "POST", route, "", seedBody); status != 401 {
		t.Errorf("no key: got %d; want 401", status)
	}
}

// TestSSMConfigHotReload: a config change in SSM takes effect after
// KEYWAY_CONFIG_TTL without a restart; an invalid config pushed later
// leaves the last good one serving.
func TestSSMConfigHotReload(t *testing.T) {
	up := newRecordingUpstream(t)
	gw := startAWSGateway(t, awsConfig(up.URL, ""), map[string]string{
		EnvConfigTTL:    "200ms",
		"NVDEV_API_KEY": "upstream-secret",
	})
	key := newUserKey(t, gw.URL, "reload-user")
	if status, _ := call(t, "GET", gw.URL+"/v2/new/thing", key, ""); status != 404 {
		t.Fatalf("before the change: got %d; want 404", status)
	}

	awstest.PutParameter(t, gw.srv, gw.param, awsConfig(up.URL, `
    - path: /v2/new
      target: `+up.URL+`/new
      include_subpath: true
`), true)
	waitFor(t, 10*time.Second, "the new endpoint to serve", func() bool {
		status, _ := call(t, "GET", gw.URL+"/v2/new/thing", key, "")
		return status == 200
	})

	awstest.PutParameter(t, gw.srv, gw.param, "general_settings:\n  pass_through_endpoints:\n    - path: no-slash\n", true)
	// Requests keep being served by the last good config while reloads of
	// the invalid one fail (each request past the TTL starts one).
	waitFor(t, 10*time.Second, "a failed reload to be logged", func() bool {
		if status, body := call(t, "GET", gw.URL+"/v2/new/thing", key, ""); status != 200 {
			t.Fatalf("after an invalid config: got %d %v; want the last good config serving", status, body)
		}
		return strings.Contains(gw.logText(), "keeping the last good config")
	})
}

// TestAWSOutageFailsClosed: with DynamoDB and SSM unreachable, virtual-key
// calls get 503 and nothing is forwarded; when they return, calls work
// again.
func TestAWSOutageFailsClosed(t *testing.T) {
	up := newRecordingUpstream(t)
	gw := startAWSGateway(t, awsConfig(up.URL, "keyway:\n  key_cache_ttl: 0s\n"), map[string]string{
		EnvConfigTTL:    "100ms",
		"NVDEV_API_KEY": "upstream-secret",
	})
	key := newUserKey(t, gw.URL, "outage-user")
	route := gw.URL + "/v1/ocr/x"
	if status, _ := call(t, "POST", route, key, "{}"); status != 200 {
		t.Fatalf("before the outage: got %d; want 200", status)
	}
	before := len(up.all())

	gw.srv.Down(t)
	downUp := false
	t.Cleanup(func() {
		if !downUp {
			gw.srv.Up(t)
		}
	})
	for range 3 {
		status, body := call(t, "POST", route, key, "{}")
		if status != http.StatusServiceUnavailable {
			t.Errorf("during the outage: got %d %v; want 503", status, body)
		}
		if e, _ := body["error"].(map[string]any); e == nil || e["code"] != "503" {
			t.Errorf("503 body %v; want the error envelope", body)
		}
	}
	if status, _ := call(t, "POST", gw.URL+"/key/generate", testMaster, `{}`); status != http.StatusServiceUnavailable {
		t.Errorf("admin write during the outage: got %d; want 503", status)
	}
	if n := len(up.all()); n != before {
		t.Errorf("upstream got %d requests during the outage; want none", n-before)
	}

	gw.srv.Up(t)
	downUp = true
	waitFor(t, 15*time.Second, "calls to work again", func() bool {
		status, _ := call(t, "POST", route, key, "{}")
		return status == 200
	})
}

// TestAWSUserDeletionLeavesNothingThatAuthenticates: deleting a user
// removes every key, including a regenerated key's grace-period secret.
func TestAWSUserDeletionLeavesNothingThatAuthenticates(t *testing.T) {
	up := newRecordingUpstream(t)
	gw := startAWSGateway(t, awsConfig(up.URL, ""), map[string]string{"NVDEV_API_KEY": "upstream-secret"})
	secrets := []string{newUserKey(t, gw.URL, "doomed-user")}
	for range 4 {
		status, body := call(t, "POST", gw.URL+"/key/generate", testMaster, `{"user_id": "doomed-user"}`)
		if status != 200 {
			t.Fatalf("/key/generate: %d %v", status, body)
		}
		secrets = append(secrets, body["key"].(string))
	}
	// Regenerate one with a grace period: its old secret stays valid.
	status, body := call(t, "POST", gw.URL+"/key/regenerate", testMaster, fmt.Sprintf(`{"key": %q, "grace_period": "1h"}`, secrets[0]))
	if status != 200 {
		t.Fatalf("/key/regenerate: %d %v", status, body)
	}
	secrets = append(secrets, body["key"].(string))
	for _, s := range secrets {
		if status, _ := call(t, "POST", gw.URL+"/v1/ocr/x", s, "{}"); status != 200 {
			t.Fatalf("before deletion: key %s got %d; want 200", keys.Abbrev(s), status)
		}
	}

	if status, body := call(t, "POST", gw.URL+"/user/delete", testMaster, `{"user_ids": ["doomed-user"]}`); status != 200 {
		t.Fatalf("/user/delete: %d %v", status, body)
	}
	ctx := context.Background()
	for _, s := range secrets {
		if _, err := gw.store.GetKey(ctx, keys.Hash(s)); !errors.Is(err, keys.ErrNotFound) {
			t.Errorf("after deletion: key %s still in DynamoDB (err %v)", keys.Abbrev(s), err)
		}
		if status, _ := call(t, "POST", gw.URL+"/v1/ocr/x", s, "{}"); status != 401 {
			t.Errorf("after deletion: key %s got %d; want 401", keys.Abbrev(s), status)
		}
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s", limit, what)
}

// TestPushConfig: an invalid config is refused and nothing is written; a
// valid one is written unchanged, and the gateway serves it from SSM.
func TestPushConfig(t *testing.T) {
	srv := awstest.Start(t)
	prefix := awstest.ParamPrefix(t)
	param := prefix + "/config"
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := map[string]string{"KEYWAY_MASTER_KEY": testMaster, "NVDEV_API_KEY": "x"}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()

	env[EnvConfig] = write("bad.yaml", "general_settings:\n  pass_through_endpoints:\n    - path: no-slash\n      target: https://example.com\n")
	var out strings.Builder
	err := PushConfig(ctx, getenv, param, &out)
	if err == nil || !strings.Contains(err.Error(), "no-slash") {
		t.Fatalf("invalid config: got %v; want a refusal naming the endpoint", err)
	}
	if _, err := srv.SSM().GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param)}); err == nil {
		t.Fatalf("an invalid config was written to SSM")
	}

	up := newRecordingUpstream(t)
	good := awsConfig(up.URL, "")
	env[EnvConfig] = write("good.yaml", good)
	if err := PushConfig(ctx, getenv, param, &out); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	got, err := srv.SSM().GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Parameter.Value) != good || got.Parameter.Type != ssmtypes.ParameterTypeSecureString {
		t.Errorf("stored %s %q; want the file unchanged as a SecureString", got.Parameter.Type, aws.ToString(got.Parameter.Value))
	}
	_, table := awstest.NewTable(t, srv)
	gw := startGatewayEnv(t, map[string]string{EnvConfig: "ssm:" + param, EnvStore: "dynamodb:" + table, "NVDEV_API_KEY": "x"})
	if status, _ := call(t, "POST", gw.URL+"/v1/ocr/x", testMaster, "{}"); status != 200 {
		t.Errorf("gateway on the pushed config: got %d; want 200", status)
	}
}

// TestSSMFirstLoadFailureStopsStartup: a missing config parameter stops
// start-up with a message naming it.
func TestSSMFirstLoadFailureStopsStartup(t *testing.T) {
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	missing := awstest.ParamPrefix(t) + "/nope"
	env := map[string]string{EnvConfig: "ssm:" + missing, EnvStore: "dynamodb:" + table, "KEYWAY_MASTER_KEY": testMaster}
	_, err := Build(context.Background(), Options{Getenv: func(k string) string { return env[k] }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("got %v; want a start-up error naming %s", err, missing)
	}
}
