package app

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/keywaygw/keyway/shared/config"
)

// CheckConfig loads and validates the config named by KEYWAY_CONFIG exactly
// as start-up would (secret references must resolve), and prints a summary to
// out. It is what `make check-config` and `make push-config` run before a
// config goes anywhere.
func CheckConfig(ctx context.Context, getenv func(string) string, out io.Writer) error {
	ref := strings.TrimSpace(getenv(EnvConfig))
	if ref == "" {
		ref = DefaultConfig
	}
	aws := &awsClients{}
	resolver, err := newResolver(ctx, getenv(EnvSecretsPrefix), getenv, aws)
	if err != nil {
		return err
	}
	src, err := newConfigSource(ctx, ref, aws)
	if err != nil {
		return err
	}
	cfg, err := config.Load(ctx, src, resolver)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(out, "warning:", w)
	}
	fmt.Fprintf(out, "%s: valid, %d pass-through endpoint(s)\n", src, len(cfg.Endpoints))
	for _, ep := range cfg.Endpoints {
		fmt.Fprintf(out, "  %-30s -> %s (auth: %v, include_subpath: %v)\n", ep.Path, ep.Target.Redacted(), ep.Auth, ep.IncludeSubpath)
	}
	return nil
}
