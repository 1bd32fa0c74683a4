package app

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/config"
)

// TestLambdaDefaults: under Lambda no default outlives API Gateway's 300s
// idle timeout for a REGIONAL stream: endpoints without a timeout wait 270s
// for upstream headers (600s locally), and a response idle for 270s is cut;
// both stay configurable, on reloads too.
func TestLambdaDefaults(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := `general_settings:
  master_key: sk-master-lambda-defaults-0123456789
  pass_through_endpoints:
    - path: /default
      target: https://up.example.com
    - path: /explicit
      target: https://up.example.com
      timeout: 120
`
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	build := func(t *testing.T, lambda bool, env map[string]string) *App {
		t.Helper()
		full := map[string]string{EnvConfig: cfgPath, EnvStore: "bolt:" + filepath.Join(t.TempDir(), "k.db"), EnvConfigTTL: "1ms"}
		for k, v := range env {
			full[k] = v
		}
		a, err := Build(context.Background(), Options{Getenv: func(k string) string { return full[k] }, Lambda: lambda, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	timeouts := func(a *App) (def, explicit time.Duration) {
		eps := a.Config.Current().Endpoints
		return eps[0].Timeout, eps[1].Timeout
	}
	tests := []struct {
		name        string
		lambda      bool
		env         map[string]string
		wantDefault time.Duration
		wantIdle    time.Duration
	}{
		{"lambda", true, nil, 270 * time.Second, 270 * time.Second},
		{"lambda, idle set", true, map[string]string{EnvIdleTimeout: "90s"}, 270 * time.Second, 90 * time.Second},
		{"lambda, idle off", true, map[string]string{EnvIdleTimeout: "0"}, 270 * time.Second, 0},
		{"local", false, nil, 600 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := build(t, tt.lambda, tt.env)
			for i := range 2 { // the first load, then a reload
				if i == 1 {
					time.Sleep(5 * time.Millisecond)
				}
				def, explicit := timeouts(a)
				if def != tt.wantDefault || explicit != 120*time.Second {
					t.Errorf("load %d: timeouts %v, %v; want %v and the explicit 120s", i, def, explicit, tt.wantDefault)
				}
			}
			if a.IdleTimeout != tt.wantIdle {
				t.Errorf("idle timeout %v; want %v", a.IdleTimeout, tt.wantIdle)
			}
		})
	}
	if config.LambdaTimeout >= apiGatewayIdle || DefaultLambdaIdleTimeout >= apiGatewayIdle {
		t.Errorf("Lambda defaults %v / %v must stay under API Gateway's %v", config.LambdaTimeout, DefaultLambdaIdleTimeout, apiGatewayIdle)
	}
	full := map[string]string{EnvConfig: cfgPath, EnvStore: "bolt:" + filepath.Join(dir, "x.db"), EnvIdleTimeout: "soon"}
	if _, err := Build(context.Background(), Options{Getenv: func(k string) string { return full[k] }, Lambda: true}); err == nil {
		t.Error("a malformed KEYWAY_RESPONSE_IDLE_TIMEOUT was accepted")
	}
}
