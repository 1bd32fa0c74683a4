package paramstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/paramstore"
	"github.com/keywaygw/keyway/shared/secrets"
)

func TestMain(m *testing.M) { awstest.Main(m) }

const yamlConfig = `general_settings:
  master_key: sk-master-for-tests-0123456789
  pass_through_endpoints:
    - path: /v1/ocr
      target: http://127.0.0.1:9/ocr
      headers:
        Authorization: "Bearer os.environ/OCR_TOKEN"
`

const jsonConfig = `{"general_settings": {"pass_through_endpoints": [{"path": "/v1/echo", "target": "http://127.0.0.1:9/echo", "auth": false}]}}`

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		ref, name string
		ok        bool
	}{
		{"ssm:/keyway/config", "/keyway/config", true},
		{"infra/config/example.yaml", "", false},
		{"bolt:keyway.db", "", false},
	} {
		name, ok := paramstore.ParseRef(tc.ref)
		if name != tc.name || ok != tc.ok {
			t.Errorf("ParseRef(%q) = %q, %v; want %q, %v", tc.ref, name, ok, tc.name, tc.ok)
		}
	}
}

func TestConfigSource(t *testing.T) {
	srv := awstest.Start(t)
	client := paramstore.NewClient(srv.Config())
	prefix := awstest.ParamPrefix(t)
	big := "# " + strings.Repeat("x", 7000) + "\n" + jsonConfig // > 4 KB: advanced tier
	for _, tc := range []struct {
		name, value string
		secure      bool
	}{
		{"yaml-string", yamlConfig, false},
		{"yaml-secure", yamlConfig, true},
		{"json-string", jsonConfig, false},
		{"json-secure", jsonConfig, true},
		{"advanced-tier", big, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			param := prefix + "/" + tc.name
			awstest.PutParameter(t, srv, param, tc.value, tc.secure)
			src := paramstore.NewConfigSource(client, param)
			if got, want := src.String(), "ssm parameter "+param; got != want {
				t.Errorf("String() = %q; want %q", got, want)
			}
			got, err := src.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.value {
				t.Errorf("Read() = %d bytes %.40q…; want the stored %d bytes", len(got), got, len(tc.value))
			}
			// The document parses as a config, secrets resolved.
			res := secrets.New(func(n string) (string, bool) { return map[string]string{"OCR_TOKEN": "tok"}[n], n == "OCR_TOKEN" }, nil)
			if _, err := config.Load(context.Background(), src, res); err != nil {
				t.Errorf("config.Load: %v", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		src := paramstore.NewConfigSource(client, prefix+"/absent")
		_, err := src.Read(context.Background())
		if !errors.Is(err, paramstore.ErrParameterNotFound) || !strings.Contains(err.Error(), prefix+"/absent") {
			t.Errorf("Read(missing) = %v; want ErrParameterNotFound naming the parameter", err)
		}
		_, err = config.Load(context.Background(), src, secrets.New(nil, nil))
		if err == nil || !strings.Contains(err.Error(), "ssm parameter "+prefix+"/absent") {
			t.Errorf("config.Load(missing) = %v; want an error naming the parameter", err)
		}
	})
	t.Run("string list", func(t *testing.T) {
		param := prefix + "/list"
		_, err := srv.SSM().PutParameter(context.Background(), &ssm.PutParameterInput{
			Name: aws.String(param), Value: aws.String("a,b"), Type: ssmtypes.ParameterTypeStringList,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := paramstore.NewConfigSource(client, param).Read(context.Background()); err == nil {
			t.Errorf("Read(StringList) succeeded; want an error")
		}
	})
	t.Run("update is read on the next Read", func(t *testing.T) {
		param := prefix + "/changing"
		awstest.PutParameter(t, srv, param, jsonConfig, false)
		src := paramstore.NewConfigSource(client, param)
		if _, err := src.Read(context.Background()); err != nil {
			t.Fatal(err)
		}
		awstest.PutParameter(t, srv, param, yamlConfig, false)
		if got, err := src.Read(context.Background()); err != nil || string(got) != yamlConfig {
			t.Errorf("Read after update = %.30q, %v; want the new value", got, err)
		}
	})
}

func TestSecretLookup(t *testing.T) {
	srv := awstest.Start(t)
	client := paramstore.NewClient(srv.Config())
	prefix := awstest.ParamPrefix(t)
	const value = "s3cr3t-value-never-in-errors"
	awstest.PutParameter(t, srv, prefix+"/UPSTREAM_TOKEN", value, true)
	awstest.PutParameter(t, srv, prefix+"/PLAIN_TOKEN", value, false)
	lookup := paramstore.NewSecretLookup(client, prefix+"/") // trailing slash ignored
	ctx := context.Background()

	if got, err := lookup.Lookup(ctx, "UPSTREAM_TOKEN"); err != nil || got != value {
		t.Errorf("Lookup(UPSTREAM_TOKEN) = %q, %v; want the decrypted value", got, err)
	}
	_, err := lookup.Lookup(ctx, "ABSENT")
	if !errors.Is(err, config.ErrSecretNotFound) || !strings.Contains(err.Error(), prefix+"/ABSENT") {
		t.Errorf("Lookup(ABSENT) = %v; want ErrSecretNotFound naming the parameter", err)
	}
	_, err = lookup.Lookup(ctx, "PLAIN_TOKEN")
	if err == nil || errors.Is(err, config.ErrSecretNotFound) || !strings.Contains(err.Error(), "SecureString") {
		t.Errorf("Lookup(String parameter) = %v; want a refusal asking for a SecureString", err)
	}
	if err != nil && strings.Contains(err.Error(), value) {
		t.Errorf("error contains the secret value: %v", err)
	}
}

// TestSecretLookupAll: a batch answers each name as Lookup would — value,
// not found, or refused as plain text — over more than one GetParameters
// call, and its errors never hold a value.
func TestSecretLookupAll(t *testing.T) {
	srv := awstest.Start(t)
	client := paramstore.NewClient(srv.Config())
	prefix := awstest.ParamPrefix(t)
	const value = "s3cr3t-value-never-in-errors"
	var names []string
	for i := range 12 {
		name := fmt.Sprintf("TOKEN_%02d", i)
		names = append(names, name)
		awstest.PutParameter(t, srv, prefix+"/"+name, value+name, true)
	}
	awstest.PutParameter(t, srv, prefix+"/PLAIN_TOKEN", value, false)
	names = append(names, "ABSENT", "PLAIN_TOKEN", "TOKEN_00")
	values, errs := paramstore.NewSecretLookup(client, prefix).LookupAll(context.Background(), names)
	for i := range 12 {
		name := fmt.Sprintf("TOKEN_%02d", i)
		if got := values[name]; got != value+name {
			t.Errorf("%s = %q (error %v); want its value", name, got, errs[name])
		}
	}
	if err := errs["ABSENT"]; !errors.Is(err, config.ErrSecretNotFound) || !strings.Contains(err.Error(), prefix+"/ABSENT") {
		t.Errorf("ABSENT: %v; want ErrSecretNotFound naming the parameter", err)
	}
	if err := errs["PLAIN_TOKEN"]; err == nil || !strings.Contains(err.Error(), "SecureString") || strings.Contains(err.Error(), value) {
		t.Errorf("PLAIN_TOKEN: %v; want a refusal asking for a SecureString, without the value", err)
	}
	if _, ok := values["PLAIN_TOKEN"]; ok {
		t.Error("a String parameter was returned as a secret")
	}
}

func TestUnreachableFailsPromptly(t *testing.T) {
	srv := awstest.New(t) // private: this test takes the endpoint away
	param := "/keyway/outage"
	awstest.PutParameter(t, srv, param, jsonConfig, false)
	client := paramstore.NewClient(srv.Config(), paramstore.ClientOptions(paramstore.Retry{
		MaxAttempts: 2, AttemptTimeout: 300 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}))
	src := paramstore.NewConfigSource(client, param)
	for _, outage := range []struct {
		name  string
		start func(testing.TB)
	}{{"down", srv.Down}, {"hung", srv.Hang}} {
		t.Run(outage.name, func(t *testing.T) {
			outage.start(t)
			start := time.Now()
			_, err := src.Read(context.Background())
			if err == nil {
				t.Errorf("Read with the server %s succeeded", outage.name)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Read with the server %s took %s; want about 2×300ms at most", outage.name, d)
			}
			srv.Up(t)
			if _, err := src.Read(context.Background()); err != nil {
				t.Errorf("Read after recovery: %v", err)
			}
		})
	}
}
