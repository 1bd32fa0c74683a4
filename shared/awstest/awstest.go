// Package awstest runs a real DynamoDB + SSM (+ KMS) API server on loopback
// for tests: moto server (https://github.com/getmoto/moto), one per test
// binary, reached by the AWS SDK through its standard endpoint variables.
// Nothing in the stores knows it is under test.
//
// Use it from a package's TestMain:
//
//	func TestMain(m *testing.M) { awstest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		srv := awstest.Start(t)                 // shared server, env set
//		client, table := awstest.NewTable(t, srv) // fresh Keyway table
//		...
//	}
//
// When moto server cannot be found or started (after trying `moto_server`,
// `python3 -m moto.server` and `python3 -m pip install 'moto[server]'`), the
// test fails with the reason; it never skips.
package awstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keywaygw/keyway/shared/dynamostore"
	"github.com/keywaygw/keyway/shared/testnet"
)

// Region is the region every test client and the environment use.
const Region = "us-east-1"

// Dummy credentials: moto accepts any, the SDK insists on some.
const (
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
)

var shared struct {
	mu      sync.Mutex
	inMain  bool
	started bool
	srv     *Server
	err     error
}

// Main runs the package's tests and stops the shared server afterwards.
// Call it from TestMain; it returns m.Run's result to the test wrapper:
//
//	func TestMain(m *testing.M) { awstest.Main(m) }
//
// The server starts lazily, on the first Start, so a run that selects no AWS
// test does not pay for it.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	defer func() {
		shared.mu.Lock()
		defer shared.mu.Unlock()
		if shared.srv != nil {
			shared.srv.stop()
		}
	}()
	m.Run()
}

// Start returns the test binary's shared server, starting it on first use,
// and points the process environment at it (see Env). It fails tb with the
// reason when the server cannot run. Tests that take the shared server down
// (Down, Hang, Restart) must not run in parallel with others; use New for a
// private server instead.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("awstest: -short skips tests that need moto server (make test runs them)")
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		tb.Fatalf("awstest: the shared moto server needs TestMain: func TestMain(m *testing.M) { awstest.Main(m) }")
	}
	if !shared.started {
		shared.started = true
		shared.srv, shared.err = start()
		if shared.err == nil {
			for k, v := range shared.srv.Env() {
				os.Setenv(k, v)
			}
			os.Unsetenv("AWS_PROFILE")
			os.Unsetenv("AWS_SESSION_TOKEN")
		}
	}
	if shared.err != nil {
		tb.Fatalf("awstest: %v", shared.err)
	}
	return shared.srv
}

// New starts a private server for tb, stopped when tb ends. It does not
// touch the process environment: build clients with Server.Config.
func New(tb testing.TB) *Server {
	tb.Helper()
	srv, err := start()
	if err != nil {
		tb.Fatalf("awstest: %v", err)
	}
	tb.Cleanup(srv.stop)
	return srv
}

// Server is a moto server behind a loopback TCP front that can refuse or
// stall connections, so outage tests can take the endpoint away and bring
// it back on the same port with the server's state intact.
type Server struct {
	// Endpoint is the URL clients use: "http://127.0.0.1:PORT".
	Endpoint string

	front   *front
	mu      sync.Mutex
	proc    *process
	backend int // moto's own port, behind the front
}

// Env is the environment that points the AWS SDK (and the aws CLI) at s:
// AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SSM,
// AWS_ENDPOINT_URL_KMS, AWS_REGION, AWS_DEFAULT_REGION, dummy
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_EC2_METADATA_DISABLED=true,
// and AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE set to a missing file so
// a developer's ~/.aws cannot leak into tests. Pass it to subprocesses (the
// bootstrap binary, scripts) with os.Environ().
func (s *Server) Env() map[string]string {
	nofile := filepath.Join(os.TempDir(), "awstest-no-such-aws-config")
	return map[string]string{
		"AWS_ENDPOINT_URL":            s.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB":   s.Endpoint,
		"AWS_ENDPOINT_URL_SSM":        s.Endpoint,
		"AWS_ENDPOINT_URL_KMS":        s.Endpoint,
		"AWS_REGION":                  Region,
		"AWS_DEFAULT_REGION":          Region,
		"AWS_ACCESS_KEY_ID":           AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             nofile,
		"AWS_SHARED_CREDENTIALS_FILE": nofile,
	}
}

// Environ is os.Environ() with Env applied, for exec.Cmd.Env.
func (s *Server) Environ() []string {
	env := os.Environ()
	for k, v := range s.Env() {
		env = append(env, k+"="+v)
	}
	return env
}

// Config is an SDK config that reaches s explicitly (base endpoint, region,
// static dummy credentials), independent of the process environment.
func (s *Server) Config() aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
	}
}

