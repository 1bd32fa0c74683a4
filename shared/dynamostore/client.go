package dynamostore

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Retry bounds how long one store call may take, retries included. A store
// call sits on the request path (GetKey behind the key cache), so it must
// fail within a few seconds rather than hang: the gateway answers 503 and the
// caller retries.
//
// The worst case is about MaxAttempts*AttemptTimeout plus the backoff between
// attempts (each at most MaxBackoff).
type Retry struct {
	// MaxAttempts is the number of attempts per call, the first included.
	// Default 3 (the SDK's standard).
	MaxAttempts int
	// AttemptTimeout bounds one HTTP attempt, from dial to the last byte of
	// the response. Default 2s; DynamoDB answers in milliseconds.
	AttemptTimeout time.Duration
	// DialTimeout bounds connection set-up. Default 1s.
	DialTimeout time.Duration
	// MaxBackoff caps the jittered exponential delay between attempts.
	// Default 500ms.
	MaxBackoff time.Duration
}

// DefaultRetry is what Open uses: at most about 7s per call.
var DefaultRetry = Retry{MaxAttempts: 3, AttemptTimeout: 2 * time.Second, DialTimeout: time.Second, MaxBackoff: 500 * time.Millisecond}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = DefaultRetry.MaxAttempts
	}
	if r.AttemptTimeout <= 0 {
		r.AttemptTimeout = DefaultRetry.AttemptTimeout
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = DefaultRetry.DialTimeout
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultRetry.MaxBackoff
	}
	return r
}

// ClientOptions returns a dynamodb client option that installs the SDK's
// standard retryer (throttling, 5xx and connection errors are retried with
// jittered exponential backoff) bounded by r, and an HTTP client with r's
// timeouts. Zero fields take DefaultRetry's values.
func ClientOptions(r Retry) func(*dynamodb.Options) {
	r = r.withDefaults()
	return func(o *dynamodb.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = r.MaxAttempts
			so.MaxBackoff = r.MaxBackoff
		})
		o.HTTPClient = awshttp.NewBuildableClient().
			WithTimeout(r.AttemptTimeout).
			WithDialerOptions(func(d *net.Dialer) { d.Timeout = r.DialTimeout })
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
