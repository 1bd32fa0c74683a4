package main

// End-to-end tests of the Lambda path: the real `bootstrap`, built as `sam
// build` builds it, runs under the AWS Lambda Runtime Interface Emulator
// (RIE) as a plain process, reads its config and secrets from SSM and its
// keys from DynamoDB (moto server, shared/awstest), and is driven with API
// Gateway event JSON (testdata/rest_v1_event.json, testdata/http_v2_event.json)
// POSTed to the RIE's invoke endpoint. A real httptest upstream records what
// it received.
//
// What the RIE does (read from its source at the pinned version,
// internal/lambda/rie and internal/lambda/rapidcore):
//
//   - CLI: `aws-lambda-rie [--log-level L] [--runtime-interface-emulator-address
//     HOST:PORT] [--runtime-api-address HOST:PORT] BOOTSTRAP [ARGS…]`; invoke
//     with POST /2015-03-31/functions/function/invocations. The Runtime API
//     defaults to 127.0.0.1:9001 and the invoke endpoint to 0.0.0.0:8080, so
//     both are set to free loopback ports here. The function starts on the
//     first invoke (that invoke carries the cold start). X-Amzn-RequestId on
//     the invoke sets the invocation id.
//   - Streaming: aws-lambda-go (v1.55.1) posts a streaming response as a
//     chunked /response body with Content-Type
//     application/vnd.awslambda.http-integration-response, declaring the
//     Lambda-Runtime-Function-Error-Type/-Body trailers (it sends no
//     Lambda-Runtime-Function-Response-Mode header). The RIE, invoked as
//     here (not a direct invoke), reads that body whole (io.ReadAll) and
//     returns it in one piece when it ends: the raw stream, i.e. the JSON
//     prelude, eight NUL bytes, the body, with HTTP 200. It ignores the
//     trailers, so a function error reported in them (how aws-lambda-go
//     reports a body that fails mid-stream) is invisible in what the RIE
//     returns: it looks like a complete 200.
//
// To see what the function actually tells the Lambda service, the bootstrap
// is started through `env AWS_LAMBDA_RUNTIME_API=<relay>`: a transparent
// relay in the test process forwards every Runtime API call to the RIE
// unchanged (body and trailers included) and records each invocation's
// /response or /error POST, with its trailers and body as they arrived. The
// relay also shows chunked delivery, which the RIE's buffering hides: a body
// chunk reaches the Runtime API before the upstream has sent the next one.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/awstest"
	"github.com/keywaygw/keyway/shared/testnet"
)

// ---------------------------------------------------------------------------
// Toolchain: the RIE and the bootstrap, once per test binary.

const (
	rieModule  = "github.com/aws/aws-lambda-runtime-interface-emulator"
	rieVersion = "v0.0.0-20261030222936-bef5c4ba774d"
	riePackage = rieModule + "/cmd/aws-lambda-rie@" + rieVersion
)

var lambdaTools struct {
	once      sync.Once
	rie       string
	bootstrap string
	dir       string
	took      time.Duration
	err       error
	logOnce   sync.Once
}

// lambdaToolchain returns the RIE binary (installed with go install when it
// is missing or another version) and the bootstrap binary. It fails, never
// skips, when either cannot be had.
func lambdaToolchain(t *testing.T) (rie, bootstrap string) {
	t.Helper()
	lambdaTools.once.Do(func() {
		start := time.Now()
		defer func() { lambdaTools.took = time.Since(start) }()
		if runtime.GOOS != "linux" {
			lambdaTools.err = fmt.Errorf("the Lambda end-to-end tests need Linux (the RIE runs the bootstrap as a Linux process); this is %s", runtime.GOOS)
			return
		}
		if lambdaTools.rie, lambdaTools.err = installRIE(); lambdaTools.err != nil {
			return
		}
		if lambdaTools.dir, lambdaTools.err = os.MkdirTemp("", "keyway-lambda-e2e-"); lambdaTools.err != nil {
			return
		}
		lambdaTools.bootstrap, lambdaTools.err = buildBootstrap(lambdaTools.dir)
	})
	if lambdaTools.err != nil {
		t.Fatalf("Lambda toolchain: %v", lambdaTools.err)
	}
	lambdaTools.logOnce.Do(func() {
		t.Logf("Lambda toolchain (RIE check/install, bootstrap build): %v", lambdaTools.took.Round(time.Millisecond))
	})
	return lambdaTools.rie, lambdaTools.bootstrap
}

// removeLambdaToolchain deletes the bootstrap build; TestMain calls it.
func removeLambdaToolchain() {
	if lambdaTools.dir != "" {
		os.RemoveAll(lambdaTools.dir)
	}
}

// installRIE returns $(go env GOBIN or GOPATH/bin)/aws-lambda-rie at the
// pinned version, running `go install` (through the Go module proxy) when it
// is not there.
func installRIE() (string, error) {
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOBIN GOPATH: %v", err)
	}
	lines := strings.Split(string(out), "\n") // not TrimSpace: an empty GOBIN is an empty first line
	bin := strings.TrimSpace(lines[0])
	if bin == "" && len(lines) > 1 {
		if gopath := filepath.SplitList(strings.TrimSpace(lines[1])); len(gopath) > 0 {
			bin = filepath.Join(gopath[0], "bin")
		}
	}
	if bin == "" {
		return "", fmt.Errorf("cannot tell where go install puts binaries (go env printed %q)", out)
	}
	path := filepath.Join(bin, "aws-lambda-rie")
	if rieIsPinned(path) {
		return path, nil
	}
	cmd := exec.Command("go", "install", riePackage)
	cmd.Dir = os.TempDir() // outside this module: go install pkg@version ignores it anyway
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("the AWS Lambda Runtime Interface Emulator is not installed and `go install %s` failed: %v\n%s", riePackage, err, msg)
	}
	if !rieIsPinned(path) {
		return "", fmt.Errorf("`go install %s` succeeded but %s is not that version (is GOBIN on another path?)", riePackage, path)
	}
	return path, nil
}

func rieIsPinned(path string) bool {
	out, err := exec.Command("go", "version", "-m", path).Output()
	return err == nil && bytes.Contains(out, []byte(rieModule+"\t"+rieVersion+"\t"))
}

// buildBootstrap builds ./functions/gateway as the Makefile's
// build-GatewayFunction target does for `sam build` (BuildMethod: makefile):
// CGO_ENABLED=0, GOOS=linux, -trimpath, -ldflags='-s -w', -tags lambda.norpc,
// output named bootstrap. One difference: sam builds GOARCH=arm64 (the
// template's architecture); this builds for the machine running the test
// (runtime.GOARCH, amd64 in CI) so the RIE can exec it here.
func buildBootstrap(dir string) (string, error) {
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", "lambda.norpc", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building bootstrap: %v\n%s", err, msg)
	}
	return out, nil
}

// ---------------------------------------------------------------------------
// The Runtime API relay.

