package dynamostore_test

import (
	"testing"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/keys/keystest"
)

// TestConformance runs the suite every keys.Store passes (the bbolt store
// runs the same one), each subtest on a fresh table of the shared moto
// server.
func TestConformance(t *testing.T) {
	srv := awstest.Start(t)
	keystest.Run(t, func(t *testing.T) keys.Store {
		client, table := awstest.NewTable(t, srv)
		return dynamostore.New(client, table)
	}, dynamostore.PlantKey)
}
