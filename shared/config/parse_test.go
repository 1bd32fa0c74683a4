package config

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimal = `
general_settings:
  pass_through_endpoints:
    - path: /v1/ocr
      target: https://ocr.example.com/v1
`

func TestEndpointDefaults(t *testing.T) {
	cfg := mustParse(t, minimal, nil)
	if got, want := len(cfg.Endpoints), 1; got != want {
		t.Fatalf("got %d endpoints; want %d", got, want)
	}
	ep := cfg.Endpoints[0]
	tests := []struct {
		field     string
		got, want any
	}{
		{"path", ep.Path, "/v1/ocr"},
		{"target", ep.Target.String(), "https://ocr.example.com/v1"},
		{"include_subpath", ep.IncludeSubpath, false},
		{"auth", ep.Auth, true},
		{"methods", ep.Methods, []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}},
		{"headers", ep.Headers, http.Header{}},
		{"forward_headers", ep.ForwardHeaders, false},
		{"timeout", ep.Timeout, 600 * time.Second},
		{"cost_per_request", ep.CostPerRequest, 0.0},
		{"master_key", cfg.MasterKey, ""},
		{"warnings", len(cfg.Warnings), 0},
		{"keyway.max_request_body_bytes", cfg.Settings.MaxRequestBodyBytes, int64(10 << 20)},
		{"keyway.key_cache_ttl", cfg.Settings.KeyCacheTTL, 5 * time.Second},
		{"keyway.shutdown_timeout", cfg.Settings.ShutdownTimeout, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v; want %#v", tt.got, tt.want)
			}
		})
	}
	// The default list is a copy: changing one endpoint's methods must not
	// change DefaultMethods.
	ep.Methods[0] = "X"
	if DefaultMethods[0] != "GET" {
		t.Errorf("endpoint Methods aliases DefaultMethods")
	}
}

func TestEndpointFields(t *testing.T) {
	r := mapResolver{"TOKEN": "tok-123"}
	tests := []struct {
		name  string
		extra string // YAML lines added to the endpoint
		check func(*Endpoint) (got, want any)
	}{
		{"include_subpath true", "include_subpath: true", func(e *Endpoint) (any, any) { return e.IncludeSubpath, true }},
		{"auth false", "auth: false", func(e *Endpoint) (any, any) { return e.Auth, false }},
		{"auth true", "auth: true", func(e *Endpoint) (any, any) { return e.Auth, true }},
		{"auth null is the default", "auth: null", func(e *Endpoint) (any, any) { return e.Auth, true }},
		{"forward_headers", "forward_headers: true", func(e *Endpoint) (any, any) { return e.ForwardHeaders, true }},
		{"methods normalised", "methods: [post, ' get ', POST, options]", func(e *Endpoint) (any, any) {
			return e.Methods, []string{"GET", "POST", "OPTIONS"}
		}},
		{"methods null is the default", "methods: ~", func(e *Endpoint) (any, any) { return len(e.Methods), 7 }},
		{"timeout int", "timeout: 30", func(e *Endpoint) (any, any) { return e.Timeout, 30 * time.Second }},
		{"timeout float", "timeout: 2.5", func(e *Endpoint) (any, any) { return e.Timeout, 2500 * time.Millisecond }},
		{"cost_per_request", "cost_per_request: 0.25", func(e *Endpoint) (any, any) { return e.CostPerRequest, 0.25 }},
		{"cost_per_request int", "cost_per_request: 2", func(e *Endpoint) (any, any) { return e.CostPerRequest, 2.0 }},
		{"headers canonical", "headers: {x-api-version: '2', accept: application/json}", func(e *Endpoint) (any, any) {
			return e.Headers, http.Header{"X-Api-Version": {"2"}, "Accept": {"application/json"}}
		}},
		{"header number value", "headers: {X-Version: 2}", func(e *Endpoint) (any, any) { return e.Headers.Get("X-Version"), "2" }},
		{"header whole reference", "headers: {X-Token: os.environ/TOKEN}", func(e *Endpoint) (any, any) { return e.Headers.Get("X-Token"), "tok-123" }},
		{"header tail reference", `headers: {Authorization: "Bearer os.environ/TOKEN"}`, func(e *Endpoint) (any, any) {
			return e.Headers.Get("Authorization"), "Bearer tok-123"
		}},
		{"path trailing slash trimmed", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "general_settings:\n  pass_through_endpoints:\n    - path: /v1/ocr/\n      target: https://ocr.example.com/v1\n"
			if tt.extra != "" {
				doc += "      " + tt.extra + "\n"
			}
			cfg := mustParse(t, doc, r)
			ep := cfg.Endpoints[0]
			if got, want := ep.Path, "/v1/ocr"; got != want {
				t.Errorf("path: got %q; want %q", got, want)
			}
			if tt.check == nil {
				return
			}
			if got, want := tt.check(ep); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v; want %#v", got, want)
			}
		})
	}
}

