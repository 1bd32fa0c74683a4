package dynamostore

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/keywaygw/keyway/shared/awsretry"
)

// Retry bounds how long one store call may take, retries included. A store
// call sits on the request path (GetKey behind the key cache), so it must
// fail within a few seconds rather than hang: the gateway answers 503 and the
// caller retries.
type Retry = awsretry.Bounds

// DefaultRetry is what Open uses: 3 attempts of at most 2s (DynamoDB answers
// in milliseconds), 1s to connect, at most 500ms between attempts — about 7s
// per call at worst.
var DefaultRetry = Retry{MaxAttempts: 3, AttemptTimeout: 2 * time.Second, DialTimeout: time.Second, MaxBackoff: 500 * time.Millisecond}

// ClientOptions returns a dynamodb client option that bounds every call by r
// (zero fields take DefaultRetry's values).
func ClientOptions(r Retry) func(*dynamodb.Options) {
	r = r.WithDefaults(DefaultRetry)
	return func(o *dynamodb.Options) {
		o.Retryer = r.Retryer()
		o.HTTPClient = r.HTTPClient()
	}
}

// Open builds a Store on table from the standard AWS SDK environment (region,
// credentials, AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL for a local
// emulator) with DefaultRetry. The table must exist; Open does not call
// DynamoDB.
func Open(ctx context.Context, table string) (*Store, error) {
	if table == "" {
		return nil, fmt.Errorf("opening dynamodb store: empty table name")
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening dynamodb store: loading aws config: %w", err)
	}
	return New(NewClient(cfg), table), nil
}

// NewClient returns a DynamoDB client for cfg with DefaultRetry's bounds.
func NewClient(cfg aws.Config, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){ClientOptions(DefaultRetry)}, optFns...)...)
}
