package lambdaio

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

// posted is what the fake Runtime API received for one invocation.
type posted struct {
	path, contentType string
	body              []byte
	trailer           http.Header
}

// TestRuntimeReportsMidStreamFailure runs Stream under aws-lambda-go's real
// runtime loop (lambda.StartWithOptions) against a fake Lambda Runtime API,
// and checks what the runtime POSTs when the upstream breaks mid-stream: the
// prelude and the partial body, then the Lambda-Runtime-Function-Error-Type
// and -Body trailers that make the invocation a failure.
//
// The runtime loop never returns (it exits the process when it cannot reach
// the API), so the fake API is never closed and its second /next request is
// held open until the test binary exits.
func TestRuntimeReportsMidStreamFailure(t *testing.T) {
	brk, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "data: partial\n\n")
		w.(http.Flusher).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	event := readTestdata(t, "rest_v1_encoded.json")

	got := make(chan posted, 1)
	var served atomic.Bool
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/2018-06-01/runtime/invocation/next":
			if served.Swap(true) {
				select {} // hold the loop here for the rest of the test binary
			}
			w.Header().Set("Lambda-Runtime-Aws-Request-Id", "req-1")
			w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
			w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:keyway")
			w.Write(event)
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/2018-06-01/runtime/invocation/req-1/"):
			body, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusAccepted)
			got <- posted{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), body: body, trailer: r.Trailer}
		default:
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		}
	}))
	// Not closed: see the doc comment.

	t.Setenv("AWS_LAMBDA_RUNTIME_API", strings.TrimPrefix(api.URL, "http://"))
	go lambda.StartWithOptions(Stream(forward(t, brk.URL)))

	p := recv(t, got, "the runtime to post the response")
	if p.path != "/2018-06-01/runtime/invocation/req-1/response" {
		t.Errorf("posted to %s; want the streamed /response", p.path)
	}
	if p.contentType != "application/vnd.awslambda.http-integration-response" {
		t.Errorf("content type %q", p.contentType)
	}
	head, body, ok := bytes.Cut(p.body, []byte(preludeSep))
	if !ok {
		t.Fatalf("no prelude in %q", p.body)
	}
	var prelude struct {
		StatusCode        int                 `json:"statusCode"`
		MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	}
	if err := json.Unmarshal(head, &prelude); err != nil {
		t.Fatalf("prelude %q: %v", head, err)
	}
	if prelude.StatusCode != 200 || prelude.MultiValueHeaders["Content-Type"][0] != "text/event-stream" {
		t.Errorf("prelude %s; want the upstream's 200 text/event-stream", head)
	}
	if string(body) != "data: partial\n\n" {
		t.Errorf("body %q", body)
	}
	if typ := p.trailer.Get("Lambda-Runtime-Function-Error-Type"); typ == "" {
		t.Fatalf("no Lambda-Runtime-Function-Error-Type trailer (trailers %v): the failure would look like a complete response", p.trailer)
	}
	errBody, err := base64.StdEncoding.DecodeString(p.trailer.Get("Lambda-Runtime-Function-Error-Body"))
	if err != nil || !bytes.Contains(errBody, []byte("aborted mid-stream")) {
		t.Errorf("error body trailer %q (%v)", errBody, err)
	}
}
