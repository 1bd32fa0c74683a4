// Package awsretry bounds how long one AWS SDK call may take, retries
// included, for the DynamoDB key store and the SSM config and secrets
// clients. A call on the request path must fail within seconds (the gateway
// then answers 503), and a hung call must never hold a config reload.
package awsretry

import (
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Bounds limit one SDK call. The worst case is about
// MaxAttempts×AttemptTimeout plus the backoff between attempts (each at most
// MaxBackoff). A zero field takes the value of the defaults passed to
// WithDefaults.
type Bounds struct {
	// MaxAttempts is the number of attempts per call, the first included.
	MaxAttempts int
	// AttemptTimeout bounds one HTTP attempt, from dial to the last byte.
	AttemptTimeout time.Duration
	// DialTimeout bounds connection set-up.
	DialTimeout time.Duration
	// MaxBackoff caps the jittered exponential delay between attempts.
	MaxBackoff time.Duration
}

// WithDefaults fills b's zero fields from d.
func (b Bounds) WithDefaults(d Bounds) Bounds {
	if b.MaxAttempts <= 0 {
		b.MaxAttempts = d.MaxAttempts
	}
	if b.AttemptTimeout <= 0 {
		b.AttemptTimeout = d.AttemptTimeout
	}
	if b.DialTimeout <= 0 {
		b.DialTimeout = d.DialTimeout
	}
	if b.MaxBackoff <= 0 {
		b.MaxBackoff = d.MaxBackoff
	}
	return b
}

// Retryer is the SDK's standard retryer (throttling, 5xx and connection
// errors retried with jittered exponential backoff) within b.
func (b Bounds) Retryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = b.MaxAttempts
		so.MaxBackoff = b.MaxBackoff
	})
}

// HTTPClient is an SDK HTTP client with b's attempt and dial timeouts.
func (b Bounds) HTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithTimeout(b.AttemptTimeout).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = b.DialTimeout })
}
