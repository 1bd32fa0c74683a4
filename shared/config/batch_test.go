package config

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// batchResolver records how Load asks for secrets.
type batchResolver struct {
	mapResolver
	batches [][]string
	singles []string
}

func (b *batchResolver) ResolveAll(_ context.Context, names []string) SecretResolver {
	b.batches = append(b.batches, slices.Clone(names))
	return b.mapResolver
}

func (b *batchResolver) Resolve(ctx context.Context, name string) (string, error) {
	b.singles = append(b.singles, name)
	return b.mapResolver.Resolve(ctx, name)
}

// TestLoadBatchesSecrets: Load asks a BatchResolver once for exactly the
// names Parse resolves — each once, in first-use order, none from sections
// Keyway ignores — and parses with its answer.
func TestLoadBatchesSecrets(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keyway.yaml")
	writeFile(t, file, `model_list:
  - model_name: gpt
    litellm_params: {api_key: os.environ/OPENAI_API_KEY}
general_settings:
  master_key: os.environ/MASTER
  pass_through_endpoints:
    - path: /a
      target: https://a.example.com
      headers: {Authorization: "Bearer os.environ/UPSTREAM", X-Other: os.environ/OTHER}
    - path: /b
      target: https://b.example.com
      headers: {Authorization: "Bearer os.environ/UPSTREAM"}
`)
	r := &batchResolver{mapResolver: mapResolver{"MASTER": "sk-master-0123456789abcdefghij", "UPSTREAM": "u", "OTHER": "o"}}
	cfg, err := Load(context.Background(), FileSource(file), r)
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"MASTER", "UPSTREAM", "OTHER"}}; len(r.batches) != 1 || !slices.Equal(r.batches[0], want[0]) {
		t.Errorf("batches %v; want %v", r.batches, want)
	}
	if len(r.singles) != 0 {
		t.Errorf("names resolved one by one: %v; want none", r.singles)
	}
	if got := cfg.Endpoints[1].Headers.Get("Authorization"); got != "Bearer u" {
		t.Errorf("resolved header %q", got)
	}
	if got := RefNames(context.Background(), []byte("general_settings: [")); len(got) != 0 {
		t.Errorf("RefNames of a broken document: %v; want none", got)
	}
}
