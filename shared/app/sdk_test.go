package app

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The official SDKs, pinned: what real clients parse.
const (
	openaiSDK    = "openai@7.59.0"
	anthropicSDK = "@anthropic-ai/sdk@1.16.0"
)

// sdkDir installs the pinned SDKs once per machine (npm, from the registry)
// into a cache directory and returns it.
func sdkDir(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short skips the SDK test (it installs npm packages); make test runs it")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Fatalf("npm is needed to run the official SDKs against the gateway: %v", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "keyway-sdk-check", strings.NewReplacer("@", "", "/", "-").Replace(openaiSDK+"-"+anthropicSDK))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@anthropic-ai", "sdk", "package.json")); err == nil {
			return dir
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private": true, "type": "module"}`), 0o644)
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--silent", openaiSDK, anthropicSDK)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install %s %s: %v\n%s", openaiSDK, anthropicSDK, err, out)
	}
	return dir
}

// TestOfficialSDKsParseMeteredResponses: the OpenAI and Anthropic SDKs
// parse what a metered endpoint returns, including a stream whose
// include_usage Keyway injected and stripped (the SDK sees no usage chunk,
// as it asked), while Keyway records the usage.
func TestOfficialSDKsParseMeteredResponses(t *testing.T) {
	dir := sdkDir(t)
	script, err := filepath.Abs("testdata/sdk/check.mjs")
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "check.mjs")
	data, _ := os.ReadFile(script)
	if err := os.WriteFile(link, data, 0o644); err != nil {
		t.Fatal(err)
	}
	up := newAIUpstream(t)
	gw := startGateway(t, governanceConfig(up.URL), nil).URL
	key := newUserKey(t, gw, "sdk-user")

	out, err := exec.Command("node", link, gw, key).CombinedOutput()
	if err != nil {
		t.Fatalf("node check.mjs: %v\n%s", err, out)
	}
	var got struct {
		Text           string
		Chunks         int
		SawUsage       bool
		JSONUsage      map[string]any
		AnthropicUsage map[string]any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("SDK output %q: %v", out, err)
	}
	if got.Text != "Hello" || got.Chunks != 2 || got.SawUsage {
		t.Errorf("OpenAI stream as the SDK parsed it: %+v; want text Hello in 2 chunks and no usage chunk", got)
	}
	if got.JSONUsage["prompt_tokens"] != float64(1000) || got.AnthropicUsage["input_tokens"] != float64(300) {
		t.Errorf("SDK usage: %v / %v", got.JSONUsage, got.AnthropicUsage)
	}
	var recs []map[string]any
	waitFor(t, 5*time.Second, "3 usage records", func() bool {
		recs = spendLogs(t, gw, "user_id=sdk-user")
		return len(recs) == 3
	})
	if len(recs) != 3 {
		t.Fatalf("%d usage records; want 3", len(recs))
	}
	for _, r := range recs {
		if r["prompt_tokens"].(float64) == 0 || r["status"] != "success" {
			t.Errorf("record %v; want tokens and success", r)
		}
	}
}