// DynamoDB returns a client for s with dynamostore's bounded retries, but a
// generous 30s per attempt: the server answers one request at a time, so a
// burst of concurrent calls queues. optFns apply last (a test of timeouts
// passes dynamostore.ClientOptions with its own bounds).
func (s *Server) DynamoDB(optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	queued := dynamostore.ClientOptions(dynamostore.Retry{AttemptTimeout: 30 * time.Second})
	return dynamostore.NewClient(s.Config(), append([]func(*dynamodb.Options){queued}, optFns...)...)
}

// SSM returns an SSM client for s.
func (s *Server) SSM(optFns ...func(*ssm.Options)) *ssm.Client {
	return ssm.NewFromConfig(s.Config(), optFns...)
}

// Down makes the endpoint refuse connections (and cuts open ones), as if the
// server had stopped. The server keeps its state; Up brings it back on the
// same port.
func (s *Server) Down(tb testing.TB) {
	tb.Helper()
	s.front.down()
}

// Hang makes the endpoint accept connections and never answer, as an
// unreachable network does: clients fail by their own timeouts. Up ends it.
func (s *Server) Hang(tb testing.TB) {
	tb.Helper()
	s.front.hang()
}

// Up undoes Down or Hang: the endpoint answers again, same port, same state.
func (s *Server) Up(tb testing.TB) {
	tb.Helper()
	if err := s.front.up(); err != nil {
		tb.Fatalf("awstest: bringing endpoint back: %v", err)
	}
}

// Restart stops the moto process and starts a new one behind the same
// endpoint: every table and parameter is gone, as after a real restart.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc.stop()
	p, err := startProcess(s.backend)
	if err != nil {
		tb.Fatalf("awstest: restarting moto server: %v", err)
	}
	s.proc = p
}

// Reset drops all of moto's state (every table, parameter and KMS key)
// without a restart.
func (s *Server) Reset(tb testing.TB) {
	tb.Helper()
	resp, err := http.Post(s.Endpoint+"/moto-api/reset", "application/json", nil)
	if err != nil {
		tb.Fatalf("awstest: resetting moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("awstest: resetting moto: status %s", resp.Status)
	}
}

func (s *Server) stop() {
	s.front.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc.stop()
}

func start() (*Server, error) {
	var (
		backend int
		p       *process
		err     error
	)
	for range 3 { // a port free when picked can be bound by another test binary first
		if backend, err = freePort(); err != nil {
			return nil, err
		}
		if p, err = startProcess(backend); err == nil || !testnet.AddrInUse(err.Error()) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	f, err := newFront(fmt.Sprintf("127.0.0.1:%d", backend))
	if err != nil {
		p.stop()
		return nil, err
	}
	return &Server{Endpoint: "http://" + f.addr, front: f, proc: p, backend: backend}, nil
}

func freePort() (int, error) {
	addr, err := testnet.FreeAddr()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}

var (
	nameSeq    atomic.Int64
	notNameish = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)
)

// UniqueName returns a name no other call in this process returns, built from
// prefix and tb's name: valid as a DynamoDB table name and as an SSM path
// segment.
func UniqueName(tb testing.TB, prefix string) string {
	name := notNameish.ReplaceAllString(tb.Name(), "_")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return prefix + "-" + strings.Trim(name, "_") + "-" + strconv.FormatInt(nameSeq.Add(1), 10)
}

// NewTable creates a fresh Keyway table (dynamostore.CreateTable: the
// template's definition) on s and returns a client for s with bounded
// retries and the table's name. The table is deleted when tb ends.
func NewTable(tb testing.TB, s *Server) (*dynamodb.Client, string) {
	tb.Helper()
	client := s.DynamoDB()
	table := UniqueName(tb, "keyway")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dynamostore.CreateTable(ctx, client, table); err != nil {
		tb.Fatalf("awstest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Best effort: the server may be down at the end of an outage test.
		_, _ = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	return client, table
}

// PutParameter writes an SSM parameter on s (overwriting), as a SecureString
// encrypted with the default aws/ssm key when secure is set.
func PutParameter(tb testing.TB, s *Server, name, value string, secure bool) {
	tb.Helper()
	typ := ssmtypes.ParameterTypeString
	if secure {
		typ = ssmtypes.ParameterTypeSecureString
	}
	tier := ssmtypes.ParameterTierStandard
	if len(value) > 4096 {
		tier = ssmtypes.ParameterTierAdvanced
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.SSM().PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String(value), Type: typ, Tier: tier, Overwrite: aws.Bool(true),
	})
	if err != nil {
		tb.Fatalf("awstest: putting ssm parameter %s: %v", name, err)
	}
}

// ParamPrefix returns a fresh SSM path prefix for tb ("/keyway-test/NAME-N"),
// so tests sharing a server do not see each other's parameters.
func ParamPrefix(tb testing.TB) string {
	return "/" + UniqueName(tb, "keyway-test")
}
