package config

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestExampleConfigs loads the shipped configs with a resolver that answers
// every name, so that they never rot.
func TestExampleConfigs(t *testing.T) {
	tests := []struct {
		file string
		want map[string]bool // path → auth
	}{
		{"../../infra/config/example.yaml", map[string]bool{"/v1/ocr": true, "/cohere/v2/rerank": true, "/openai": true, "/public/status": false}},
		{"../../infra/config/local.yaml", map[string]bool{"/v1/ocr": true, "/public/echo": false}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(context.Background(), data, &anyResolver{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(cfg.Warnings) != 0 {
				t.Errorf("got warnings %q; want none", cfg.Warnings)
			}
			if got, want := cfg.MasterKey, "sk-resolved-0123456789abcdefghij-KEYWAY_MASTER_KEY"; got != want {
				t.Errorf("master key: got %q; want %q", got, want)
			}
			got := map[string]bool{}
			for _, ep := range cfg.Endpoints {
				got[ep.Path] = ep.Auth
			}
			if len(got) != len(tt.want) {
				t.Errorf("got endpoints %v; want %v", got, tt.want)
			}
			for path, auth := range tt.want {
				if a, ok := got[path]; !ok || a != auth {
					t.Errorf("endpoint %s: got auth %v (present %v); want %v", path, a, ok, auth)
				}
			}
		})
	}
}

// TestExampleCoversEveryField: example.yaml shows every endpoint field and
// every keyway: setting, so it stays the complete commented reference.
func TestExampleCoversEveryField(t *testing.T) {
	data, err := os.ReadFile("../../infra/config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := mustParse(t, string(data), &anyResolver{})
	ocr := cfg.Endpoints[0]
	if got, want := ocr.Headers.Get("Authorization"), "Bearer sk-resolved-0123456789abcdefghij-NVDEV_API_KEY"; got != want {
		t.Errorf("tail reference: got %q; want %q", got, want)
	}
	if !ocr.Auth || !ocr.IncludeSubpath || !ocr.ForwardHeaders {
		t.Errorf("/v1/ocr: got auth %v include_subpath %v forward_headers %v; want all true", ocr.Auth, ocr.IncludeSubpath, ocr.ForwardHeaders)
	}
	keys := append(append([]string{"master_key", "pass_through_request_timeout"}, endpointFields...), settingsFields...)
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			if !strings.Contains(string(data), "\n      "+k+":") && !strings.Contains(string(data), "\n  "+k+":") && !strings.Contains(string(data), "- "+k+":") {
				t.Errorf("example.yaml does not show %q", k)
			}
		})
	}
}
