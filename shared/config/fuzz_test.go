package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and returns either a *Error or a Config
// whose endpoints all have a target and a path starting with "/". Seeded
// from every config in testdata and the example configs.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	jsons, _ := filepath.Glob("testdata/*.json")
	seeds = append(seeds, jsons...)
	seeds = append(seeds, "../../infra/config/example.yaml", "../../infra/config/local.yaml")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("general_settings: {pass_through_endpoints: [{<<: [*a], path: /a}]}"))
	f.Add([]byte("a: &a {target: 'https://a.example'}\ngeneral_settings: {pass_through_endpoints: [{<<: *a, path: /a}]}"))
	r := mapResolver{"NVDEV_API_KEY": "nv", "KEYWAY_MASTER_KEY": "sk-m-0123456789abcdefghijklmn", "TOKEN": "t\r\n", "EMPTY": ""}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(context.Background(), data, r)
		if err != nil {
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got error %T %v; want *Error", err, err)
			}
			if cfg != nil {
				t.Fatalf("got a config with an error")
			}
			if len(cerr.Problems) == 0 {
				t.Fatalf("*Error without problems")
			}
			return
		}
		if cfg == nil {
			t.Fatal("got nil config and nil error")
		}
		for _, ep := range cfg.Endpoints {
			if ep.Target == nil || !strings.HasPrefix(ep.Path, "/") {
				t.Fatalf("invalid endpoint accepted: %+v", ep)
			}
			if ep.Timeout <= 0 || ep.CostPerRequest < 0 || len(ep.Methods) == 0 || ep.Headers == nil {
				t.Fatalf("endpoint without defaults: %+v", ep)
			}
		}
	})
}
