package config

import (
	"context"
	"errors"
	"strings"
)

// SecretResolver resolves the NAME of an `os.environ/NAME` reference. It
// returns ErrSecretNotFound (possibly wrapped) when NAME is defined nowhere.
// Its errors must never contain a secret value: they end up in load errors
// and logs.
type SecretResolver interface {
	Resolve(ctx context.Context, name string) (string, error)
}

// ErrSecretNotFound is returned by a SecretResolver for an unknown name.
var ErrSecretNotFound = errors.New("secret not found")

// EnvRef is the marker of a secret reference. As in LiteLLM
// (set_env_variables_in_header), the reference is the tail of a value:
// "Bearer os.environ/API_KEY".
const EnvRef = "os.environ/"

// secretResult is one resolution, cached for the duration of a Parse so that
// a name used by many endpoints is looked up once.
type secretResult struct {
	value string
	err   error
}

// splitRef finds an os.environ/NAME reference at the tail of value. It
// returns the text before the reference and NAME; has is false when value
// holds no reference.
func splitRef(value string) (prefix, name string, has bool) {
	i := strings.Index(value, EnvRef)
	if i < 0 {
		return value, "", false
	}
	return value[:i], value[i+len(EnvRef):], true
}

// validRefName reports whether name can be an environment variable or the
// last part of an SSM parameter name: letters, digits, '_', '.', '-'.
func validRefName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// secret resolves an os.environ/NAME reference at the tail of value and
// returns value with the reference replaced. where names the item ("endpoint
// \"/v1/ocr\": header \"Authorization\""). On failure it records a problem
// naming where and NAME — never a value — and returns ok false; the literal
// reference is never returned as if it were a value.
func (p *parser) secret(where, value string) (string, bool) {
	prefix, name, has := splitRef(value)
	if !has {
		return value, true
	}
	if !validRefName(name) {
		p.addf("%s: %q is not a valid reference: os.environ/NAME must end the value and NAME may only hold letters, digits, '_', '.' and '-'", where, truncate(EnvRef+name))
		return "", false
	}
	r, cached := p.secrets[name]
	if !cached {
		if p.resolve == nil {
			r.err = errors.New("no secret resolver configured")
		} else {
			r.value, r.err = p.resolve.Resolve(p.ctx, name)
		}
		p.secrets[name] = r
	}
	switch {
	case errors.Is(r.err, ErrSecretNotFound):
		p.addf("%s: os.environ/%s is not set (export %s, or store it under KEYWAY_SECRETS_SSM_PREFIX)", where, name, name)
	case r.err != nil:
		p.addf("%s: resolving os.environ/%s: %v", where, name, r.err)
	case r.value == "":
		p.addf("%s: os.environ/%s is set but empty", where, name)
	default:
		return prefix + r.value, true
	}
	return "", false
}
