package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a config that failed to load: every problem found, in document
// order, each naming the item and the rule it breaks. No problem ever holds
// a secret value.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid config: " + e.Problems[0]
	}
	return fmt.Sprintf("invalid config: %s:\n  - %s", plural(len(e.Problems), "problem"), strings.Join(e.Problems, "\n  - "))
}

// Top-level sections Keyway reads. Every other section (model_list,
// litellm_settings, router_settings, …) is LiteLLM's and is ignored with one
// warning each, so a LiteLLM config loads unchanged.
const (
	sectionGeneral = "general_settings"
	sectionKeyway  = "keyway"
)

// Parse loads a YAML or JSON config (JSON is YAML), resolves os.environ/
// references with resolve, applies defaults and validates. It returns a
// *Error listing every problem, or a usable *Config; never a half-valid one.
func Parse(ctx context.Context, data []byte, resolve SecretResolver) (*Config, error) {
	root, err := document(data)
	if err != nil {
		return nil, &Error{Problems: []string{err.Error()}}
	}
	p := &parser{ctx: ctx, resolve: resolve, cfg: &Config{}, secrets: map[string]secretResult{}}
	p.top(root)
	if len(p.problems) > 0 {
		return nil, &Error{Problems: p.problems}
	}
	return p.cfg, nil
}

// document parses data as exactly one YAML (or JSON) document whose top
// level is a mapping.
func document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, errors.New("config is empty")
	case err != nil:
		return nil, fmt.Errorf("not valid YAML or JSON: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("config must be a single YAML document (found a second one after ---)")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = deref(root.Content[0])
	}
	if isNull(root) {
		return nil, errors.New("config is empty")
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the top level must be a mapping with general_settings (and optionally keyway), got %s", root.Line, describe(root))
	}
	return root, nil
}

type parser struct {
	ctx      context.Context
	resolve  SecretResolver
	cfg      *Config
	problems []string
	secrets  map[string]secretResult
}

func (p *parser) addf(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *parser) warnf(format string, args ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, fmt.Sprintf(format, args...))
}

func (p *parser) top(root *yaml.Node) {
	var general, keyway *yaml.Node
	for _, f := range p.fields("top level", root) {
		switch f.key {
		case sectionGeneral:
			general = f.v
		case sectionKeyway:
			keyway = f.v
		case "environment_variables":
			p.warnf("ignoring top-level section %q: Keyway does not set environment variables from its config; os.environ/NAME is read from the process environment (or SSM)", f.key)
		default:
			// A near miss of one of our own sections is a typo, not a LiteLLM
			// section: ignoring it would silently drop settings.
			if s := closest(f.key, []string{sectionGeneral, sectionKeyway}); s != "" {
				p.addf("top level: unknown section %q (line %d) (did you mean %q?)", f.key, f.k.Line, s)
				continue
			}
			p.warnf("ignoring top-level section %q: Keyway only reads general_settings and keyway", f.key)
		}
	}
	if general == nil {
		p.addf("general_settings is missing: Keyway reads master_key and pass_through_endpoints from it")
	} else {
		p.general(general)
	}
	p.settings(keyway)
}

func (p *parser) general(n *yaml.Node) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.addf("general_settings must be a mapping, got %s (line %d)", describe(n), n.Line)
		return
	}
	fields := p.fields(sectionGeneral, n)
	// The default endpoint timeout (LiteLLM's fallback for endpoints without
	// one) must be known before the endpoints are read, wherever it is
	// written; it is read quietly here and reported in document order below.
	const timeoutField = "general_settings.pass_through_request_timeout"
	defaultTimeout := defaultEndpointTimeout(p.ctx)
	for _, f := range fields {
		if f.key == "pass_through_request_timeout" && !isNull(f.v) {
			if d, ok := (&parser{}).timeout(timeoutField, f.v); ok {
				defaultTimeout = d
			}
		}
	}
	for _, f := range fields {
		switch f.key {
		case "master_key":
			p.masterKey(f.v)
		case "pass_through_endpoints":
			p.endpoints(f.v, defaultTimeout)
		case "pass_through_request_timeout":
			if !isNull(f.v) {
				p.timeout(timeoutField, f.v)
			}
		default:
			p.warnf("ignoring general_settings.%s: not used by Keyway", f.key)
		}
	}
}

// MinMasterKeyLen is the shortest master key accepted: the same bound as a
// custom virtual key ("sk-" plus 22 characters, 128 bits when random).
// Nothing rate-limits failed authentication, so a short master key is an
// open door.
const MinMasterKeyLen = 25

// masterKey reads general_settings.master_key: a literal, or exactly
// os.environ/NAME (LiteLLM resolves the master key only when the whole value
// is a reference). Like LiteLLM, it must start with "sk-". Null or absent
// means no master key.
func (p *parser) masterKey(n *yaml.Node) {
	const where = "general_settings.master_key"
	if isNull(n) {
		return
	}
	raw, ok := p.str(where, n)
	if !ok {
		return
	}
	what := where // names the key in messages; never its value
	key := raw
	if prefix, name, has := splitRef(raw); has {
		if prefix != "" {
			p.addf("%s: an os.environ/ reference must be the whole value, like os.environ/KEYWAY_MASTER_KEY", where)
			return
		}
		if key, ok = p.secret(where, raw); !ok {
			return
		}
		what = fmt.Sprintf("%s (os.environ/%s)", where, name)
	}
	switch {
	case !strings.HasPrefix(key, "sk-") || len(key) == len("sk-"):
		p.addf("%s must start with \"sk-\" followed by the key, as in LiteLLM", what)
	case len(key) < MinMasterKeyLen:
		p.addf("%s is %d characters; a master key grants full admin access and must be at least %d (LiteLLM's sample \"sk-1234\" is guessable): generate one with e.g. \"sk-$(openssl rand -hex 24)\"", what, len(key), MinMasterKeyLen)
	case strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		p.addf("%s must not contain spaces, line breaks or control characters", what)
	default:
		p.cfg.MasterKey = key
	}
}