// runtimePost is one /response or /error POST the function made to the
// Runtime API, as it arrived.
type runtimePost struct {
	Kind        string // "response" or "error"
	ContentType string
	Body        []byte
	Trailer     http.Header
}

// runtimeRelay forwards the bootstrap's Runtime API calls to the RIE and
// records the POSTs.
type runtimeRelay struct {
	addr   string
	target string
	srv    *http.Server
	client *http.Client

	mu      sync.Mutex
	posts   map[string]runtimePost // by invocation id
	watches []*bodyWatch
}

// bodyWatch fires when a response body being POSTed contains needle.
type bodyWatch struct {
	needle []byte
	fired  chan struct{}
	done   bool
}

func startRuntimeRelay(t *testing.T, target string) *runtimeRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &runtimeRelay{
		addr:   ln.Addr().String(),
		target: "http://" + target,
		client: &http.Client{Transport: &http.Transport{DisableCompression: true}},
		posts:  map[string]runtimePost{},
	}
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(ln)
	return r
}

// close cuts the bootstrap's long-polling /next; aws-lambda-go then exits.
func (r *runtimeRelay) close() { r.srv.Close() }

func (r *runtimeRelay) ServeHTTP(w http.ResponseWriter, in *http.Request) {
	var (
		body   io.Reader = http.NoBody
		rec              = &relayBuffer{relay: r}
		bodyIn           = make(chan struct{})
	)
	if in.ContentLength != 0 {
		body = &eofSignal{r: io.TeeReader(in.Body, rec), eof: bodyIn}
	} else {
		close(bodyIn)
	}
	out, err := http.NewRequestWithContext(in.Context(), in.Method, r.target+in.URL.RequestURI(), body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = in.Header.Clone()
	out.Header.Del("Trailer")
	out.Header.Del("Transfer-Encoding")
	out.ContentLength = in.ContentLength
	// The same map: net/http fills in in.Trailer when the body reaches EOF,
	// and the transport writes out.Trailer after the body.
	out.Trailer = in.Trailer
	resp, err := r.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()

	if in.Method == http.MethodPost {
		rest, ok := strings.CutPrefix(in.URL.Path, "/2018-06-01/runtime/invocation/")
		if id, kind, found := strings.Cut(rest, "/"); ok && found && (kind == "response" || kind == "error") {
			select {
			case <-bodyIn:
			case <-time.After(10 * time.Second):
			}
			r.mu.Lock()
			r.posts[id] = runtimePost{
				Kind:        kind,
				ContentType: in.Header.Get("Content-Type"),
				Body:        bytes.Clone(rec.buf.Bytes()),
				Trailer:     in.Trailer.Clone(),
			}
			r.mu.Unlock()
		}
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// post returns what the function POSTed for invocation id, waiting briefly:
// the RIE may answer the invoke before the relay has recorded the POST.
func (r *runtimeRelay) post(id string) (runtimePost, bool) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		p, ok := r.posts[id]
		r.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return p, ok
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watch returns a channel closed as soon as a response body arriving at the
// Runtime API contains needle.
func (r *runtimeRelay) watch(needle string) <-chan struct{} {
	w := &bodyWatch{needle: []byte(needle), fired: make(chan struct{})}
	r.mu.Lock()
	r.watches = append(r.watches, w)
	r.mu.Unlock()
	return w.fired
}

type relayBuffer struct {
	relay *runtimeRelay
	buf   bytes.Buffer
}

func (b *relayBuffer) Write(p []byte) (int, error) {
	b.relay.mu.Lock()
	defer b.relay.mu.Unlock()
	b.buf.Write(p)
	for _, w := range b.relay.watches {
		if !w.done && bytes.Contains(b.buf.Bytes(), w.needle) {
			w.done = true
			close(w.fired)
		}
	}
	return len(p), nil
}

type eofSignal struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// ---------------------------------------------------------------------------
// The function under the RIE.

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lambdaFunc is one bootstrap process under one RIE process.
type lambdaFunc struct {
	mode      string
	invokeURL string
	relay     *runtimeRelay
	logs      *lockedBuffer // the RIE's and the bootstrap's stdout and stderr
	seq       atomic.Int64
	coldStart time.Duration // the first invoke's round trip, init included
}

// startLambda runs the bootstrap under the RIE with env on top of the moto
// environment, and makes the first invoke (GET /health) so that the cold
// start is not charged to a test's first call.
func startLambda(t *testing.T, srv *awstest.Server, mode string, env map[string]string) *lambdaFunc {
	t.Helper()
	rie, bootstrap := lambdaToolchain(t)
	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Fatalf("env(1) not found: %v", err)
	}
	var f *lambdaFunc
	for attempt := 1; f == nil; attempt++ {
		// A port free when picked may be bound by another test binary before
		// the RIE binds it; pick again then.
		f = launchRIE(t, srv, rie, envBin, bootstrap, mode, env, attempt == 3)
	}

	start := time.Now()
	resp := f.call(t, "v1", apiRequest{Method: "GET", Path: "/health"})
	f.coldStart = time.Since(start)
	if resp.Status != http.StatusOK {
		t.Fatalf("%s: the first invoke (GET /health) answered %d %q; want 200; output:\n%s", mode, resp.Status, resp.Body, f.logs)
	}
	t.Logf("%s: RIE + bootstrap cold start, first invoke round trip: %v", mode, f.coldStart.Round(time.Millisecond))
	return f
}

// launchRIE starts the RIE with the bootstrap and waits until it listens. It
// returns nil when the RIE could not bind an address it was given, unless
// last, when that fails the test as any other start failure does.
func launchRIE(t *testing.T, srv *awstest.Server, rie, envBin, bootstrap, mode string, env map[string]string, last bool) *lambdaFunc {
	t.Helper()
	rieAddr, runtimeAddr := freeAddr(t), freeAddr(t)
	relay := startRuntimeRelay(t, runtimeAddr)
	t.Cleanup(relay.close) // runs after the RIE is stopped (cleanups are LIFO)

	cmd := exec.Command(rie,
		"--log-level", "error",
		"--runtime-interface-emulator-address", rieAddr,
		"--runtime-api-address", runtimeAddr,
		envBin, "AWS_LAMBDA_RUNTIME_API="+relay.addr, bootstrap)
	cmd.Dir = t.TempDir()
	cmd.Env = append(srv.Environ(),
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60",
		"AWS_LAMBDA_FUNCTION_NAME=keyway-e2e-"+mode,
		"KEYWAY_RESPONSE_MODE="+mode,
	)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	f := &lambdaFunc{mode: mode, invokeURL: "http://" + rieAddr + "/2015-03-31/functions/function/invocations", relay: relay, logs: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = f.logs, f.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the RIE: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGTERM: the RIE resets the sandbox (stopping the bootstrap) and exits.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", rieAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			if !last && testnet.AddrInUse(f.logs.String()) {
				t.Logf("the RIE could not bind %s or %s; trying other ports", rieAddr, runtimeAddr)
				return nil
			}
			t.Fatalf("the RIE exited before listening; output:\n%s", f.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the RIE did not listen on %s within 10s; output:\n%s", rieAddr, f.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	return f
}

// invocation is one raw invoke of the RIE.
type invocation struct {
	ID     string
	Status int    // the RIE's HTTP status
	Raw    []byte // what the RIE returned
	Post   runtimePost
	Posted bool // the relay saw the function's /response or /error POST
	Took   time.Duration
}

func (f *lambdaFunc) invoke(t *testing.T, event []byte) invocation {
	t.Helper()
	inv, err := f.tryInvoke(event)
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, f.logs)
	}
	return inv
}

// tryInvoke is invoke for goroutines other than the test's.
func (f *lambdaFunc) tryInvoke(event []byte) (invocation, error) {
	id := fmt.Sprintf("e2e-%s-%d", f.mode, f.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.invokeURL, bytes.NewReader(event))
	if err != nil {
		return invocation{}, err
	}
	req.Header.Set("X-Amzn-RequestId", id)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return invocation{}, fmt.Errorf("invoking the RIE: %w", err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return invocation{}, fmt.Errorf("reading the RIE's answer: %w", err)
	}
	inv := invocation{ID: id, Status: resp.StatusCode, Raw: raw, Took: time.Since(start)}
	inv.Post, inv.Posted = f.relay.post(id)
	return inv, nil
}

// call sends req as an API Gateway event of shape ("v1" REST API or "v2"
// HTTP API) and returns the response API Gateway would build from the
// function's answer. Every call here is one the gateway answers itself, so
// it also checks that the invocation succeeded as a Lambda invocation (a
// /response, no function error): expected failures are responses.
func (f *lambdaFunc) call(t *testing.T, shape string, req apiRequest) lambdaResponse {
	t.Helper()
	inv := f.invoke(t, buildEvent(t, shape, req))
	f.checkResponded(t, req.Method+" "+req.Path, inv)
	if f.mode == "stream" {
		return parseStream(t, inv.Raw)
	}
	return parseBuffered(t, shape, inv.Raw)
}

// checkResponded checks that inv succeeded as a Lambda invocation: the RIE
// answered 200, the function POSTed /response (not /error) without a
// function error in its trailers, the RIE returned exactly what was posted,
// and a stream-mode answer has the streaming integration's content type.
func (f *lambdaFunc) checkResponded(t *testing.T, what string, inv invocation) {
	t.Helper()
	if inv.Status != http.StatusOK {
		t.Fatalf("%s: the RIE answered HTTP %d %q; want 200 (a function that returned); output:\n%s", what, inv.Status, inv.Raw, f.logs)
	}
	if !inv.Posted {
		t.Fatalf("%s: the function's /response POST never reached the Runtime API", what)
	}
	if inv.Post.Kind != "response" {
		t.Errorf("%s: the function posted /%s %q; want /response (expected failures are responses, nil Lambda error)", what, inv.Post.Kind, inv.Post.Body)
	}
	if et := inv.Post.Trailer.Get("Lambda-Runtime-Function-Error-Type"); et != "" {
		t.Errorf("%s: the response ended with function error %q; want none", what, et)
	}
	if !bytes.Equal(inv.Raw, inv.Post.Body) {
		t.Errorf("%s: the RIE returned %d bytes, the function posted %d; want them equal", what, len(inv.Raw), len(inv.Post.Body))
	}
	if f.mode == "stream" {
		if ct := inv.Post.ContentType; ct != "application/vnd.awslambda.http-integration-response" {
			t.Errorf("%s: stream response content type %q; want application/vnd.awslambda.http-integration-response", what, ct)
		}
	}
}

// ---------------------------------------------------------------------------
// Events and responses.

// apiRequest is one client request to API Gateway.
type apiRequest struct {
	Method string
	Path   string      // as the client sent it, escapes and all: /v1/ocr/a%20b
	Query  string      // the raw query as the client sent it
	Header [][2]string // in order; a name may repeat
	Body   []byte
	Binary bool // API Gateway passes the body base64-encoded (a binary media type)
	// SamLocal (REST v1 only) shapes the event as `sam local start-api`
	// does: Path is already decoded, requestContext.path is the resource
	// path, requestTimeEpoch is in seconds.
	SamLocal bool
	// Stage (HTTP API v2 only) is a named stage on the execute-api domain:
	// API Gateway puts it in front of rawPath.
	Stage string
}

func (r apiRequest) with(h ...string) apiRequest {
	r.Header = slices.Clone(r.Header)
	for i := 0; i+1 < len(h); i += 2 {
		r.Header = append(r.Header, [2]string{h[i], h[i+1]})
	}
	return r
}

func bearer(key string) []string {
	if key == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + key}
}

