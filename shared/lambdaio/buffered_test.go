package lambdaio

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// bothShapes runs h on the REST v1 and the HTTP API v2 test event.
func bothShapes(t *testing.T, h http.Handler, check func(t *testing.T, out any)) {
	t.Helper()
	for _, name := range []string{"rest_v1_encoded.json", "http_v2_post.json"} {
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			out, err := Buffered(h)(testContext(t), readTestdata(t, name))
			if err != nil {
				t.Fatalf("Lambda error %v", err)
			}
			switch out.(type) {
			case events.APIGatewayProxyResponse:
				if strings.HasPrefix(name, "http_v2") {
					t.Fatalf("a v2 event got a v1 response")
				}
			case events.APIGatewayV2HTTPResponse:
				if !strings.HasPrefix(name, "http_v2") {
					t.Fatalf("a v1 event got a v2 response")
				}
			}
			check(t, out)
		})
	}
}

func TestBufferedBodies(t *testing.T) {
	bin := readTestdata(t, "binary_body.bin")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"ok":true}`))
	zw.Close()

	for _, tc := range []struct {
		name       string
		ctype, enc string
		body       []byte
		base64     bool
	}{
		{"json", "application/json", "", []byte(`{"ok":true,"s":"é"}`), false},
		{"sse", "text/event-stream", "", []byte("data: 1\n\n"), false},
		{"binary", "application/octet-stream", "", bin, true},
		{"png with utf-8 bytes", "image/png", "", []byte("PNG-but-valid-utf8"), true},
		{"gzip json", "application/json", "gzip", gz.Bytes(), true},
		{"invalid utf-8 labelled text", "text/plain", "", []byte{0xff, 0xfe, 'x'}, true},
		{"empty", "application/octet-stream", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				if tc.enc != "" {
					w.Header().Set("Content-Encoding", tc.enc)
				}
				w.Write(tc.body)
			})
			bothShapes(t, h, func(t *testing.T, out any) {
				var b64 bool
				switch r := out.(type) {
				case events.APIGatewayProxyResponse:
					b64 = r.IsBase64Encoded
				case events.APIGatewayV2HTTPResponse:
					b64 = r.IsBase64Encoded
				}
				if b64 != tc.base64 {
					t.Errorf("isBase64Encoded %v; want %v", b64, tc.base64)
				}
				if got := bodyOf(t, out); !bytes.Equal(got, tc.body) {
					t.Errorf("body %q; want %q", got, tc.body)
				}
			})
		})
	}
}

func TestBufferedHeaders(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		w.Header().Set("X-Comma", "a, b")
		w.Header().Add("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusAccepted)
		w.Header().Set("X-Too-Late", "1") // after WriteHeader+Write: not sent, as in net/http
		io.WriteString(w, "{}")
	})
	bothShapes(t, h, func(t *testing.T, out any) {
		switch r := out.(type) {
		case events.APIGatewayProxyResponse:
			if r.StatusCode != 202 {
				t.Errorf("status %d", r.StatusCode)
			}
			want := map[string][]string{
				"Content-Type": {"application/json"}, "X-Multi": {"1", "2"}, "X-Comma": {"a, b"},
				"Set-Cookie": {"a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT", "b=2"},
			}
			if len(r.MultiValueHeaders) != len(want) {
				t.Errorf("multiValueHeaders %v; want %v", r.MultiValueHeaders, want)
			}
			for k, v := range want {
				if !slices.Equal(r.MultiValueHeaders[k], v) {
					t.Errorf("%s: %q; want %q", k, r.MultiValueHeaders[k], v)
				}
			}
		case events.APIGatewayV2HTTPResponse:
			if r.StatusCode != 202 {
				t.Errorf("status %d", r.StatusCode)
			}
			want := map[string]string{"Content-Type": "application/json", "X-Multi": "1, 2", "X-Comma": "a, b"}
			if len(r.Headers) != len(want) {
				t.Errorf("headers %v; want %v", r.Headers, want)
			}
			for k, v := range want {
				if r.Headers[k] != v {
					t.Errorf("%s: %q; want %q", k, r.Headers[k], v)
				}
			}
			if !slices.Equal(r.Cookies, []string{"a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT", "b=2"}) {
				t.Errorf("cookies %q", r.Cookies)
			}
		}
	})
}

// TestBufferedLambdaPayload checks the JSON the runtime returns to API
// Gateway (lambda.NewHandler encodes the handler's result as the runtime
// does).
func TestBufferedLambdaPayload(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write([]byte{0, 1, 2})
	})
	got, err := lambda.NewHandler(Buffered(h)).Invoke(testContext(t), readTestdata(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"statusCode":200,"headers":null,"multiValueHeaders":{"Content-Type":["application/octet-stream"]},"body":"AAEC","isBase64Encoded":true}`
	if string(got) != want {
		t.Errorf("payload\n got %s\nwant %s", got, want)
	}
	got, err = lambda.NewHandler(Buffered(h)).Invoke(testContext(t), readTestdata(t, "http_v2_post.json"))
	if err != nil {
		t.Fatal(err)
	}
	want = `{"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"multiValueHeaders":null,"body":"AAEC","isBase64Encoded":true,"cookies":[]}`
	if string(got) != want {
		t.Errorf("payload\n got %s\nwant %s", got, want)
	}
}

