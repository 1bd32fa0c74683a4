package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/reqlog"
	"github.com/keywaygw/keyway/shared/route"
)

// testTimeout bounds every wait in these tests, so a broken proxy fails a
// test instead of hanging the package.
const testTimeout = 10 * time.Second

// received is what an upstream saw of one request.
type received struct {
	Method           string
	Host             string
	RequestURI       string
	Proto            string
	Header           http.Header
	Body             []byte
	ContentLength    int64
	TransferEncoding []string
}

// upstream is a real loopback HTTP server that records every request it
// receives (body included) before answering with respond.
type upstream struct {
	*httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	reqs []received
}

// newUpstream starts an upstream. respond may be nil (200, empty body); it
// gets the body already read.
func newUpstream(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, body []byte)) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, received{
			Method: r.Method, Host: r.Host, RequestURI: r.RequestURI, Proto: r.Proto,
			Header: r.Header.Clone(), Body: body, ContentLength: r.ContentLength,
			TransferEncoding: r.TransferEncoding,
		})
		u.mu.Unlock()
		if respond != nil {
			respond(w, r, body)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

// last returns the last recorded request.
func (u *upstream) last(t *testing.T) received {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("upstream received no request; want one")
	}
	return u.reqs[len(u.reqs)-1]
}

// endpoint builds a provisioned endpoint as config.Parse would.
func endpoint(t testing.TB, path, target string) *config.Endpoint {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("parsing target %q: %v", target, err)
	}
	return &config.Endpoint{
		Path: path, Target: u, IncludeSubpath: true, Auth: true,
		Methods: config.DefaultMethods, Headers: http.Header{}, Timeout: testTimeout,
	}
}

// gateway is a real loopback server standing in for the gateway: it
// classifies with the real route table, puts a reqlog entry in the context,
// wraps the ResponseWriter to record the status (as an access log does,
// with Unwrap so that Flush and full duplex reach the server) and calls
// Forward, then hands the finished entry to the test.
type gateway struct {
	*httptest.Server
	entries chan finished
}

// finished is what the gateway's access log would see of one request.
type finished struct {
	*reqlog.Entry
	Status int // as written to the ResponseWriter; 0 if nothing was
}

// statusWriter records the status a handler writes.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func newGateway(t *testing.T, p *Proxy, eps ...*config.Endpoint) *gateway {
	t.Helper()
	table := route.New(eps)
	g := &gateway{entries: make(chan finished, 128)}
	g.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry := &reqlog.Entry{}
		sw := &statusWriter{ResponseWriter: w}
		defer func() { g.entries <- finished{entry, sw.status} }() // also on ErrAbortHandler panics
		rt := table.Classify(r)
		if rt.Class != route.PassThrough {
			http.NotFound(sw, r)
			return
		}
		p.Forward(sw, r.WithContext(reqlog.NewContext(r.Context(), entry)), rt.Endpoint, rt.Subpath)
	}))
	// The server's own log catches panics in net/http itself (such as
	// golang/go#68560 in full-duplex mode); ErrAbortHandler is not logged.
	serverLog := &logBuffer{}
	g.Config.ErrorLog = log.New(serverLog, "", 0)
	g.Start()
	t.Cleanup(func() {
		g.Close()
		if out := serverLog.String(); strings.Contains(out, "panic") {
			t.Errorf("gateway server logged a panic:\n%s", out)
		}
	})
	return g
}

// entry waits for the access log entry of the next finished request.
func (g *gateway) entry(t *testing.T) finished {
	t.Helper()
	select {
	case e := <-g.entries:
		return e
	case <-time.After(testTimeout):
		t.Fatal("gateway handler did not finish")
		return finished{}
	}
}

// logBuffer collects the proxy's log output for inspection.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newProxy builds a Proxy logging into a buffer.
func newProxy(t *testing.T, o Options) (*Proxy, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.Transport == nil {
		tr := NewTransport()
		t.Cleanup(tr.CloseIdleConnections)
		o.Transport = tr
	}
	return New(o), logs
}

// newClient is a client that neither decompresses nor follows redirects, so
// tests see exactly what the gateway sent.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// do sends req with the test's time bound and returns the response with its
// body read.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), testTimeout)
	defer cancel()
	res, err := c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return res, body
}

func mustRequest(t testing.TB, method, target string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatalf("NewRequest %s %s: %v", method, target, err)
	}
	return req
}

// envelope is the LiteLLM error body.
type envelope struct {
	Error struct {
		Message string `json:"message"`
		Type    string `json:"type"`
		Param   string `json:"param"`
		Code    string `json:"code"`
	} `json:"error"`
}

// checkEnvelope asserts a gateway-made error response and returns it.
func checkEnvelope(t *testing.T, res *http.Response, body []byte, status int, typ string) envelope {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status: got %d; want %d (body %s)", res.StatusCode, status, body)
	}
	if got := res.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q; want application/json", got)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("body is not the error envelope: %v: %s", err, body)
	}
	if env.Error.Type != typ {
		t.Errorf("error.type: got %q; want %q", env.Error.Type, typ)
	}
	if want := strconv.Itoa(status); env.Error.Code != want {
		t.Errorf("error.code: got %q; want %q", env.Error.Code, want)
	}
	return env
}