func readTemplate(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("testdata/%s: %v", name, err)
	}
	return m
}

var eventSeq atomic.Int64

// buildEvent fills the testdata template of shape with req, the way API
// Gateway does:
//
//   - REST API (v1): path as sent (still percent-encoded) and
//     requestContext.path with the stage in front; headers in
//     multiValueHeaders (every value) and headers (the last value); the query
//     decoded and grouped by name in multiValueQueryStringParameters (order
//     of names lost) and queryStringParameters (the last value).
//   - HTTP API (v2): rawPath and rawQueryString as sent; lower-cased headers,
//     repeated ones joined with commas; the Cookie header moved to cookies;
//     queryStringParameters with repeated values comma-joined.
//
// Either way the body is base64 with isBase64Encoded when req.Binary.
func buildEvent(t *testing.T, shape string, req apiRequest) []byte {
	t.Helper()
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	n := eventSeq.Add(1)
	now := time.Now().UnixMilli()
	var body any // JSON null when there is none
	if req.Body != nil {
		if req.Binary {
			body = base64.StdEncoding.EncodeToString(req.Body)
		} else {
			body = string(req.Body)
		}
	}
	proxy := strings.TrimPrefix(req.Path, "/")

	switch shape {
	case "v1":
		e := readTemplate(t, "rest_v1_event.json")
		rc := e["requestContext"].(map[string]any)
		e["httpMethod"], rc["httpMethod"] = req.Method, req.Method
		e["path"] = req.Path
		rc["path"] = "/" + rc["stage"].(string) + req.Path
		e["pathParameters"] = map[string]any{"proxy": proxy}
		single := e["headers"].(map[string]any)
		multi := e["multiValueHeaders"].(map[string]any)
		for _, h := range req.Header {
			single[h[0]] = h[1]
			prev, _ := multi[h[0]].([]any)
			multi[h[0]] = append(prev, h[1])
		}
		if req.Query != "" {
			q, err := url.ParseQuery(req.Query)
			if err != nil {
				t.Fatalf("query %q: %v", req.Query, err)
			}
			qs, qm := map[string]any{}, map[string]any{}
			for k, v := range q {
				qs[k] = v[len(v)-1]
				qm[k] = v
			}
			e["queryStringParameters"], e["multiValueQueryStringParameters"] = qs, qm
		}
		e["body"], e["isBase64Encoded"] = body, req.Binary
		rc["requestTimeEpoch"] = now
		if req.SamLocal {
			rc["path"] = "/{proxy+}"
			rc["requestTimeEpoch"] = now / 1000
		}
		rc["requestId"] = fmt.Sprintf("e2e-v1-%d", n)
		out, _ := json.Marshal(e)
		return out

	case "v2":
		e := readTemplate(t, "http_v2_event.json")
		rc := e["requestContext"].(map[string]any)
		rh := rc["http"].(map[string]any)
		rh["method"] = req.Method
		raw := req.Path
		if req.Stage != "" {
			rc["stage"] = req.Stage
			raw = "/" + req.Stage + raw
		}
		e["rawPath"] = raw
		decoded, err := url.PathUnescape(raw)
		if err != nil {
			decoded = raw
		}
		rh["path"] = decoded
		e["pathParameters"] = map[string]any{"proxy": proxy}
		headers := e["headers"].(map[string]any)
		var cookies []any
		for _, h := range req.Header {
			name := strings.ToLower(h[0])
			if name == "cookie" {
				for c := range strings.SplitSeq(h[1], "; ") {
					cookies = append(cookies, c)
				}
				continue
			}
			if prev, ok := headers[name].(string); ok {
				headers[name] = prev + "," + h[1]
			} else {
				headers[name] = h[1]
			}
		}
		if cookies != nil {
			e["cookies"] = cookies
		}
		e["rawQueryString"] = req.Query
		if req.Query != "" {
			q, err := url.ParseQuery(req.Query)
			if err != nil {
				t.Fatalf("query %q: %v", req.Query, err)
			}
			qs := map[string]any{}
			for k, v := range q {
				qs[k] = strings.Join(v, ",")
			}
			e["queryStringParameters"] = qs
		}
		if body != nil {
			e["body"] = body
		}
		e["isBase64Encoded"] = req.Binary
		rc["timeEpoch"] = now
		rc["requestId"] = fmt.Sprintf("e2e-v2-%d", n)
		out, _ := json.Marshal(e)
		return out
	}
	t.Fatalf("unknown event shape %q", shape)
	return nil
}

