// Package secrets resolves the NAME of an `os.environ/NAME` config reference:
// from the process environment first, then, when KEYWAY_SECRETS_SSM_PREFIX is
// set, from the SecureString PREFIX/NAME in SSM Parameter Store. The same
// config file therefore works locally (exported variables) and in AWS
// (parameters), and the master key can come from either.
//
// Nothing is cached between loads: each config load or reload resolves
// again, so a secret rotated in SSM is used from the next reload on. Within
// one load, a Lookup that is also a BatchLookup resolves every name the
// config needs in a few calls (config.BatchResolver).
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

// BatchLookup is a Lookup that can read many names at once
// (paramstore.SecretLookup: GetParameters, ten names a call). Every name
// passed is in exactly one of the returned maps; a name defined nowhere has
// an error wrapping config.ErrSecretNotFound.
type BatchLookup interface {
	Lookup
	LookupAll(ctx context.Context, names []string) (values map[string]string, errs map[string]error)
}

// Resolver is the config.SecretResolver Keyway runs with.
type Resolver struct {
	lookupEnv func(string) (string, bool)
	lookup    Lookup
}

var _ config.BatchResolver = (*Resolver)(nil)

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
	if v, done, err := r.fromEnv(name); done {
		return v, err
	}
	v, err := r.lookup.Lookup(ctx, name)
	return lookupResult(name, v, err)
}

// ResolveAll implements config.BatchResolver: the names the environment
// does not define are read with one LookupAll when the lookup can batch.
func (r *Resolver) ResolveAll(ctx context.Context, names []string) config.SecretResolver {
	bl, ok := r.lookup.(BatchLookup)
	if !ok {
		return r
	}
	var rest []string
	for _, name := range names {
		if _, done, _ := r.fromEnv(name); !done {
			rest = append(rest, name)
		}
	}
	if len(rest) == 0 {
		return r
	}
	values, errs := bl.LookupAll(ctx, rest)
	return &snapshot{r: r, values: values, errs: errs}
}

// fromEnv answers name from the environment; done is false when the
// lookup must be asked.
func (r *Resolver) fromEnv(name string) (v string, done bool, err error) {
	v, set := r.lookupEnv(name)
	switch {
	case v != "":
		return v, true, nil
	case r.lookup == nil && set:
		return "", true, nil
	case r.lookup == nil:
		return "", true, fmt.Errorf("secret %s is not in the environment: %w", name, config.ErrSecretNotFound)
	}
	return "", false, nil
}

// lookupResult words a lookup's answer for name.
func lookupResult(name, v string, err error) (string, error) {
	if errors.Is(err, config.ErrSecretNotFound) {
		return "", fmt.Errorf("secret %s is neither in the environment nor in %w", name, err)
	}
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}

// snapshot answers from one LookupAll; names outside it go to the Resolver.
type snapshot struct {
	r      *Resolver
	values map[string]string
	errs   map[string]error
}

func (s *snapshot) Resolve(ctx context.Context, name string) (string, error) {
	if v, done, err := s.r.fromEnv(name); done {
		return v, err
	}
	if v, ok := s.values[name]; ok {
		return v, nil
	}
	if err, ok := s.errs[name]; ok {
		return lookupResult(name, "", err)
	}
	return s.r.Resolve(ctx, name)
}
