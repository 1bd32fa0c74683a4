package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/paramstore"
)

// CheckConfig loads and validates the config named by KEYWAY_CONFIG exactly
// as start-up would (secret references must resolve), and prints a summary to
// out. It is what `make check-config` runs, and what PushConfig runs before
// a config goes anywhere.
func CheckConfig(ctx context.Context, getenv func(string) string, out io.Writer) error {
	_, err := checkConfig(ctx, getenv, out)
	return err
}

func checkConfig(ctx context.Context, getenv func(string) string, out io.Writer) (*awsClients, error) {
	aws := &awsClients{}
	src, resolver, err := configInputs(ctx, getenv, aws)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(ctx, src, resolver)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(out, "warning:", w)
	}
	fmt.Fprintf(out, "%s: valid, %d pass-through endpoint(s)\n", src, len(cfg.Endpoints))
	for _, ep := range cfg.Endpoints {
		fmt.Fprintf(out, "  %-30s -> %s (auth: %v, include_subpath: %v)\n", ep.Path, ep.Target.Redacted(), ep.Auth, ep.IncludeSubpath)
	}
	return aws, nil
}

// PushConfig validates the config file named by KEYWAY_CONFIG as CheckConfig
// does and only then writes it, unchanged, to the SSM parameter param as a
// SecureString (Intelligent-Tiering: advanced tier only when it is over
// 4 KB). An invalid config is refused and nothing is written.
func PushConfig(ctx context.Context, getenv func(string) string, param string, out io.Writer) error {
	path := strings.TrimSpace(getenv(EnvConfig))
	if _, isSSM := paramstore.ParseRef(path); isSSM || path == "" {
		return fmt.Errorf("push-config: %s must name a local file, got %q", EnvConfig, path)
	}
	if !strings.HasPrefix(param, "/") {
		return fmt.Errorf("push-config: parameter name %q must start with \"/\"", param)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("push-config: %w", err)
	}
	if len(data) > paramstore.MaxValueBytes {
		return fmt.Errorf("push-config: %s is %d bytes; an SSM parameter holds at most %d (see docs/config.md, large configs)", path, len(data), paramstore.MaxValueBytes)
	}
	clients, err := checkConfig(ctx, getenv, out)
	if err != nil {
		return fmt.Errorf("push-config: refusing to publish an invalid config: %w", err)
	}
	if err := clients.load(ctx); err != nil {
		return fmt.Errorf("push-config: %w", err)
	}
	_, err = clients.ssm.PutParameter(ctx, &ssm.PutParameterInput{
		Name:      aws.String(param),
		Value:     aws.String(string(data)),
		Type:      ssmtypes.ParameterTypeSecureString,
		Tier:      ssmtypes.ParameterTierIntelligentTiering,
		Overwrite: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("push-config: writing ssm parameter %s: %w", param, err)
	}
	fmt.Fprintf(out, "wrote %s to SSM parameter %s\n", path, param)
	return nil
}