// lambdaResponse is the HTTP response API Gateway would send, decoded from
// the function's answer.
type lambdaResponse struct {
	Status  int
	Header  http.Header
	Cookies []string
	Body    []byte
	Base64  bool   // buffered: the body came base64-encoded
	Prelude []byte // stream: the JSON prelude as sent
}

// preludeEnd separates a streaming response's JSON prelude from its body.
var preludeEnd = []byte{0, 0, 0, 0, 0, 0, 0, 0}

// parseStream splits the raw stream the RIE returned: JSON prelude, eight
// NUL bytes, body. JSON cannot hold a raw NUL byte, so the first eight NULs
// end the prelude.
func parseStream(t *testing.T, raw []byte) lambdaResponse {
	t.Helper()
	head, body, ok := bytes.Cut(raw, preludeEnd)
	if !ok {
		t.Fatalf("stream response has no eight-NUL prelude separator: %q", truncate(raw))
	}
	var p struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Cookies           []string            `json:"cookies"`
	}
	dec := json.NewDecoder(bytes.NewReader(head))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		t.Fatalf("stream prelude %q is not one JSON object of statusCode/headers/multiValueHeaders/cookies: %v", head, err)
	}
	h := http.Header{}
	for k, v := range p.Headers {
		h.Add(k, v)
	}
	for k, vs := range p.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return lambdaResponse{Status: p.StatusCode, Header: h, Cookies: p.Cookies, Body: body, Prelude: head}
}

func parseBuffered(t *testing.T, shape string, raw []byte) lambdaResponse {
	t.Helper()
	var r struct {
		StatusCode        int                 `json:"statusCode"`
		Headers           map[string]string   `json:"headers"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
		Cookies           []string            `json:"cookies"`
		Body              string              `json:"body"`
		IsBase64Encoded   bool                `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("buffered %s response is not JSON: %v: %q", shape, err, truncate(raw))
	}
	if shape == "v1" && r.Cookies != nil {
		t.Errorf("REST API response has a cookies field; want Set-Cookie in multiValueHeaders")
	}
	h := http.Header{}
	for k, v := range r.Headers {
		h.Add(k, v)
	}
	for k, vs := range r.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	body := []byte(r.Body)
	if r.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			t.Fatalf("buffered body flagged base64 is not base64: %v", err)
		}
		body = b
	}
	return lambdaResponse{Status: r.StatusCode, Header: h, Cookies: r.Cookies, Body: body, Base64: r.IsBase64Encoded}
}

func truncate(b []byte) []byte {
	if len(b) > 600 {
		return b[:600]
	}
	return b
}

// jsonBody decodes a JSON response body.
func (r lambdaResponse) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d body %q is not JSON: %v", r.Status, truncate(r.Body), err)
	}
	return m
}

// wantEnvelope checks r is status code with the LiteLLM error envelope.
func wantEnvelope(t *testing.T, what string, r lambdaResponse, code int) {
	t.Helper()
	if r.Status != code {
		t.Errorf("%s: got status %d %q; want %d", what, r.Status, truncate(r.Body), code)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: got Content-Type %q; want application/json", what, ct)
	}
	env, _ := r.json(t)["error"].(map[string]any)
	if env == nil || env["code"] != strconv.Itoa(code) || env["message"] == "" || env["type"] == "" {
		t.Errorf("%s: got body %q; want the {\"error\": {message, type, code: %q}} envelope", what, r.Body, strconv.Itoa(code))
	}
}

// ---------------------------------------------------------------------------
// The upstream.

type upstreamRequest struct {
	Method     string
	RequestURI string // the request target exactly as it arrived
	Path       string // escaped path
	RawQuery   string
	Header     http.Header
	Body       []byte
}

const upstreamReply = `{"data":[{"text":"ok","note":"héllo, wörld"}]}`

// Cookies the /rich route sets; the first has a comma in its Expires.
var richCookies = []string{
	"session=abc123; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly",
	"theme=dark; Path=/",
}

const richBody = `{"created":true,"text":"line one\nline two","emoji":"🙂"}`

// lambdaUpstream records every request and answers by the path after /up:
//
//	/binary  200, application/octet-stream, bytes 0..255
//	/rich    201, JSON, a two-valued header, two Set-Cookie
//	/sse     two server-sent events, the second only after release
//	/empty   204, no body
//	/break   a chunked event stream cut off after its first event
//	else     200, upstreamReply
type lambdaUpstream struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []upstreamRequest
	release chan struct{}
}

