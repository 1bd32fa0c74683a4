package paramstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keywaygw/keyway/shared/paramstore"
)

// TestThrottlingIsRetried: a burst of cold starts meets SSM's shared
// throughput quota as ThrottlingException; NewClient's retryer (jittered
// backoff, DefaultRetry.MaxAttempts attempts) retries it so that start-up
// does not fail.
func TestThrottlingIsRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if calls.Add(1) <= 3 {
			w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
			return
		}
		w.Write([]byte(`{"Parameters":[{"Name":"/p/TOKEN","Type":"SecureString","Value":"v"}],"InvalidParameters":[]}`))
	}))
	defer srv.Close()
	client := paramstore.NewClient(aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("a", "b", ""),
	})
	values, errs := paramstore.NewSecretLookup(client, "/p").LookupAll(context.Background(), []string{"TOKEN"})
	if values["TOKEN"] != "v" {
		t.Fatalf("after 3 throttled attempts: values %v, errors %v; want the value", values, errs)
	}
	if got, want := calls.Load(), int32(4); got != want {
		t.Errorf("%d calls; want %d", got, want)
	}
	if paramstore.DefaultRetry.MaxAttempts < 4 {
		t.Errorf("DefaultRetry allows %d attempts; a throttled burst needs more", paramstore.DefaultRetry.MaxAttempts)
	}
}
