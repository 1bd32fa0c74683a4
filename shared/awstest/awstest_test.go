package awstest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keywaygw/keyway/shared/dynamostore"
)

func TestMain(m *testing.M) { Main(m) }

func TestSharedServerSetsEnvironment(t *testing.T) {
	srv := Start(t)
	if again := Start(t); again != srv {
		t.Errorf("second Start returned another server")
	}
	// A client built the way the gateway builds it (standard environment)
	// reaches the server.
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	name := ParamPrefix(t) + "/p"
	PutParameter(t, srv, name, "v", true)
	out, err := ssm.NewFromConfig(cfg).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(out.Parameter.Value) != "v" || out.Parameter.Type != ssmtypes.ParameterTypeSecureString {
		t.Errorf("GetParameter through the environment = %+v, %v; want the SecureString v", out, err)
	}
	_, table := NewTable(t, srv)
	if err := dynamostore.New(dynamodb.NewFromConfig(cfg), table).Ping(context.Background()); err != nil {
		t.Errorf("Ping through the environment: %v", err)
	}
}

func TestOutagesKeepPortAndState(t *testing.T) {
	srv := New(t)
	client, table := NewTable(t, srv)
	st := dynamostore.New(srv.DynamoDB(dynamostore.ClientOptions(dynamostore.Retry{
		MaxAttempts: 1, AttemptTimeout: 300 * time.Millisecond,
	})), table)
	ctx := context.Background()
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	endpoint := srv.Endpoint
	for _, outage := range []struct {
		name  string
		start func(testing.TB)
	}{{"down", srv.Down}, {"hang", srv.Hang}, {"down twice", func(tb testing.TB) { srv.Down(tb); srv.Down(tb) }}} {
		outage.start(t)
		if err := st.Ping(ctx); err == nil {
			t.Errorf("%s: Ping succeeded", outage.name)
		}
		srv.Up(t)
		if err := st.Ping(ctx); err != nil {
			t.Errorf("after %s and Up: Ping = %v", outage.name, err)
		}
	}
	if srv.Endpoint != endpoint {
		t.Errorf("endpoint moved from %s to %s", endpoint, srv.Endpoint)
	}

	// Restart: same endpoint, empty server.
	srv.Restart(t)
	_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var nf *types.ResourceNotFoundException
	if err == nil || !errors.As(err, &nf) {
		t.Errorf("DescribeTable after Restart = %v; want ResourceNotFoundException (state wiped)", err)
	}
}

func TestStartFailureSaysWhy(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // neither moto_server nor python3
	saved := installOnce.err
	installOnce.Once, installOnce.err = sync.Once{}, nil
	t.Cleanup(func() { installOnce.Once, installOnce.err = sync.Once{}, saved })
	_, err := startProcess(1)
	if err == nil {
		t.Fatal("startProcess without moto or python succeeded")
	}
	for _, want := range []string{"cannot start moto server", "moto_server: not on PATH", "python3 -m moto.server: not on PATH", "pip install"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestUniqueName(t *testing.T) {
	a, b := UniqueName(t, "keyway"), UniqueName(t, "keyway")
	if a == b || !strings.HasPrefix(a, "keyway-TestUniqueName-") {
		t.Errorf("UniqueName = %q, %q; want distinct keyway-TestUniqueName-N names", a, b)
	}
}