func newLambdaUpstream(t *testing.T) *lambdaUpstream {
	u := &lambdaUpstream{release: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *lambdaUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, upstreamRequest{r.Method, r.RequestURI, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
	u.mu.Unlock()

	switch strings.TrimPrefix(r.URL.EscapedPath(), "/up") {
	case "/binary":
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(allBytes())
	case "/rich":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header()["X-Upstream-Multi"] = []string{"a", "b, c"}
		for _, c := range richCookies {
			w.Header().Add("Set-Cookie", c)
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, richBody)
	case "/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-u.release:
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
		io.WriteString(w, "data: two\n\n")
	case "/empty":
		w.Header().Set("X-Upstream", "empty")
		w.WriteHeader(http.StatusNoContent)
	case "/break":
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: partial\n\n")
		w.(http.Flusher).Flush()
		// Chunked, so the cut is visible only as a missing last chunk.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, upstreamReply)
	}
}

func (u *lambdaUpstream) all() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// ---------------------------------------------------------------------------
// The environment: moto SSM + DynamoDB, an upstream, both functions.

// lambdaPath is one way an API Gateway request reaches the gateway.
type lambdaPath struct {
	name  string
	mode  string // KEYWAY_RESPONSE_MODE
	shape string // event payload: v1 (REST API) or v2 (HTTP API)
}

// Stream mode serves the REST API's streaming integration (v1 events only);
// buffered mode serves both event shapes.
var lambdaPaths = []lambdaPath{
	{"stream/rest-v1", "stream", "v1"},
	{"buffered/rest-v1", "buffered", "v1"},
	{"buffered/http-v2", "buffered", "v2"},
}

type lambdaEnv struct {
	up     *lambdaUpstream
	master string // KEYWAY_MASTER_KEY, from SSM
	secret string // NVDEV_API_KEY, the upstream's own credential, from SSM
	fns    map[string]*lambdaFunc
}

// closedAddr is a loopback address nothing listens on: connections are refused.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newLambdaEnv puts a config and its secrets into moto SSM and a fresh table
// into moto DynamoDB, and starts one function per mode, configured the way
// the SAM template configures it.
func newLambdaEnv(t *testing.T, modes ...string) *lambdaEnv {
	t.Helper()
	srv := awstest.Start(t)
	_, table := awstest.NewTable(t, srv)
	prefix := awstest.ParamPrefix(t)
	e := &lambdaEnv{
		up:     newLambdaUpstream(t),
		master: "sk-lambda-master-" + randomHex(12),
		secret: "nvapi-lambda-upstream-" + randomHex(12),
		fns:    map[string]*lambdaFunc{},
	}
	config := `
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /v1/ocr
      target: ` + e.up.URL + `/up
      include_subpath: true
      forward_headers: true
      auth: true
      headers:
        Authorization: "Bearer os.environ/NVDEV_API_KEY"
      cost_per_request: 0.01
    - path: /v1/down
      target: http://` + closedAddr(t) + `
      include_subpath: true
      auth: true
`
	awstest.PutParameter(t, srv, prefix+"/config", config, false)
	awstest.PutParameter(t, srv, prefix+"/secrets/KEYWAY_MASTER_KEY", e.master, true)
	awstest.PutParameter(t, srv, prefix+"/secrets/NVDEV_API_KEY", e.secret, true)
	env := map[string]string{
		"KEYWAY_CONFIG":             "ssm:" + prefix + "/config",
		"KEYWAY_STORE":              "dynamodb:" + table,
		"KEYWAY_SECRETS_SSM_PREFIX": prefix + "/secrets",
		// Empty, so both secrets can only come from SSM.
		"KEYWAY_MASTER_KEY": "",
		"NVDEV_API_KEY":     "",
	}
	for _, m := range modes {
		e.fns[m] = startLambda(t, srv, m, env)
	}
	return e
}

func (e *lambdaEnv) call(t *testing.T, p lambdaPath, req apiRequest) lambdaResponse {
	t.Helper()
	return e.fns[p.mode].call(t, p.shape, req)
}

// newUser creates user id and a key for it through the admin API on path p,
// with the master key, and returns the key.
func (e *lambdaEnv) newUser(t *testing.T, p lambdaPath, id string) string {
	t.Helper()
	r := e.call(t, p, apiRequest{Method: "POST", Path: "/user/new",
		Body: []byte(`{"user_id": "` + id + `", "user_email": "` + id + `@example.com", "user_role": "internal_user"}`)}.
		with("Content-Type", "application/json").with(bearer(e.master)...))
	if r.Status != http.StatusOK {
		t.Fatalf("/user/new: got %d %q; want 200", r.Status, r.Body)
	}
	r = e.call(t, p, apiRequest{Method: "POST", Path: "/key/generate", Body: []byte(`{"user_id": "` + id + `"}`)}.
		with("Content-Type", "application/json").with(bearer(e.master)...))
	if r.Status != http.StatusOK {
		t.Fatalf("/key/generate: got %d %q; want 200", r.Status, r.Body)
	}
	key, _ := r.json(t)["key"].(string)
	if !strings.HasPrefix(key, "sk-") {
		t.Fatalf("/key/generate returned key %q; want sk-…", key)
	}
	return key
}

// checkNoSecrets fails when any secret appears in what an upstream received
// (headers, request target, body) other than the upstream's own credential
// in Authorization, or in any function's output.
func (e *lambdaEnv) checkNoSecrets(t *testing.T, secrets ...string) {
	t.Helper()
	callerKeys := append([]string{e.master}, secrets...)
	for i, r := range e.up.all() {
		for name, vs := range r.Header {
			for _, v := range vs {
				for _, s := range callerKeys {
					if strings.Contains(v, s) {
						t.Errorf("upstream request %d (%s): header %s carries a caller's key", i, r.RequestURI, name)
					}
				}
			}
			if strings.HasPrefix(strings.ToLower(name), "x-golambdaproxy") {
				t.Errorf("upstream request %d (%s): got header %s; want no X-GoLambdaProxy-* header", i, r.RequestURI, name)
			}
		}
		for _, s := range callerKeys {
			if strings.Contains(r.RequestURI, s) || bytes.Contains(r.Body, []byte(s)) {
				t.Errorf("upstream request %d: request target or body carries a caller's key", i)
			}
		}
	}
	for mode, f := range e.fns {
		out := f.logs.String()
		for _, s := range append(callerKeys, e.secret) {
			if strings.Contains(out, s) {
				t.Errorf("%s function output contains a secret (%s…)", mode, s[:8])
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Tests.

const lambdaSeedRoute = "/v1/ocr/company/community/nemoretriever-ocr-v1/v1/infer"
const lambdaSeedBody = `{"input": [{"type": "image_url", "url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAAABJRU5ErkJggg=="}]}`

// TestLambdaSeedScenario: the bug Keyway exists to fix (a normal user's
// valid key on an auth: true, include_subpath pass-through route), through
// the real bootstrap in stream mode (REST API) and buffered mode (REST API
// and HTTP API): /user/new and /key/generate with the master key, then the
// user's key and the master key reach the upstream with 200, no key and an
// unknown key get the 401 envelope without reaching it.
func TestLambdaSeedScenario(t *testing.T) {
	e := newLambdaEnv(t, "stream", "buffered")
	var keys []string
	for _, p := range lambdaPaths {
		t.Run(p.name, func(t *testing.T) {
			key := e.newUser(t, p, "seed-user-"+strings.ReplaceAll(p.name, "/", "-"))
			keys = append(keys, key)
			before := len(e.up.all())
			post := apiRequest{Method: "POST", Path: lambdaSeedRoute, Body: []byte(lambdaSeedBody)}.with("Content-Type", "application/json")

			for _, c := range []struct {
				who, key string
			}{{"user key", key}, {"master key", e.master}} {
				r := e.call(t, p, post.with(bearer(c.key)...))
				if r.Status != http.StatusOK || string(r.Body) != upstreamReply {
					t.Errorf("%s on the pass-through route: got %d %q; want 200 %q", c.who, r.Status, r.Body, upstreamReply)
				}
				if r.Base64 {
					t.Errorf("%s: a JSON response came base64-encoded; want text", c.who)
				}
			}
			wantEnvelope(t, "no key", e.call(t, p, post), http.StatusUnauthorized)
			wantEnvelope(t, "unknown key", e.call(t, p, post.with(bearer("sk-not-a-real-key-0000000000000000")...)), http.StatusUnauthorized)

			got := e.up.all()[before:]
			if len(got) != 2 {
				t.Fatalf("upstream got %d requests; want 2 (user key, master key)", len(got))
			}
			for i, r := range got {
				if want := "/up/company/community/nemoretriever-ocr-v1/v1/infer"; r.RequestURI != want {
					t.Errorf("request %d: upstream got target %q; want %q", i, r.RequestURI, want)
				}
				if string(r.Body) != lambdaSeedBody {
					t.Errorf("request %d: upstream got body %q; want it byte-exact", i, r.Body)
				}
				if got, want := r.Header.Values("Authorization"), []string{"Bearer " + e.secret}; !slices.Equal(got, want) {
					t.Errorf("request %d: upstream got Authorization %d value(s); want exactly the configured upstream credential", i, len(got))
				}
			}
		})
	}
	e.checkNoSecrets(t, keys...)
}

// TestLambdaStreamPrelude: in stream mode the function's answer is the
// streaming integration's wire format: a JSON prelude with statusCode,
// multiValueHeaders and cookies, eight NUL bytes, then the upstream's body
// byte for byte (text and binary).
func TestLambdaStreamPrelude(t *testing.T) {
	e := newLambdaEnv(t, "stream")
	p := lambdaPaths[0]
	key := e.newUser(t, p, "prelude-user")

	inv := e.fns["stream"].invoke(t, buildEvent(t, "v1", apiRequest{Method: "GET", Path: "/v1/ocr/rich"}.with(bearer(key)...)))
	e.fns["stream"].checkResponded(t, "GET /v1/ocr/rich", inv)
	head, body, ok := bytes.Cut(inv.Raw, preludeEnd)
	if !ok {
		t.Fatalf("got %q; want a JSON prelude, eight NUL bytes, the body", truncate(inv.Raw))
	}
	if !json.Valid(head) || head[0] != '{' {
		t.Errorf("got prelude %q; want one JSON object", head)
	}
	if string(body) != richBody {
		t.Errorf("got body %q; want %q byte-exact", body, richBody)
	}
	r := parseStream(t, inv.Raw)
	if r.Status != http.StatusCreated {
		t.Errorf("got prelude statusCode %d; want 201", r.Status)
	}
	if got, want := r.Header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("got Content-Type %q; want %q", got, want)
	}
	if got, want := r.Header.Values("X-Upstream-Multi"), []string{"a", "b, c"}; !slices.Equal(got, want) {
		t.Errorf("got X-Upstream-Multi %q; want %q (two values, the comma inside kept)", got, want)
	}
	if !slices.Equal(r.Cookies, richCookies) {
		t.Errorf("got prelude cookies %q; want %q, each whole", r.Cookies, richCookies)
	}
	if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 {
		t.Errorf("got Set-Cookie %q in the prelude's headers; want cookies only in \"cookies\"", sc)
	}

	// No body: the prelude and its separator, nothing after.
	inv = e.fns["stream"].invoke(t, buildEvent(t, "v1", apiRequest{Path: "/v1/ocr/empty"}.with(bearer(key)...)))
	e.fns["stream"].checkResponded(t, "GET /v1/ocr/empty", inv)
	if r := parseStream(t, inv.Raw); r.Status != http.StatusNoContent || len(r.Body) != 0 || r.Header.Get("X-Upstream") != "empty" {
		t.Errorf("204: got %d, X-Upstream %q, body %q; want 204, \"empty\", no bytes after the eight NULs", r.Status, r.Header.Get("X-Upstream"), r.Body)
	}

	// Binary: every byte value passes the stream unchanged.
	r = e.call(t, p, apiRequest{Path: "/v1/ocr/binary"}.with(bearer(key)...))
	if r.Status != http.StatusOK || !bytes.Equal(r.Body, allBytes()) {
		t.Errorf("binary: got %d with %d body bytes %q; want 200 and bytes 0..255 exactly", r.Status, len(r.Body), truncate(r.Body))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("binary: got Content-Type %q; want application/octet-stream", ct)
	}
	e.checkNoSecrets(t, key)
}

// TestLambdaStreamDeliversChunks: the RIE returns a stream only when it has
// ended, so this watches the Runtime API instead. The upstream sends one
// event and holds the second until the first has reached the Runtime API:
// the bootstrap forwards the stream as it is produced, not when it ends.
func TestLambdaStreamDeliversChunks(t *testing.T) {
	e := newLambdaEnv(t, "stream")
	p := lambdaPaths[0]
	key := e.newUser(t, p, "sse-user")
	f := e.fns["stream"]

	first := f.relay.watch("data: one\n\n")
	event := buildEvent(t, "v1", apiRequest{Path: "/v1/ocr/sse"}.with("Accept", "text/event-stream").with(bearer(key)...))
	type result struct {
		inv invocation
		err error
	}
	done := make(chan result, 1)
	go func() {
		inv, err := f.tryInvoke(event)
		done <- result{inv, err}
	}()
	start := time.Now()
	select {
	case <-first:
		t.Logf("first event reached the Runtime API %v after the invoke, while the upstream held the second", time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Errorf("the first event did not reach the Runtime API within 15s while the upstream held the second; want chunk-by-chunk delivery")
	}
	close(e.up.release)
	res := <-done
	if res.err != nil {
		t.Fatalf("%v; output:\n%s", res.err, f.logs)
	}
	inv := res.inv
	f.checkResponded(t, "GET /v1/ocr/sse", inv)
	r := parseStream(t, inv.Raw)
	if want := "data: one\n\ndata: two\n\n"; r.Status != http.StatusOK || string(r.Body) != want {
		t.Errorf("got %d %q; want 200 %q", r.Status, r.Body, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("got Content-Type %q; want text/event-stream", ct)
	}
}

// TestLambdaRequestFidelity: what API Gateway delivers reaches the upstream
// as the client sent it, on every Lambda path: escaped paths stay escaped
// (an encoded slash is refused with a 400, never a 5xx), repeated query keys
// keep their values in order, a header with commas stays one value, a
// base64 body arrives as the bytes it encodes, the caller's key never
// reaches the upstream in any credential header, and no X-GoLambdaProxy-*
// header (sent by a client or injected by the adapter library) reaches it.
func TestLambdaRequestFidelity(t *testing.T) {
	e := newLambdaEnv(t, "stream", "buffered")
	key := e.newUser(t, lambdaPaths[1], "fidelity-user")

	cases := []struct {
		name   string
		shapes string // "v1", "v2"; "" for both
		req    apiRequest
		status int
		check  func(t *testing.T, shape string, got upstreamRequest) // nil: the upstream must not be called
	}{
		{
			name:   "escaped path reaches the upstream as sent",
			req:    apiRequest{Path: "/v1/ocr/files/a%20b/100%25/%C3%A9t%C3%A9/x+y"}.with(bearer(key)...),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				if want := "/up/files/a%20b/100%25/%C3%A9t%C3%A9/x+y"; got.RequestURI != want {
					t.Errorf("got upstream target %q; want %q", got.RequestURI, want)
				}
			},
		},
		{
			name:   "decoded path from sam local start-api is re-escaped, not a 5xx",
			shapes: "v1",
			req:    apiRequest{Path: "/v1/ocr/files/100%/a b", SamLocal: true}.with(bearer(key)...),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				if want := "/up/files/100%25/a%20b"; got.RequestURI != want {
					t.Errorf("got upstream target %q; want %q", got.RequestURI, want)
				}
			},
		},
		{
			name:   "named stage on the execute-api domain is not part of the path",
			shapes: "v2",
			req:    apiRequest{Path: "/v1/ocr/files/a%20b", Stage: "prod"}.with(bearer(key)...),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				if want := "/up/files/a%20b"; got.RequestURI != want {
					t.Errorf("got upstream target %q; want %q", got.RequestURI, want)
				}
			},
		},
		{
			name:   "cookies arrive as one Cookie header",
			req:    apiRequest{Path: "/v1/ocr/cookies"}.with("Cookie", "session=s1; theme=dark").with(bearer(key)...),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				if vs, want := got.Header.Values("Cookie"), []string{"session=s1; theme=dark"}; !slices.Equal(vs, want) {
					t.Errorf("got upstream Cookie %q; want %q", vs, want)
				}
			},
		},
		{
			name:   "encoded slash is refused",
			req:    apiRequest{Path: "/v1/ocr/files/a%2Fb"}.with(bearer(key)...),
			status: http.StatusBadRequest,
		},
		{
			name:   "double-encoded slash is refused",
			req:    apiRequest{Path: "/v1/ocr/files/a%252Fb"}.with(bearer(key)...),
			status: http.StatusBadRequest,
		},
		{
			name:   "repeated query keys",
			req:    apiRequest{Path: "/v1/ocr/search", Query: "tag=b&q=x%20y%26z%3D1&tag=a&empty="}.with(bearer(key)...),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				if shape == "v2" {
					// HTTP API keeps the raw query; it is forwarded byte for byte.
					if want := "tag=b&q=x%20y%26z%3D1&tag=a&empty="; got.RawQuery != want {
						t.Errorf("got upstream query %q; want %q", got.RawQuery, want)
					}
				}
				// REST API passes parameters decoded and grouped by name, so
				// only the values, and their order per name, can survive.
				q, err := url.ParseQuery(got.RawQuery)
				if err != nil {
					t.Fatalf("upstream query %q: %v", got.RawQuery, err)
				}
				want := url.Values{"tag": {"b", "a"}, "q": {"x y&z=1"}, "empty": {""}}
				if len(q) != len(want) {
					t.Errorf("got upstream query %q; want parameters %v", got.RawQuery, want)
				}
				for k, v := range want {
					if !slices.Equal(q[k], v) {
						t.Errorf("got %s=%q from upstream query %q; want %q", k, q[k], got.RawQuery, v)
					}
				}
			},
		},
		{
			name: "comma-bearing headers stay one value",
			req: apiRequest{Path: "/v1/ocr/headers"}.with(
				"Accept", "application/json, text/event-stream",
				"X-Quoted", `"a, b", c`,
				"If-None-Match", `"x,y", "z"`,
			).with(bearer(key)...),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				for name, want := range map[string]string{
					"Accept":        "application/json, text/event-stream",
					"X-Quoted":      `"a, b", c`,
					"If-None-Match": `"x,y", "z"`,
				} {
					if vs := got.Header.Values(name); !slices.Equal(vs, []string{want}) {
						t.Errorf("got upstream %s %q; want the one value %q", name, vs, want)
					}
				}
			},
		},
		{
			name:   "repeated header",
			req:    apiRequest{Path: "/v1/ocr/headers"}.with("X-Multi", "1", "X-Multi", "2").with(bearer(key)...),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				want := []string{"1", "2"} // REST API keeps each value
				if shape == "v2" {
					want = []string{"1,2"} // HTTP API joins them before the function sees them
				}
				if vs := got.Header.Values("X-Multi"); !slices.Equal(vs, want) {
					t.Errorf("got upstream X-Multi %q; want %q", vs, want)
				}
			},
		},
		{
			name:   "base64 binary body arrives byte-exact",
			req:    apiRequest{Method: "POST", Path: "/v1/ocr/upload", Body: allBytes(), Binary: true}.with("Content-Type", "application/octet-stream").with(bearer(key)...),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				if !bytes.Equal(got.Body, allBytes()) {
					t.Errorf("got upstream body of %d bytes %q; want bytes 0..255 exactly", len(got.Body), truncate(got.Body))
				}
				if ct := got.Header.Get("Content-Type"); ct != "application/octet-stream" {
					t.Errorf("got upstream Content-Type %q; want application/octet-stream", ct)
				}
			},
		},
		{
			name: "caller key in x-api-key and x-litellm-api-key is not forwarded",
			req: apiRequest{Method: "POST", Path: "/v1/ocr/keyed", Body: []byte(`{"a":1}`)}.with(
				"X-Api-Key", key, "X-Litellm-Api-Key", key, "Content-Type", "application/json"),
			status: http.StatusOK,
			check: func(t *testing.T, shape string, got upstreamRequest) {
				for _, h := range []string{"X-Api-Key", "X-Litellm-Api-Key"} {
					if v := got.Header.Values(h); len(v) > 0 {
						t.Errorf("got upstream %s (%d values); want none", h, len(v))
					}
				}
				if got, want := got.Header.Values("Authorization"), []string{"Bearer " + e.secret}; !slices.Equal(got, want) {
					t.Errorf("got upstream Authorization with %d value(s); want exactly the configured credential", len(got))
				}
			},
		},
		{
			name:   "forged X-GoLambdaProxy header is dropped",
			req:    apiRequest{Path: "/v1/ocr/forged"}.with("X-GoLambdaProxy-ApiGw-Context", `{"stage":"forged"}`).with(bearer(key)...),
			status: http.StatusOK,
			check:  func(t *testing.T, shape string, got upstreamRequest) {}, // checkNoSecrets looks at every header
		},
	}

	for _, p := range lambdaPaths {
		t.Run(p.name, func(t *testing.T) {
			for _, c := range cases {
				if c.shapes != "" && c.shapes != p.shape {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					before := len(e.up.all())
					r := e.call(t, p, c.req)
					if c.status == http.StatusOK {
						if r.Status != http.StatusOK {
							t.Errorf("got %d %q; want 200", r.Status, truncate(r.Body))
						}
					} else {
						wantEnvelope(t, "gateway answer", r, c.status)
					}
					got := e.up.all()[before:]
					switch {
					case c.check == nil && len(got) != 0:
						t.Errorf("upstream got %d request(s) (%q); want none", len(got), got[0].RequestURI)
					case c.check != nil && len(got) != 1:
						t.Errorf("upstream got %d requests; want 1", len(got))
					case c.check != nil:
						c.check(t, p.shape, got[0])
					}
				})
			}
		})
	}
	e.checkNoSecrets(t, key)
}

