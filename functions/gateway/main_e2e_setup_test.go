package main

import (
	"testing"

	"github.com/keywaygw/keyway/shared/awstest"
)

// TestMain runs the package's tests with awstest's shared moto server (the
// Lambda end-to-end tests put the config, secrets and key table there; the
// server starts lazily, so the local-mode tests alone never start it), and
// removes the Lambda toolchain directory (bootstrap build) afterwards.
func TestMain(m *testing.M) {
	awstest.Main(m)
	removeLambdaToolchain()
}
