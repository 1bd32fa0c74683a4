package secrets_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/paramstore"
	"github.com/keywaygw/keyway/shared/secrets"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func env(vars map[string]string) func(string) (string, bool) {
	return func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
}

func TestEnvironmentOnly(t *testing.T) {
	r := secrets.New(env(map[string]string{"SET": "v", "EMPTY": ""}), nil)
	ctx := context.Background()
	if got, err := r.Resolve(ctx, "SET"); err != nil || got != "v" {
		t.Errorf("Resolve(SET) = %q, %v; want v", got, err)
	}
	if got, err := r.Resolve(ctx, "EMPTY"); err != nil || got != "" {
		t.Errorf("Resolve(EMPTY) = %q, %v; want \"\" (validation reports it)", got, err)
	}
	_, err := r.Resolve(ctx, "UNSET")
	if !errors.Is(err, config.ErrSecretNotFound) || !strings.Contains(err.Error(), "UNSET") {
		t.Errorf("Resolve(UNSET) = %v; want ErrSecretNotFound naming UNSET", err)
	}
}

func TestDefaultsToProcessEnvironment(t *testing.T) {
	t.Setenv("KEYWAY_SECRETS_TEST_VAR", "from-os")
	if got, err := secrets.New(nil, nil).Resolve(context.Background(), "KEYWAY_SECRETS_TEST_VAR"); err != nil || got != "from-os" {
		t.Errorf("Resolve = %q, %v; want from-os", got, err)
	}
}

func TestEnvironmentFirstThenSSM(t *testing.T) {
	srv := awstest.Start(t)
	prefix := awstest.ParamPrefix(t)
	for name, v := range map[string]string{"BOTH": "from-ssm", "SSM_ONLY": "from-ssm", "EMPTY_IN_ENV": "from-ssm", "PLAIN": ""} {
		if name == "PLAIN" {
			awstest.PutParameter(t, srv, prefix+"/"+name, "plain-text-secret", false)
			continue
		}
		awstest.PutParameter(t, srv, prefix+"/"+name, v, true)
	}
	lookup := paramstore.NewSecretLookup(paramstore.NewClient(srv.Config()), prefix)
	r := secrets.New(env(map[string]string{"BOTH": "from-env", "ENV_ONLY": "from-env", "EMPTY_IN_ENV": ""}), lookup)
	ctx := context.Background()
	for name, want := range map[string]string{
		"BOTH":         "from-env", // the environment wins
		"ENV_ONLY":     "from-env",
		"SSM_ONLY":     "from-ssm",
		"EMPTY_IN_ENV": "from-ssm", // an empty variable does not hide the parameter
	} {
		if got, err := r.Resolve(ctx, name); err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	_, err := r.Resolve(ctx, "NOWHERE")
	if !errors.Is(err, config.ErrSecretNotFound) || !strings.Contains(err.Error(), "NOWHERE") || !strings.Contains(err.Error(), prefix+"/NOWHERE") {
		t.Errorf("Resolve(NOWHERE) = %v; want ErrSecretNotFound naming NOWHERE and the parameter", err)
	}
	_, err = r.Resolve(ctx, "PLAIN")
	if err == nil || errors.Is(err, config.ErrSecretNotFound) || !strings.Contains(err.Error(), "PLAIN") || strings.Contains(err.Error(), "plain-text-secret") {
		t.Errorf("Resolve(PLAIN, a String parameter) = %v; want a refusal naming PLAIN, without the value", err)
	}

	// Rotation in SSM is seen by the next resolution (the next config reload).
	awstest.PutParameter(t, srv, prefix+"/SSM_ONLY", "rotated", true)
	if got, err := r.Resolve(ctx, "SSM_ONLY"); err != nil || got != "rotated" {
		t.Errorf("Resolve(SSM_ONLY) after rotation = %q, %v; want rotated", got, err)
	}
}

func TestConfigLoadWithSSMSecrets(t *testing.T) {
	srv := awstest.Start(t)
	prefix := awstest.ParamPrefix(t)
	client := paramstore.NewClient(srv.Config())
	awstest.PutParameter(t, srv, prefix+"/config", `general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/ocr
      target: http://127.0.0.1:9/ocr
      headers:
        Authorization: "Bearer os.environ/OCR_TOKEN"
`, true)
	awstest.PutParameter(t, srv, prefix+"/secrets/KEYWAY_MASTER_KEY", "sk-master-from-ssm-0123456789", true)
	awstest.PutParameter(t, srv, prefix+"/secrets/OCR_TOKEN", "ocr-from-ssm", true)
	r := secrets.New(env(nil), paramstore.NewSecretLookup(client, prefix+"/secrets"))
	cfg, err := config.Load(context.Background(), paramstore.NewConfigSource(client, prefix+"/config"), r)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MasterKey != "sk-master-from-ssm-0123456789" {
		t.Errorf("MasterKey not resolved from SSM")
	}
	if got := cfg.Endpoints[0].Headers.Get("Authorization"); got != "Bearer ocr-from-ssm" {
		t.Errorf("Authorization header = %q; want the SSM secret", got)
	}

	// A reference resolved nowhere is a load error naming NAME only.
	awstest.PutParameter(t, srv, prefix+"/config", `general_settings:
  pass_through_endpoints:
    - path: /v1/ocr
      target: http://127.0.0.1:9/ocr
      headers:
        Authorization: "Bearer os.environ/MISSING_TOKEN"
`, false)
	_, err = config.Load(context.Background(), paramstore.NewConfigSource(client, prefix+"/config"), r)
	if err == nil || !strings.Contains(err.Error(), "MISSING_TOKEN") {
		t.Errorf("Load with an unresolvable reference = %v; want an error naming MISSING_TOKEN", err)
	}
}
