package admin

import (
	"testing"

	"github.com/keywaygw/keyway/shared/awstest"
)

// TestMain shares one moto server among the tests that run on DynamoDB.
func TestMain(m *testing.M) { awstest.Main(m) }
