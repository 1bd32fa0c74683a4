package sam_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/keywaygw/keyway/shared/awstest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// makeEnv is the process environment without the variables a fresh shell
// would not have.
func makeEnv(drop ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			if name == d {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

func runMake(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = "../.."
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestMakeCheckConfigFreshClone: `make check-config` passes in a shell that
// has exported nothing (no KEYWAY_MASTER_KEY, no DEMO_UPSTREAM_TOKEN).
func TestMakeCheckConfigFreshClone(t *testing.T) {
	out, err := runMake(t, makeEnv("KEYWAY_MASTER_KEY", "DEMO_UPSTREAM_TOKEN", "KEYWAY_CONFIG", "KEYWAY_SECRETS_SSM_PREFIX"), "check-config")
	if err != nil || !strings.Contains(out, "valid, 2 pass-through endpoint(s)") {
		t.Fatalf("make check-config: %v\n%s", err, out)
	}
}

// deployConfig is the config of docs/deploy.md: its secrets live in SSM,
// not in the shell.
const deployConfig = `general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/ocr
      target: https://ai.api.nvidia.com/v1/cv/nvidia/nemoretriever-ocr-v1
      include_subpath: true
      headers:
        Authorization: "Bearer os.environ/NVDEV_API_KEY"
`

// TestMakePushConfigAsDocumented: `make push-config CONFIG=… PARAM=…` works
// as docs/deploy.md writes it, with the secrets only in SSM (none exported,
// as after `read -rs`), and refuses, writing nothing, when a secret is in
// neither place.
func TestMakePushConfigAsDocumented(t *testing.T) {
	srv := awstest.Start(t) // points this process's AWS environment at moto
	prefix := awstest.ParamPrefix(t)
	cfgFile := filepath.Join(t.TempDir(), "keyway.yaml")
	if err := os.WriteFile(cfgFile, []byte(deployConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	env := makeEnv("KEYWAY_MASTER_KEY", "NVDEV_API_KEY", "KEYWAY_CONFIG", "KEYWAY_SECRETS_SSM_PREFIX", "AWS_REGION")
	param := prefix + "/config"
	args := []string{"push-config", "CONFIG=" + cfgFile, "PARAM=" + param, "SECRETS=" + prefix + "/secrets"}

	awstest.PutParameter(t, srv, prefix+"/secrets/KEYWAY_MASTER_KEY", "sk-"+strings.Repeat("m", 40), true)
	out, err := runMake(t, env, args...)
	if err == nil || !strings.Contains(out, "os.environ/NVDEV_API_KEY is not set") {
		t.Fatalf("push-config with NVDEV_API_KEY nowhere: %v\n%s\nwant a refusal naming it", err, out)
	}
	ctx := context.Background()
	if _, err := srv.SSM().GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param)}); err == nil {
		t.Fatalf("a refused config was written to %s", param)
	}

	awstest.PutParameter(t, srv, prefix+"/secrets/NVDEV_API_KEY", "nvapi-secret-in-ssm", true)
	out, err = runMake(t, env, args...)
	if err != nil {
		t.Fatalf("make push-config: %v\n%s", err, out)
	}
	if strings.Contains(out, "nvapi-secret-in-ssm") {
		t.Errorf("output shows the secret:\n%s", out)
	}
	got, err := srv.SSM().GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Parameter.Value) != deployConfig {
		t.Errorf("parameter holds %q; want the file", aws.ToString(got.Parameter.Value))
	}
}
