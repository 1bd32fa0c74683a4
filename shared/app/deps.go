package app

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/keywaygw/keyway/shared/boltstore"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/paramstore"
	"github.com/keywaygw/keyway/shared/secrets"
)

// awsClients builds the AWS SDK configuration and clients once, and only
// when something asks for them, so a local run with a file config and a bolt
// store never touches AWS.
type awsClients struct {
	once   sync.Once
	cfg    aws.Config
	err    error
	ssm    *ssm.Client
	dynamo *dynamodb.Client
}

func (a *awsClients) load(ctx context.Context) error {
	a.once.Do(func() {
		a.cfg, a.err = awsconfig.LoadDefaultConfig(ctx)
		if a.err != nil {
			a.err = fmt.Errorf("loading AWS configuration: %w", a.err)
			return
		}
		a.ssm = paramstore.NewClient(a.cfg)
		a.dynamo = dynamostore.NewClient(a.cfg)
	})
	return a.err
}

// envOr is the trimmed value of the variable name, or def when it is unset.
func envOr(getenv func(string) string, name, def string) string {
	if v := strings.TrimSpace(getenv(name)); v != "" {
		return v
	}
	return def
}

// configInputs is where the config comes from (KEYWAY_CONFIG) and how its
// os.environ/ references resolve (the environment, then
// KEYWAY_SECRETS_SSM_PREFIX): the same for start-up, -check and
// -push-config.
func configInputs(ctx context.Context, getenv func(string) string, aws *awsClients) (config.Source, *secrets.Resolver, error) {
	resolver, err := newResolver(ctx, getenv(EnvSecretsPrefix), getenv, aws)
	if err != nil {
		return nil, nil, err
	}
	src, err := newConfigSource(ctx, envOr(getenv, EnvConfig, DefaultConfig), aws)
	if err != nil {
		return nil, nil, err
	}
	return src, resolver, nil
}

// newResolver resolves os.environ/NAME from the environment, then from the
// SecureString PREFIX/NAME when prefix is set.
func newResolver(ctx context.Context, prefix string, getenv func(string) string, aws *awsClients) (*secrets.Resolver, error) {
	lookupEnv := func(name string) (string, bool) {
		v := getenv(name)
		return v, v != ""
	}
	if prefix == "" {
		return secrets.New(lookupEnv, nil), nil
	}
	if err := aws.load(ctx); err != nil {
		return nil, fmt.Errorf("%s=%s: %w", EnvSecretsPrefix, prefix, err)
	}
	return secrets.New(lookupEnv, paramstore.NewSecretLookup(aws.ssm, prefix)), nil
}

// newConfigSource reads KEYWAY_CONFIG: "ssm:/name" for one SSM parameter,
// anything else a file path.
func newConfigSource(ctx context.Context, ref string, aws *awsClients) (config.Source, error) {
	name, isSSM := paramstore.ParseRef(ref)
	if !isSSM {
		return config.FileSource(ref), nil
	}
	if name == "" {
		return nil, fmt.Errorf("%s=%q: want ssm:/parameter-name", EnvConfig, ref)
	}
	if err := aws.load(ctx); err != nil {
		return nil, fmt.Errorf("%s=%s: %w", EnvConfig, ref, err)
	}
	return paramstore.NewConfigSource(aws.ssm, name), nil
}

// openStore opens KEYWAY_STORE: "bolt:PATH" or "dynamodb:TABLE".
func openStore(ctx context.Context, ref string, aws *awsClients) (keys.Store, error) {
	kind, arg, _ := strings.Cut(ref, ":")
	switch {
	case kind == "bolt" && arg != "":
		return boltstore.Open(arg)
	case kind == "dynamodb" && arg != "":
		if err := aws.load(ctx); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", EnvStore, ref, err)
		}
		return dynamostore.New(aws.dynamo, arg), nil
	}
	return nil, fmt.Errorf("%s=%q: want bolt:PATH or dynamodb:TABLE", EnvStore, ref)
}
