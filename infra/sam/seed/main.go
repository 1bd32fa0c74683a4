// Command seed prepares a local SSM + DynamoDB emulator (moto server) for
// `sam local start-api`: it creates the Keyway table and writes the config
// parameter and the secrets that infra/sam/env.json points the function at.
//
//	moto_server -H 127.0.0.1 -p 5055 &      # see docs/deploy.md for the address to bind
//	export KEYWAY_MASTER_KEY=sk-dev-…  DEMO_UPSTREAM_TOKEN=demo
//	go run ./infra/sam/seed -secret KEYWAY_MASTER_KEY -secret DEMO_UPSTREAM_TOKEN
//
// With -env-out FILE it also writes a copy of infra/sam/env.json whose
// AWS_ENDPOINT_URL uses -endpoint's port (with -container-host as the host),
// for `sam local start-api --env-vars FILE` when the emulator runs on another
// port than env.json's 5055.
//
// The table definition is shared/dynamostore.TableInput, the same one
// template.yaml declares. Secret values are read from this process's
// environment and written as SecureString PREFIX/NAME; they are never
// printed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keywaygw/keyway/shared/dynamostore"
)

type names []string

func (n *names) String() string     { return strings.Join(*n, ",") }
func (n *names) Set(v string) error { *n = append(*n, v); return nil }

func main() {
	var secrets names
	endpoint := flag.String("endpoint", "http://127.0.0.1:5055", "the emulator's URL, as seen from this machine")
	envOut := flag.String("env-out", "", "also write infra/sam/env.json to this file with AWS_ENDPOINT_URL on -endpoint's port")
	containerHost := flag.String("container-host", "host.docker.internal", "the emulator's host name as seen from the SAM container (for -env-out)")
	region := flag.String("region", "us-east-1", "AWS region the emulator answers for")
	table := flag.String("table", "keyway-local", "DynamoDB table to create (KEYWAY_STORE=dynamodb:TABLE in infra/sam/env.json)")
	configFile := flag.String("config", "infra/sam/config.yaml", "config file to store")
	configParam := flag.String("config-param", "/keyway/config", "SSM parameter for the config (KEYWAY_CONFIG=ssm:NAME)")
	prefix := flag.String("secrets-prefix", "/keyway/secrets", "SSM path for secrets (KEYWAY_SECRETS_SSM_PREFIX)")
	flag.Var(&secrets, "secret", "an environment variable to store as SecureString PREFIX/NAME (repeatable)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := seed(ctx, *endpoint, *region, *table, *configFile, *configParam, *prefix, secrets, os.LookupEnv); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
	if *envOut != "" {
		if err := writeEnv("infra/sam/env.json", *envOut, *endpoint, *containerHost); err != nil {
			fmt.Fprintln(os.Stderr, "seed:", err)
			os.Exit(1)
		}
		fmt.Printf("env vars for sam local -> %s (sam local start-api --env-vars %s)\n", *envOut, *envOut)
	}
}

// writeEnv copies the env-vars file from to to, with every function's
// AWS_ENDPOINT_URL set to http://containerHost:PORT, PORT being endpoint's.
func writeEnv(from, to, endpoint, containerHost string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Port() == "" {
		return fmt.Errorf("-endpoint %q: want a URL with a port, such as http://127.0.0.1:5055", endpoint)
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	for _, vars := range env {
		vars["AWS_ENDPOINT_URL"] = "http://" + net.JoinHostPort(containerHost, u.Port())
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(to, append(out, '\n'), 0o644)
}

func seed(ctx context.Context, endpoint, region, table, configFile, configParam, prefix string, secrets []string, lookup func(string) (string, bool)) error {
	cfg := aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		// moto accepts any credentials; the SDK insists on some.
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	}
	var missing []string
	values := map[string]string{}
	for _, name := range secrets {
		v, ok := lookup(name)
		if !ok || v == "" {
			missing = append(missing, name)
			continue
		}
		values[name] = v
	}
	if len(missing) > 0 {
		return fmt.Errorf("environment variables not set: %s", strings.Join(missing, ", "))
	}
	body, err := os.ReadFile(configFile)
	if err != nil {
		return fmt.Errorf("reading the config: %w", err)
	}

	if err := dynamostore.CreateTable(ctx, dynamodb.NewFromConfig(cfg), table); err != nil {
		return fmt.Errorf("at %s: %w", endpoint, err)
	}
	fmt.Printf("table %s ready\n", table)

	client := ssm.NewFromConfig(cfg)
	put := func(name, value string) error {
		tier := ssmtypes.ParameterTierStandard
		if len(value) > 4096 {
			tier = ssmtypes.ParameterTierAdvanced
		}
		_, err := client.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(name), Value: aws.String(value),
			Type: ssmtypes.ParameterTypeSecureString, Tier: tier, Overwrite: aws.Bool(true),
		})
		if err != nil {
			return fmt.Errorf("writing SSM parameter %s: %w", name, err)
		}
		return nil
	}
	if err := put(configParam, string(body)); err != nil {
		return err
	}
	fmt.Printf("config %s -> %s\n", configFile, configParam)
	var errs []error
	for _, name := range secrets {
		p := strings.TrimSuffix(prefix, "/") + "/" + name
		if err := put(p, values[name]); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Printf("secret %s -> %s\n", name, p)
	}
	return errors.Join(errs...)
}
