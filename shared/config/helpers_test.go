package config

import (
	"context"
	"fmt"
	"sync"
)

// mapResolver is a SecretResolver backed by a map: the interface's contract
// (a name, a value or ErrSecretNotFound) without the environment or SSM,
// whose resolver is tested in its own package.
type mapResolver map[string]string

var _ SecretResolver = mapResolver(nil)

func (m mapResolver) Resolve(_ context.Context, name string) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", fmt.Errorf("%w: %s", ErrSecretNotFound, name)
	}
	return v, nil
}

// anyResolver answers every name with a value derived from it, counting
// calls.
type anyResolver struct {
	mu    sync.Mutex
	calls map[string]int
}

func (a *anyResolver) Resolve(_ context.Context, name string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls == nil {
		a.calls = map[string]int{}
	}
	a.calls[name]++
	return "sk-resolved-0123456789abcdefghij-" + name, nil
}

func mustParse(tb interface {
	Helper()
	Fatalf(string, ...any)
}, doc string, r SecretResolver) *Config {
	tb.Helper()
	cfg, err := Parse(context.Background(), []byte(doc), r)
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return cfg
}
