package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/keywaygw/keyway/shared/keys"
)

// EnvMasterKey is the variable the example and local configs read the
// master key from (general_settings.master_key: os.environ/KEYWAY_MASTER_KEY).
const EnvMasterKey = "KEYWAY_MASTER_KEY"

// DevMasterKeyFile is where local mode keeps the master key it generated
// when KEYWAY_MASTER_KEY is unset: git-ignored, mode 0600.
const DevMasterKeyFile = ".keyway-dev-master-key"

// WantsDevMasterKey reports whether start-up should supply a dev master
// key: local mode only (never under Lambda), no KEYWAY_MASTER_KEY, and a
// local store — a dynamodb: store is shared, so it needs a configured key.
func WantsDevMasterKey(getenv func(string) string, lambda bool) bool {
	return !lambda && getenv(EnvMasterKey) == "" && !strings.HasPrefix(getenv(EnvStore), "dynamodb:")
}

// DevMasterKey returns the dev master key kept in path, creating it (128
// random bits, file mode 0600, never overwritten) when the file does not
// exist; created says which. A file that others may read, or that does not
// hold a key, is an error rather than silently trusted or replaced.
func DevMasterKey(path string) (key string, created bool, err error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return "", false, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s has mode %04o: others may read the dev master key; chmod 600 it, or delete it for a new key", path, fi.Mode().Perm())
		}
		key = strings.TrimSpace(string(data))
		if !strings.HasPrefix(key, keys.SecretPrefix) || len(key) < 20 || strings.ContainsAny(key, " \t\r\n") {
			return "", false, fmt.Errorf("%s does not hold a master key (sk-…, at least 20 characters); delete it for a new key", path)
		}
		return key, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("reading the dev master key: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, err
	}
	key = keys.SecretPrefix + "dev-" + hex.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("creating the dev master key file: %w", err)
	}
	if _, err := f.WriteString(key + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return "", false, fmt.Errorf("writing the dev master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, err
	}
	return key, true, nil
}
