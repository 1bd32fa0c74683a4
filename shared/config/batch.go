package config

import (
	"context"
	"sync"
)

// BatchResolver is a SecretResolver that can resolve many names in a few
// calls. Load asks it for every name a config refers to before parsing, so
// that a config with 25 os.environ/ references read from SSM costs three
// GetParameters calls (ten names each) instead of 25 GetParameter calls:
// SSM's GetParameter quota (40 transactions per second, shared by the
// account and region) is what a burst of cold starts runs into.
type BatchResolver interface {
	SecretResolver
	// ResolveAll resolves names together and returns a resolver that
	// answers from that result (and resolves any other name as the
	// BatchResolver would). Per-name failures are reported by the returned
	// resolver's Resolve, with the same errors; ResolveAll itself does not
	// fail.
	ResolveAll(ctx context.Context, names []string) SecretResolver
}

// RefNames returns the NAMEs of the os.environ/NAME references that parsing
// data asks a resolver for, in first-use order, without duplicates. It
// parses data with a resolver that records names, so it finds exactly the
// references Parse resolves (not those in ignored LiteLLM sections or
// comments). A document that does not parse has none.
func RefNames(ctx context.Context, data []byte) []string {
	rec := &recorder{seen: map[string]bool{}}
	_, _ = Parse(ctx, data, rec) // only the names matter
	return rec.names
}

// recorder is the resolver of RefNames: every name resolves to a
// placeholder and is remembered.
type recorder struct {
	mu    sync.Mutex
	seen  map[string]bool
	names []string
}

func (r *recorder) Resolve(_ context.Context, name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[name] {
		r.seen[name] = true
		r.names = append(r.names, name)
	}
	return "resolved", nil
}