// TestBufferedEmptyHandler: a handler that writes nothing is a 200 with an
// empty body (aws-lambda-go-api-proxy answers 504 with a Lambda error).
func TestBufferedEmptyHandler(t *testing.T) {
	bothShapes(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), func(t *testing.T, out any) {
		if s := statusOf(t, out); s != 200 {
			t.Errorf("status %d; want 200", s)
		}
		if b := bodyOf(t, out); len(b) != 0 {
			t.Errorf("body %q", b)
		}
	})
}

func TestBufferedFailures(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 64<<10)
	for _, tc := range []struct {
		name   string
		h      func(t *testing.T) http.Handler
		status int
	}{
		{"panic", func(*testing.T) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "half"); panic("boom") })
		}, 500},
		{"abort after writing", func(*testing.T) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "half")
				panic(http.ErrAbortHandler)
			})
		}, 502},
		{"upstream breaks mid-body", func(t *testing.T) http.Handler {
			srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1000")
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
			})
			return forward(t, srv.URL)
		}, 502},
		{"too large to buffer", func(*testing.T) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for i := 0; i <= maxBufferedBody/len(big); i++ {
					if _, err := w.Write(big); err != nil {
						return
					}
				}
			})
		}, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bothShapes(t, tc.h(t), func(t *testing.T, out any) {
				if s := statusOf(t, out); s != tc.status {
					t.Fatalf("status %d; want %d", s, tc.status)
				}
				checkEnvelope(t, bodyOf(t, out), strconv.Itoa(tc.status))
			})
		})
	}
}

// TestBufferedTimeout: the gateway answers 504 itself before the invocation
// deadline, and the handler's context is cancelled.
func TestBufferedTimeout(t *testing.T) {
	for _, name := range []string{"rest_v1_encoded.json", "http_v2_post.json"} {
		t.Run(name, func(t *testing.T) {
			stopped := make(chan error, 1)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
				stopped <- context.Cause(r.Context())
			})
			// The deadline leaves 300 ms after the one-second margin.
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(timeoutMargin+300*time.Millisecond))
			defer cancel()
			start := time.Now()
			out, err := Buffered(h)(ctx, readTestdata(t, name))
			if err != nil {
				t.Fatalf("Lambda error %v", err)
			}
			if s := statusOf(t, out); s != http.StatusGatewayTimeout {
				t.Fatalf("status %d; want 504", s)
			}
			checkEnvelope(t, bodyOf(t, out), "504")
			if dl, _ := ctx.Deadline(); !time.Now().Before(dl) {
				t.Errorf("answered after the invocation deadline (took %v)", time.Since(start))
			}
			if cause := recv(t, stopped, "the handler to be cancelled"); !errors.Is(cause, errTimeout) {
				t.Errorf("handler context cause %v; want errTimeout", cause)
			}
		})
	}
}

func TestBufferedBudget(t *testing.T) {
	now := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return now.Add(d).UnixMilli() }
	withDeadline := func(d time.Duration) context.Context {
		ctx, cancel := context.WithDeadline(context.Background(), now.Add(d))
		t.Cleanup(cancel)
		return ctx
	}
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		epoch int64
		want  time.Duration
	}{
		{"no deadline, no request time", context.Background(), 0, 28 * time.Second},
		{"request stamped 10s ago (cold start)", context.Background(), ms(-10 * time.Second), 18 * time.Second},
		{"lambda deadline first", withDeadline(5 * time.Second), ms(-time.Second), 4 * time.Second},
		{"api gateway limit first", withDeadline(60 * time.Second), ms(0), 28 * time.Second},
		{"request time in the future", context.Background(), ms(time.Minute), 28 * time.Second},
		{"request time in seconds (old sam local)", context.Background(), now.Unix(), 28 * time.Second},
		{"deadline already within the margin", withDeadline(500 * time.Millisecond), 0, -500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bufferedBudget(tc.ctx, tc.epoch, now); got != tc.want {
				t.Errorf("budget %v; want %v", got, tc.want)
			}
		})
	}
}

// TestBufferedPastDeadline: with no time left the 504 comes at once and the
// handler never runs.
func TestBufferedPastDeadline(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(timeoutMargin/2))
	defer cancel()
	rec := &recorder{}
	out, err := Buffered(rec)(ctx, readTestdata(t, "rest_v1_encoded.json"))
	if err != nil {
		t.Fatal(err)
	}
	if s := statusOf(t, out); s != 504 {
		t.Fatalf("status %d; want 504", s)
	}
	if rec.got != nil {
		t.Errorf("the handler ran")
	}
}
