package app

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReloadAppliesSettings: a reloaded config's keyway: settings reach the
// parts that own them (here the proxy's body limit), without a restart.
func TestReloadAppliesSettings(t *testing.T) {
	up := newRecordingUpstream(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	write := func(limit string) {
		t.Helper()
		cfg := awsConfig(up.URL, "keyway:\n  max_request_body_bytes: "+limit+"\n")
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("1000")
	gw := startGatewayEnv(t, map[string]string{
		EnvConfig:       cfgPath,
		EnvStore:        "bolt:" + filepath.Join(dir, "keyway.db"),
		EnvConfigTTL:    "100ms",
		"NVDEV_API_KEY": "upstream-secret",
	})
	body := `{"pad": "` + strings.Repeat("x", 2000) + `"}`
	if status, _ := call(t, "POST", gw.URL+"/v1/ocr/x", testMaster, body); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 KB body under a 1000-byte limit: got %d; want 413", status)
	}
	write("100000")
	waitFor(t, 10*time.Second, "the raised body limit to apply", func() bool {
		status, _ := call(t, "POST", gw.URL+"/v1/ocr/x", testMaster, body)
		return status == http.StatusOK
	})
}