func TestGeneralSettings(t *testing.T) {
	r := mapResolver{"KEYWAY_MASTER_KEY": "sk-from-env-0123456789abcdef"}
	tests := []struct {
		name, doc string
		check     func(*Config) (got, want any)
	}{
		{"literal master key", "general_settings: {master_key: sk-1234567890abcdefghijklmnop}",
			func(c *Config) (any, any) { return c.MasterKey, "sk-1234567890abcdefghijklmnop" }},
		{"master key reference", "general_settings: {master_key: os.environ/KEYWAY_MASTER_KEY}",
			func(c *Config) (any, any) { return c.MasterKey, "sk-from-env-0123456789abcdef" }},
		{"no master key", "general_settings: {}",
			func(c *Config) (any, any) { return c.MasterKey, "" }},
		{"null general_settings", "general_settings:",
			func(c *Config) (any, any) { return len(c.Endpoints), 0 }},
		{"null endpoint list", "general_settings: {pass_through_endpoints: null}",
			func(c *Config) (any, any) { return len(c.Endpoints), 0 }},
		{"pass_through_request_timeout is the default timeout",
			"general_settings:\n  pass_through_endpoints: [{path: /a, target: 'https://a.example'}, {path: /b, target: 'https://b.example', timeout: 5}]\n  pass_through_request_timeout: 45",
			func(c *Config) (any, any) {
				return []time.Duration{c.Endpoints[0].Timeout, c.Endpoints[1].Timeout}, []time.Duration{45 * time.Second, 5 * time.Second}
			}},
		{"keyway settings", "general_settings: {}\nkeyway: {max_request_body_bytes: 1024, key_cache_ttl: 0s, shutdown_timeout: 1m, spend_logs_retention: 7d}",
			func(c *Config) (any, any) {
				return c.Settings, Settings{MaxRequestBodyBytes: 1024, KeyCacheTTL: 0, ShutdownTimeout: time.Minute, SpendLogsRetention: 7 * 24 * time.Hour, MaxKeysPerUser: DefaultMaxKeysPerUser}
			}},
		{"null keyway is the defaults", "general_settings: {}\nkeyway: null",
			func(c *Config) (any, any) { return c.Settings.MaxRequestBodyBytes, int64(DefaultMaxRequestBody) }},
		{"http target on loopback", "general_settings: {pass_through_endpoints: [{path: /l, target: 'http://127.0.0.1:9001/x'}, {path: /m, target: 'http://localhost:9001'}, {path: /n, target: 'http://[::1]:80'}]}",
			func(c *Config) (any, any) { return len(c.Endpoints), 3 }},
		{"anchors and merge keys", "defaults: &d {target: 'https://a.example', auth: false}\ngeneral_settings:\n  pass_through_endpoints:\n    - {<<: *d, path: /a}\n    - {<<: *d, path: /b, auth: true}",
			func(c *Config) (any, any) {
				return []bool{c.Endpoints[0].Auth, c.Endpoints[1].Auth}, []bool{false, true}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.doc, r)
			if got, want := tt.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v; want %#v", got, want)
			}
		})
	}
}