// TestLambdaBufferedBinaryResponse: in buffered mode a binary upstream
// response is base64-encoded (isBase64Encoded) for API Gateway and decodes
// to the upstream's bytes; a JSON one stays text.
func TestLambdaBufferedBinaryResponse(t *testing.T) {
	e := newLambdaEnv(t, "buffered")
	key := e.newUser(t, lambdaPaths[1], "binary-user")
	for _, p := range lambdaPaths[1:] {
		t.Run(p.name, func(t *testing.T) {
			r := e.call(t, p, apiRequest{Path: "/v1/ocr/binary"}.with(bearer(key)...))
			if r.Status != http.StatusOK || !r.Base64 || !bytes.Equal(r.Body, allBytes()) {
				t.Errorf("binary: got %d, isBase64Encoded %v, %d body bytes; want 200, true, bytes 0..255 exactly", r.Status, r.Base64, len(r.Body))
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
				t.Errorf("binary: got Content-Type %q; want application/octet-stream", ct)
			}
			r = e.call(t, p, apiRequest{Path: "/v1/ocr/rich"}.with(bearer(key)...))
			if r.Status != http.StatusCreated || r.Base64 || string(r.Body) != richBody {
				t.Errorf("JSON: got %d, isBase64Encoded %v, %q; want 201, false, %q", r.Status, r.Base64, r.Body, richBody)
			}
			if p.shape == "v2" && !slices.Equal(r.Cookies, richCookies) {
				t.Errorf("HTTP API cookies: got %q; want %q", r.Cookies, richCookies)
			}
			if p.shape == "v1" && !slices.Equal(r.Header.Values("Set-Cookie"), richCookies) {
				t.Errorf("REST API Set-Cookie: got %q; want %q as separate values", r.Header.Values("Set-Cookie"), richCookies)
			}
		})
	}
}

