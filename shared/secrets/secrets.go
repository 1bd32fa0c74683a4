// Package secrets resolves the NAME of an `os.environ/NAME` config reference:
// from the process environment first, then, when KEYWAY_SECRETS_SSM_PREFIX is
// set, from the SecureString PREFIX/NAME in SSM Parameter Store. The same
// config file therefore works locally (exported variables) and in AWS
// (parameters), and the master key can come from either.
//
// Nothing is cached here: each config load or reload resolves again, so a
// secret rotated in SSM is used from the next reload on.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/keywaygw/keyway/shared/config"
)

// Lookup finds a secret by NAME outside the environment. It returns
// config.ErrSecretNotFound (possibly wrapped) when NAME is not there, and
// never puts a value in an error. paramstore.SecretLookup implements it.
type Lookup interface {
	Lookup(ctx context.Context, name string) (string, error)
}

// Resolver is the config.SecretResolver Keyway runs with.
type Resolver struct {
	lookupEnv func(string) (string, bool)
	lookup    Lookup
}

var _ config.SecretResolver = (*Resolver)(nil)

// New returns a resolver reading the environment through lookupEnv
// (os.LookupEnv when nil) and, for names the environment leaves unset or
// empty, lookup (none when nil). Tests inject lookupEnv; a caller holding a
// func(string) string can pass func(n string) (string, bool) { v := get(n);
// return v, v != "" }.
//
// An empty variable counts as unset when lookup is configured: a template
// that declares NAME with an empty default must not hide the parameter.
// Without a lookup, an empty variable resolves to "", which config
// validation reports as set but empty.
func New(lookupEnv func(string) (string, bool), lookup Lookup) *Resolver {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	return &Resolver{lookupEnv: lookupEnv, lookup: lookup}
}

// Resolve implements config.SecretResolver. Its errors name NAME and where
// it was looked for, never a value.
func (r *Resolver) Resolve(ctx context.Context, name string) (string, error) {
	v, set := r.lookupEnv(name)
	switch {
	case v != "":
		return v, nil
	case r.lookup == nil && set:
		return "", nil
	case r.lookup == nil:
		return "", fmt.Errorf("secret %s is not in the environment: %w", name, config.ErrSecretNotFound)
	}
	v, err := r.lookup.Lookup(ctx, name)
	if errors.Is(err, config.ErrSecretNotFound) {
		return "", fmt.Errorf("secret %s is neither in the environment nor in %w", name, err)
	}
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}