// TestLiteLLMConfig loads a real-looking LiteLLM proxy config unchanged:
// every section Keyway does not read is one warning, the endpoints are
// read as LiteLLM would (with Keyway's safer defaults).
func TestLiteLLMConfig(t *testing.T) {
	r := mapResolver{
		"LITELLM_MASTER_KEY": "sk-litellm-master-0123456789ab",
		"NVDEV_API_KEY":      "nvapi-secret",
		"COHERE_API_KEY":     "co-secret",
	}
	data, err := os.ReadFile("testdata/litellm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(context.Background(), data, r)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	wantWarnings := []string{
		`ignoring top-level section "model_list": Keyway only reads general_settings and keyway`,
		`ignoring top-level section "litellm_settings": Keyway only reads general_settings and keyway`,
		`ignoring top-level section "router_settings": Keyway only reads general_settings and keyway`,
		`ignoring top-level section "environment_variables": Keyway does not set environment variables from its config; os.environ/NAME is read from the process environment (or SSM)`,
		`ignoring general_settings.database_url: not used by Keyway`,
		`ignoring general_settings.alerting: not used by Keyway`,
		`ignoring general_settings.alerting_threshold: not used by Keyway`,
		`ignoring general_settings.proxy_batch_write_at: not used by Keyway`,
		`ignoring general_settings.store_model_in_db: not used by Keyway`,
	}
	if !slices.Equal(cfg.Warnings, wantWarnings) {
		t.Errorf("got warnings\n%s\nwant\n%s", strings.Join(cfg.Warnings, "\n"), strings.Join(wantWarnings, "\n"))
	}
	if got, want := cfg.MasterKey, "sk-litellm-master-0123456789ab"; got != want {
		t.Errorf("master key: got %q; want %q", got, want)
	}
	type summary struct {
		Path, Target           string
		Auth, Subpath, Forward bool
		Methods                []string
		Headers                http.Header
		Timeout                time.Duration
		Cost                   float64
	}
	var got []summary
	for _, e := range cfg.Endpoints {
		got = append(got, summary{e.Path, e.Target.String(), e.Auth, e.IncludeSubpath, e.ForwardHeaders, e.Methods, e.Headers, e.Timeout, e.CostPerRequest})
	}
	want := []summary{
		{"/v1/ocr", "https://ai.api.nvidia.com/v1/cv/nvidia/nemoretriever-ocr-v1", true, true, true, DefaultMethods,
			http.Header{"Authorization": {"Bearer nvapi-secret"}, "Accept": {"application/json"}}, 600 * time.Second, 0},
		{"/cohere/rerank", "https://api.cohere.com/v1/rerank", true, false, false, []string{"POST"},
			http.Header{"Authorization": {"bearer co-secret"}, "Content-Type": {"application/json"}}, 30 * time.Second, 0.002},
		{"/status", "https://status.example.com/api/v2/status.json", false, false, false, []string{"GET", "HEAD"},
			http.Header{}, 600 * time.Second, 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints:\ngot  %+v\nwant %+v", got, want)
	}
}

// TestYAMLAndJSON parses the same config written both ways.
func TestYAMLAndJSON(t *testing.T) {
	r := mapResolver{"OCR_KEY": "ocr-secret"}
	var cfgs []*Config
	for _, name := range []string{"testdata/basic.yaml", "testdata/basic.json"} {
		t.Run(filepath.Ext(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(context.Background(), data, r)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := cfg.Endpoints[0].Headers.Get("Authorization"), "Bearer ocr-secret"; got != want {
				t.Errorf("got %q; want %q", got, want)
			}
			if got, want := cfg.Settings, (Settings{1 << 20, time.Second, 5 * time.Second, DefaultSpendLogsRetention, DefaultMaxKeysPerUser}); got != want {
				t.Errorf("got %+v; want %+v", got, want)
			}
			cfgs = append(cfgs, cfg)
		})
	}
	if len(cfgs) == 2 && !reflect.DeepEqual(cfgs[0], cfgs[1]) {
		t.Errorf("YAML and JSON differ:\n%+v\n%+v", cfgs[0], cfgs[1])
	}
}

// TestSecretsNeverInErrors: an unresolved reference names the endpoint and
// NAME, and no value that was resolved (or typed as a master key) appears
// in the error.
func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-VALUE-do-not-print"
	r := mapResolver{"SET_SECRET": secret, "SET_MASTER": "sk-" + secret, "BAD_MASTER": secret}
	tests := []struct {
		name, doc string
		want      []string // substrings of the error
	}{
		{"unset header reference", `
general_settings:
  pass_through_endpoints:
    - path: /v1/ocr
      target: https://ocr.example.com
      headers:
        Authorization: "Bearer os.environ/NVDEV_API_KEY"
        X-Other: os.environ/SET_SECRET
`, []string{`endpoint "/v1/ocr": header "Authorization": os.environ/NVDEV_API_KEY is not set`}},
		{"unset master key", "general_settings: {master_key: os.environ/KEYWAY_MASTER_KEY}",
			[]string{"general_settings.master_key: os.environ/KEYWAY_MASTER_KEY is not set (export KEYWAY_MASTER_KEY"}},
		{"master key without sk-", "general_settings: {master_key: os.environ/BAD_MASTER}",
			[]string{`general_settings.master_key (os.environ/BAD_MASTER) must start with "sk-"`}},
		{"LiteLLM's sample master key is too short", "general_settings: {master_key: sk-1234}",
			[]string{"general_settings.master_key is 7 characters; a master key grants full admin access and must be at least 25"}},
		{"literal master key without sk-", "general_settings: {master_key: " + secret + "}",
			[]string{`general_settings.master_key must start with "sk-"`}},
		{"master key of wrong type", "general_settings: {master_key: [" + secret + "]}",
			[]string{"general_settings.master_key must be a string, got a list"}},
		{"master key with newline", "general_settings: {master_key: \"sk-" + secret + "\\n\"}",
			[]string{"general_settings.master_key must not contain spaces"}},
		{"reference inside master key", "general_settings: {master_key: sk-os.environ/SET_MASTER}",
			[]string{"general_settings.master_key: an os.environ/ reference must be the whole value"}},
		{"secret with line break", "general_settings: {pass_through_endpoints: [{path: /a, target: 'https://a.example', headers: {X: os.environ/NL}}]}",
			[]string{`endpoint "/a": header "X": the value has a line break`}},
		{"header of wrong type", "general_settings: {pass_through_endpoints: [{path: /a, target: 'https://a.example', headers: {X: [" + secret + "]}}]}",
			[]string{`endpoint "/a": header "X" must be a string value, got a list`}},
		{"credentials in target", "general_settings: {pass_through_endpoints: [{path: /a, target: 'https://u:" + secret + "@a.example'}]}",
			[]string{`endpoint "/a": target must not carry credentials`}},
		{"query in bad target", "general_settings: {pass_through_endpoints: [{path: /a, target: 'ftp://a.example/?key=" + secret + "'}]}",
			[]string{`endpoint "/a": target "ftp://a.example/" must be an absolute https:// URL`}},
		{"unparsable target with credentials", "general_settings: {pass_through_endpoints: [{path: /a, target: 'https://u:" + secret + "@a.example:port'}]}",
			[]string{`endpoint "/a": target is not a valid URL`}},
	}
	r["NL"] = secret + "\r\nX-Injected: 1"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(context.Background(), []byte(tt.doc), r)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got error %v; want *Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows a secret value: %q", err)
			}
		})
	}
}

