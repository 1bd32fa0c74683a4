package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute and index names of the Keyway table. template.yaml and
// infra/dynamodb/create-table.sh declare the same definition; CreateTable is
// the reference.
const (
	attrPK     = "pk"
	attrSK     = "sk"
	attrGSI1PK = "gsi1pk"
	attrGSI1SK = "gsi1sk"
	attrGSI2PK = "gsi2pk"
	attrGSI2SK = "gsi2sk"
	attrTTL    = "ttl"

	// IndexByUser (gsi1) holds every key under one partition, sorted by
	// user, and the user and team lists.
	IndexByUser = "gsi1"
	// IndexByTeam (gsi2) holds keys (and rotation records) that have a
	// team, one partition per team.
	IndexByTeam = "gsi2"
)

// TableInput is the CreateTable request for a Keyway table named table:
// string hash key pk and range key sk, two global secondary indexes (gsi1 on
// gsi1pk/gsi1sk, gsi2 on gsi2pk/gsi2sk, both projecting all attributes), and
// on-demand billing. TTL (attribute ttl) is a separate call; see CreateTable.
func TableInput(table string) *dynamodb.CreateTableInput {
	s := types.ScalarAttributeTypeS
	gsi := func(name, pk, sk string) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName: aws.String(name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}
	}
	return &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: s},
			{AttributeName: aws.String(attrSK), AttributeType: s},
			{AttributeName: aws.String(attrGSI1PK), AttributeType: s},
			{AttributeName: aws.String(attrGSI1SK), AttributeType: s},
			{AttributeName: aws.String(attrGSI2PK), AttributeType: s},
			{AttributeName: aws.String(attrGSI2SK), AttributeType: s},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			gsi(IndexByUser, attrGSI1PK, attrGSI1SK),
			gsi(IndexByTeam, attrGSI2PK, attrGSI2SK),
		},
		BillingMode: types.BillingModePayPerRequest,
	}
}

// CreateTable creates the Keyway table for local development and tests,
// waits until it is active and turns on TTL on the ttl attribute. A table
// that already exists is left as it is (its TTL setting is still applied).
// In AWS the table comes from template.yaml.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, TableInput(table))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("creating table %s: %w", table, err)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 2*time.Minute); err != nil {
		return fmt.Errorf("waiting for table %s: %w", table, err)
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	// DynamoDB refuses to "change" TTL to the setting it already has.
	if err != nil && !isTTLAlreadyEnabled(err) {
		return fmt.Errorf("enabling ttl on table %s: %w", table, err)
	}
	return nil
}

func isTTLAlreadyEnabled(err error) bool {
	var ve interface{ ErrorMessage() string }
	return errors.As(err, &ve) && containsFold(ve.ErrorMessage(), "already enabled")
}
