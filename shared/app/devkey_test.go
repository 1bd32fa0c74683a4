package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDevMasterKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), DevMasterKeyFile)
	key, created, err := DevMasterKey(path)
	if err != nil || !created {
		t.Fatalf("first call: %q created=%v err=%v; want a new key", key, created, err)
	}
	if !strings.HasPrefix(key, "sk-dev-") || len(key) != len("sk-dev-")+32 {
		t.Errorf("key %q; want sk-dev- and 128 random bits in hex", key)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %04o; want 0600", perm)
	}
	again, created, err := DevMasterKey(path)
	if err != nil || created || again != key {
		t.Errorf("second call: %q created=%v err=%v; want the same key reused", again, created, err)
	}

	os.Chmod(path, 0o644)
	if _, _, err := DevMasterKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable file: err %v; want a refusal naming chmod 600", err)
	}
	os.WriteFile(path, []byte("oops\n"), 0o600)
	os.Chmod(path, 0o600)
	if _, _, err := DevMasterKey(path); err == nil {
		t.Errorf("file without a key: no error")
	}
}

func TestWantsDevMasterKey(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name   string
		env    map[string]string
		lambda bool
		want   bool
	}{
		{"local, nothing set", nil, false, true},
		{"local bolt store", map[string]string{EnvStore: "bolt:x.db"}, false, true},
		{"key given", map[string]string{EnvMasterKey: "sk-given-0123456789abcdef"}, false, false},
		{"dynamodb store", map[string]string{EnvStore: "dynamodb:keyway"}, false, false},
		{"lambda", nil, true, false},
	} {
		if got := WantsDevMasterKey(env(tc.env), tc.lambda); got != tc.want {
			t.Errorf("%s: %v; want %v", tc.name, got, tc.want)
		}
	}
}