// TestResolverCalledOncePerName: a name shared by many headers is looked up
// once per load (SSM calls cost time and money).
func TestResolverCalledOncePerName(t *testing.T) {
	r := &anyResolver{}
	mustParse(t, `
general_settings:
  master_key: os.environ/M
  pass_through_endpoints:
    - {path: /a, target: "https://a.example", headers: {Authorization: "Bearer os.environ/K", X-K: os.environ/K}}
    - {path: /b, target: "https://b.example", headers: {Authorization: "Bearer os.environ/K"}}
`, r)
	if got, want := r.calls, map[string]int{"M": 1, "K": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("got calls %v; want %v", got, want)
	}
}

func TestResolverError(t *testing.T) {
	doc := "general_settings: {master_key: os.environ/M}"
	_, err := Parse(context.Background(), []byte(doc), failingResolver{})
	if got, want := err.Error(), "invalid config: general_settings.master_key: resolving os.environ/M: ssm unreachable"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	_, err = Parse(context.Background(), []byte(doc), nil)
	if got, want := err.Error(), "invalid config: general_settings.master_key: resolving os.environ/M: no secret resolver configured"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

type failingResolver struct{}

func (failingResolver) Resolve(context.Context, string) (string, error) {
	return "", errors.New("ssm unreachable")
}

// TestProblems checks one rule at a time: the message names the endpoint
// and the rule.
func TestProblems(t *testing.T) {
	ep := func(lines string) string {
		return "general_settings:\n  pass_through_endpoints:\n    - " + strings.ReplaceAll(lines, "\n", "\n      ") + "\n"
	}
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "", "config is empty"},
		{"only comments", "# nothing\n", "config is empty"},
		{"not yaml", "general_settings: [", "not valid YAML or JSON"},
		{"two documents", "general_settings: {}\n---\nkeyway: {}\n", "single YAML document"},
		{"top level list", "- a\n", "top level must be a mapping"},
		{"no general_settings", "keyway: {}\n", "general_settings is missing"},
		{"typo in section", "general_settings: {}\nkeyway_settings: {}\ngeneral_setings: {}\n", `unknown section "general_setings" (line 3) (did you mean "general_settings"?)`},
		{"endpoints not a list", "general_settings: {pass_through_endpoints: {path: /a}}", "pass_through_endpoints must be a list, got a mapping"},
		{"missing target", ep("path: /a"), `endpoint "/a": target is required`},
		{"null target", ep("path: /a\ntarget: null"), `endpoint "/a": target is required`},
		{"missing path", ep("target: https://a.example"), `pass_through_endpoints[0] (line 3): path is required`},
		{"relative target", ep("path: /a\ntarget: a.example/v1"), `endpoint "/a": target "a.example/v1" must be an absolute https:// URL`},
		{"python adapter target", ep("path: /a\ntarget: custom_callbacks.anthropic_adapter"), `must be an absolute https:// URL`},
		{"ftp target", ep("path: /a\ntarget: ftp://a.example"), `endpoint "/a": target "ftp://a.example" must be an absolute https:// URL`},
		{"http target not loopback", ep("path: /a\ntarget: http://a.example"), `endpoint "/a": target "http://a.example" must use https://; http:// is only allowed for loopback hosts`},
		{"target without host", ep("path: /a\ntarget: https:///x"), `endpoint "/a": target "https:///x" has no host`},
		{"target with fragment", ep("path: /a\ntarget: https://a.example/x#frag"), `must not have a #fragment`},
		{"target with dot segment", ep("path: /a\ntarget: https://a.example/x/../y"), `must not contain "." or ".." path segments`},
		{"path without slash", ep("path: v1/a\ntarget: https://a.example"), `endpoint "v1/a": path must start with "/"`},
		{"path with dot dot", ep("path: /v1/../a\ntarget: https://a.example"), `path must not contain empty (//), "." or ".." segments`},
		{"path with empty segment", ep("path: /v1//a\ntarget: https://a.example"), `path must not contain empty (//)`},
		{"path with query", ep("path: /a?x=1\ntarget: https://a.example"), `path may only contain`},
		{"path with escape", ep("path: /a%2Fb\ntarget: https://a.example"), `path may only contain`},
		{"root path", ep("path: /\ntarget: https://a.example"), `path "/" would cover the admin routes`},
		{"admin /key", ep("path: /key\ntarget: https://a.example"), `endpoint "/key": path overlaps the admin route /key`},
		{"admin /user/x", ep("path: /user/x\ntarget: https://a.example"), `overlaps the admin route /user`},
		{"admin /team/", ep("path: /team/\ntarget: https://a.example"), `overlaps the admin route /team`},
		{"admin /health", ep("path: /health\ntarget: https://a.example"), `overlaps the admin route /health`},
		{"duplicate path", ep("path: /a\ntarget: https://a.example") + "    - {path: /a/, target: 'https://b.example'}\n",
			`endpoint "/a" (pass_through_endpoints[1], line 5): duplicate path: pass_through_endpoints[0] (line 3) already uses it`},
		{"unknown method", ep("path: /a\ntarget: https://a.example\nmethods: [GET, CONNECT]"), `endpoint "/a": unknown method "CONNECT" (allowed: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS)`},
		{"empty methods", ep("path: /a\ntarget: https://a.example\nmethods: []"), `methods is empty; omit it to allow every method`},
		{"methods string", ep("path: /a\ntarget: https://a.example\nmethods: GET"), `methods must be a list such as [GET, POST], got a string`},
		{"negative timeout", ep("path: /a\ntarget: https://a.example\ntimeout: -1"), `endpoint "/a": timeout must be more than 0 seconds, got -1`},
		{"zero timeout", ep("path: /a\ntarget: https://a.example\ntimeout: 0"), `timeout must be more than 0 seconds`},
		{"infinite timeout", ep("path: /a\ntarget: https://a.example\ntimeout: .inf"), `timeout must be a finite number`},
		{"huge timeout", ep("path: /a\ntarget: https://a.example\ntimeout: 1e300"), `timeout is too large`},
		{"string timeout", ep("path: /a\ntarget: https://a.example\ntimeout: 30s"), `endpoint "/a": timeout must be a number, got a string`},
		{"negative cost", ep("path: /a\ntarget: https://a.example\ncost_per_request: -0.1"), `endpoint "/a": cost_per_request must be a number of dollars from 0 to 1e+06, got -0.1`},
		{"nan cost", ep("path: /a\ntarget: https://a.example\ncost_per_request: .nan"), `cost_per_request must be a finite number`},
		{"include_subpaths typo", ep("path: /a\ntarget: https://a.example\ninclude_subpaths: true"), `endpoint "/a": unknown field "include_subpaths" (line 5) (did you mean "include_subpath"?)`},
		{"unknown field far from any", ep("path: /a\ntarget: https://a.example\nretries: 3"), `unknown field "retries" (line 5) (known fields: path, target,`},
		{"auth as string", ep("path: /a\ntarget: https://a.example\nauth: \"false\""), `endpoint "/a": auth must be true or false, got a string`},
		{"path as number", ep("path: 42\ntarget: https://a.example"), `pass_through_endpoints[0] (line 3): path must be a string, got a number`},
		{"field set twice", ep("path: /a\ntarget: https://a.example\nauth: false\nauth: true"), `endpoint "/a": field "auth" is set twice (line 6)`},
		{"refused litellm field", ep("path: /a\ntarget: https://a.example\nmerge_query_params: true"), `endpoint "/a": field "merge_query_params" (line 5) is LiteLLM's query merging, which Keyway does not implement`},
		{"header hop-by-hop", ep("path: /a\ntarget: https://a.example\nheaders: {Transfer-Encoding: chunked}"), `header "Transfer-Encoding" cannot be configured`},
		{"header twice", ep("path: /a\ntarget: https://a.example\nheaders: {X-A: a, x-a: b}"), `header "x-a": set twice (also as "X-A"`},
		{"header bad name", ep("path: /a\ntarget: https://a.example\nheaders: {'X A': a}"), `header "X A": not a valid header name`},
		{"header reference not at the tail", ep("path: /a\ntarget: https://a.example\nheaders: {X: os.environ/A b}"), `"os.environ/A b" is not a valid reference`},
		{"header empty reference", ep("path: /a\ntarget: https://a.example\nheaders: {X: 'os.environ/'}"), `"os.environ/" is not a valid reference`},
		{"litellm_user_api_key", ep("path: /a\ntarget: https://a.example\nheaders: {litellm_user_api_key: x-key}"), `LiteLLM's custom key header is not implemented`},
		{"endpoint not a mapping", "general_settings: {pass_through_endpoints: [x]}", `pass_through_endpoints[0] (line 1) must be a mapping with path and target, got a string`},
		{"keyway unknown field", "general_settings: {}\nkeyway: {max_body: 1}", `keyway: unknown field "max_body" (line 2)`},
		{"keyway typo", "general_settings: {}\nkeyway: {key_cache_tll: 1s}", `(did you mean "key_cache_ttl"?)`},
		{"keyway body zero", "general_settings: {}\nkeyway: {max_request_body_bytes: 0}", `keyway.max_request_body_bytes must be more than 0, got 0`},
		{"keyway body float", "general_settings: {}\nkeyway: {max_request_body_bytes: 1.5}", `keyway.max_request_body_bytes must be a whole number, got a number`},
		{"keyway ttl number", "general_settings: {}\nkeyway: {key_cache_ttl: 5}", `keyway.key_cache_ttl must be a duration such as "5s" or "1m", got a number`},
		{"keyway ttl bad", "general_settings: {}\nkeyway: {key_cache_ttl: soon}", `keyway.key_cache_ttl: "soon" is not a duration`},
		{"keyway ttl negative", "general_settings: {}\nkeyway: {key_cache_ttl: -1s}", `keyway.key_cache_ttl must not be negative`},
		{"keyway shutdown zero", "general_settings: {}\nkeyway: {shutdown_timeout: 0s}", `keyway.shutdown_timeout must be more than 0`},
		{"keyway not a mapping", "general_settings: {}\nkeyway: [1]", `keyway must be a mapping, got a list`},
		{"default timeout negative", "general_settings: {pass_through_request_timeout: -3}", `general_settings.pass_through_request_timeout must be more than 0 seconds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(context.Background(), []byte(tt.doc), mapResolver{})
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got (%v, %v); want a *Error", cfg, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q; want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestIgnoredFieldsWarn: LiteLLM endpoint fields that do not change
// behaviour load with a warning.
func TestIgnoredFieldsWarn(t *testing.T) {
	cfg := mustParse(t, "general_settings: {pass_through_endpoints: [{path: /a, target: 'https://a.example', id: abc, is_from_config: true}]}", nil)
	want := []string{
		`endpoint "/a": ignoring field "id": not used by Keyway`,
		`endpoint "/a": ignoring field "is_from_config": not used by Keyway`,
	}
	if !slices.Equal(cfg.Warnings, want) {
		t.Errorf("got %q; want %q", cfg.Warnings, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		problems []string
		want     string
	}{
		{[]string{"a"}, "invalid config: a"},
		{[]string{"a", "b"}, "invalid config: 2 problems:\n  - a\n  - b"},
	}
	for _, tt := range tests {
		if got := (&Error{Problems: tt.problems}).Error(); got != tt.want {
			t.Errorf("got %q; want %q", got, tt.want)
		}
	}
}

// TestLoad reads through a Source and names it in errors.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(context.Background(), FileSource(path), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := len(cfg.Endpoints), 1; got != want {
		t.Errorf("got %d endpoints; want %d", got, want)
	}

	_, err = Load(context.Background(), FileSource(filepath.Join(dir, "missing.yaml")), nil)
	if err == nil || !strings.Contains(err.Error(), "loading config from file "+dir) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v; want a not-exist error naming the file", err)
	}

	if err := os.WriteFile(path, []byte("general_settings: {master_key: os.environ/KEYWAY_MASTER_KEY}"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(context.Background(), FileSource(path), mapResolver{})
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %v; want a *Error", err)
	}
	want := "loading config from file " + path + ": invalid config: general_settings.master_key: os.environ/KEYWAY_MASTER_KEY is not set (export KEYWAY_MASTER_KEY, or store it under KEYWAY_SECRETS_SSM_PREFIX)"
	if got := err.Error(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestMergeBomb: nested merge keys that double at every level (a "billion
// laughs" document) are expanded once each, not exponentially.
func TestMergeBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("a0: &a0 {target: 'https://a.example'}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "a%d: &a%d {<<: [*a%d, *a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1, i-1)
	}
	b.WriteString("general_settings: {pass_through_endpoints: [{<<: *a40, path: /a}, {<<: [*a40, *a39], path: /b}]}\n")
	done := make(chan *Config, 1)
	go func() { done <- mustParse(t, b.String(), nil) }()
	select {
	case cfg := <-done:
		if got, want := cfg.Endpoints[1].Target.String(), "https://a.example"; got != want {
			t.Errorf("got %q; want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Parse did not finish: merges are expanded exponentially")
	}
}

// TestDocumentForms: files as editors and tools write them.
func TestDocumentForms(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"JSON with a byte-order mark", "\ufeff{\"general_settings\": {\"master_key\": \"sk-10123456789abcdefghijklmn\"}}"},
		{"YAML with CRLF line ends", "general_settings:\r\n  master_key: sk-10123456789abcdefghijklmn\r\n"},
		{"tab-indented JSON", "{\n\t\"general_settings\": {\n\t\t\"master_key\": \"sk-10123456789abcdefghijklmn\"\n\t}\n}\n"},
		{"explicit document markers", "---\ngeneral_settings: {master_key: sk-10123456789abcdefghijklmn}\n...\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := mustParse(t, tt.doc, nil).MasterKey, "sk-10123456789abcdefghijklmn"; got != want {
				t.Errorf("got %q; want %q", got, want)
			}
		})
	}
}
