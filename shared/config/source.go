package config

import (
	"context"
	"fmt"
	"os"
)

// Source is where the raw config document comes from: a file locally, one
// SSM parameter in AWS (package paramstore).
type Source interface {
	// Read returns the raw YAML or JSON document.
	Read(ctx context.Context) ([]byte, error)
	// String names the source in logs and errors ("file infra/config/example.yaml",
	// "ssm parameter /keyway/config"); never a secret.
	String() string
}

// FileSource reads the config from a file path.
type FileSource string

var _ Source = FileSource("")

// Read implements Source.
func (f FileSource) Read(context.Context) ([]byte, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return b, nil
}

func (f FileSource) String() string { return "file " + string(f) }

// Load reads src and parses it with resolve. A BatchResolver is first asked
// for every referenced name at once (see RefNames).
func Load(ctx context.Context, src Source, resolve SecretResolver) (*Config, error) {
	data, err := src.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading config from %s: %w", src, err)
	}
	if b, ok := resolve.(BatchResolver); ok {
		if names := RefNames(ctx, data); len(names) > 0 {
			resolve = b.ResolveAll(ctx, names)
		}
	}
	cfg, err := Parse(ctx, data, resolve)
	if err != nil {
		return nil, fmt.Errorf("loading config from %s: %w", src, err)
	}
	return cfg, nil
}