// TestLambdaUpstreamBreaksMidStream: the upstream sends part of a chunked
// body and closes the connection. In stream mode the status and first bytes
// are already on their way, so the function must fail the invocation: its
// streamed /response ends with the Lambda-Runtime-Function-Error-Type and
// -Body trailers (what the Lambda service turns into a failed, truncated
// stream for API Gateway), not a clean end of a 200. In buffered mode
// nothing was sent yet: the caller gets a 502 envelope, as a response.
func TestLambdaUpstreamBreaksMidStream(t *testing.T) {
	e := newLambdaEnv(t, "stream", "buffered")
	key := e.newUser(t, lambdaPaths[1], "break-user")
	req := apiRequest{Path: "/v1/ocr/break"}.with(bearer(key)...)

	t.Run("stream/rest-v1", func(t *testing.T) {
		inv := e.fns["stream"].invoke(t, buildEvent(t, "v1", req))
		if !inv.Posted {
			t.Fatalf("the function's POST never reached the Runtime API; output:\n%s", e.fns["stream"].logs)
		}
		if inv.Post.Kind != "response" {
			t.Fatalf("the function posted /%s; want a streamed /response that ends with an error", inv.Post.Kind)
		}
		errType := inv.Post.Trailer.Get("Lambda-Runtime-Function-Error-Type")
		if errType == "" {
			t.Errorf("got trailers %v; want Lambda-Runtime-Function-Error-Type: a broken upstream must fail the invocation, not end a 200 cleanly", inv.Post.Trailer)
		}
		var fnErr struct {
			Message string `json:"errorMessage"`
			Type    string `json:"errorType"`
		}
		if raw, err := base64.StdEncoding.DecodeString(inv.Post.Trailer.Get("Lambda-Runtime-Function-Error-Body")); err != nil || json.Unmarshal(raw, &fnErr) != nil {
			t.Errorf("got Lambda-Runtime-Function-Error-Body %q; want base64 JSON", inv.Post.Trailer.Get("Lambda-Runtime-Function-Error-Body"))
		} else if !strings.Contains(fnErr.Message, "aborted mid-stream") || fnErr.Type != errType {
			t.Errorf("got function error %+v; want type %q and a message saying the response was aborted mid-stream", fnErr, errType)
		}

		r := parseStream(t, inv.Post.Body)
		if r.Status != http.StatusOK || string(r.Body) != "data: partial\n\n" {
			t.Errorf("got streamed %d %q; want the prelude's 200 and only the bytes the upstream sent", r.Status, r.Body)
		}
		// The RIE drops trailers (see the file comment): what it returns looks
		// like a complete 200. Recorded, not required.
		t.Logf("RIE answer to the broken stream: HTTP %d, %d bytes, identical to the POSTed stream: %v",
			inv.Status, len(inv.Raw), bytes.Equal(inv.Raw, inv.Post.Body))
	})
	for _, p := range lambdaPaths[1:] {
		t.Run(p.name, func(t *testing.T) {
			wantEnvelope(t, "broken upstream", e.call(t, p, req), http.StatusBadGateway)
		})
	}
	e.checkNoSecrets(t, key)
}

// TestLambdaUpstreamDown: an upstream that refuses connections is a 502
// envelope on every Lambda path, returned as a response (nil Lambda error),
// not a failed invocation.
func TestLambdaUpstreamDown(t *testing.T) {
	e := newLambdaEnv(t, "stream", "buffered")
	key := e.newUser(t, lambdaPaths[1], "down-user")
	for _, p := range lambdaPaths {
		t.Run(p.name, func(t *testing.T) {
			wantEnvelope(t, "upstream down", e.call(t, p, apiRequest{Method: "POST", Path: "/v1/down/x", Body: []byte(`{}`)}.with(bearer(key)...)), http.StatusBadGateway)
		})
	}
	e.checkNoSecrets(t, key)
}
