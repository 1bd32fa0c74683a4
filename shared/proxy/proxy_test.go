package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/config"
)

// allBytes is every byte value, four times over.
func allBytes() []byte {
	b := make([]byte, 0, 1024)
	for range 4 {
		for i := range 256 {
			b = append(b, byte(i))
		}
	}
	return b
}

func multipartBody(t *testing.T) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("purpose", "ocr"); err != nil {
		t.Fatal(err)
	}
	part, err := mw.CreateFormFile("file", "scan.bin")
	if err != nil {
		t.Fatal(err)
	}
	part.Write(allBytes())
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestForwardBodiesByteExact sends bodies of every kind through the gateway
// to an upstream that echoes them, and checks both what the upstream
// received and what came back: same bytes, same Content-Type (multipart
// boundary included), Content-Encoding untouched, known lengths sent as
// Content-Length and unknown ones chunked.
func TestForwardBodiesByteExact(t *testing.T) {
	mp, mpType := multipartBody(t)
	gz := gzipped(t, []byte(`{"prompt":"hello"}`))
	tests := []struct {
		name, method, contentType, contentEncoding string
		body                                       []byte
		chunked                                    bool
	}{
		{name: "binary all byte values", method: "POST", contentType: "application/octet-stream", body: allBytes()},
		{name: "multipart upload", method: "POST", contentType: mpType, body: mp},
		{name: "json with unicode", method: "PUT", contentType: "application/json; charset=utf-8", body: []byte(`{"text":"naïve ✓ \u0000 \"q\""}`)},
		{name: "gzip body not decoded", method: "POST", contentType: "application/json", contentEncoding: "gzip", body: gz},
		{name: "chunked binary upload", method: "POST", contentType: "application/octet-stream", body: bytes.Repeat(allBytes(), 300), chunked: true},
		{name: "chunked empty upload", method: "PATCH", contentType: "text/plain", body: []byte{}, chunked: true},
		{name: "no body", method: "GET"},
		{name: "delete with body", method: "DELETE", contentType: "application/json", body: []byte(`{"ids":[1,2]}`)},
	}
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if ce := r.Header.Get("Content-Encoding"); ce != "" {
			w.Header().Set("Content-Encoding", ce)
		}
		w.Write(body)
	})
	ep := endpoint(t, "/v1/files", up.URL)
	p, _ := newProxy(t, Options{})
	gw := newGateway(t, p, ep)
	client := newClient(t)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = bytes.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // hides the length
				}
			}
			req := mustRequest(t, tt.method, gw.URL+"/v1/files/upload", body)
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.contentEncoding != "" {
				req.Header.Set("Content-Encoding", tt.contentEncoding)
			}
			if tt.chunked {
				req.ContentLength = -1
			}
			res, echoed := do(t, client, req)
			entry := gw.entry(t)

			got := up.last(t)
			if got.Method != tt.method {
				t.Errorf("upstream method: got %s; want %s", got.Method, tt.method)
			}
			if !bytes.Equal(got.Body, tt.body) {
				t.Errorf("upstream body: got %d bytes (sha %s); want %d bytes (sha %s)", len(got.Body), sum(got.Body), len(tt.body), sum(tt.body))
			}
			if ct := got.Header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("upstream Content-Type: got %q; want %q", ct, tt.contentType)
			}
			if ce := got.Header.Get("Content-Encoding"); ce != tt.contentEncoding {
				t.Errorf("upstream Content-Encoding: got %q; want %q", ce, tt.contentEncoding)
			}
			switch {
			case tt.chunked:
				if got.ContentLength != -1 || len(got.TransferEncoding) != 1 || got.TransferEncoding[0] != "chunked" {
					t.Errorf("upstream framing: got Content-Length %d, Transfer-Encoding %v; want -1, [chunked]", got.ContentLength, got.TransferEncoding)
				}
			default:
				if got.ContentLength != int64(len(tt.body)) || len(got.TransferEncoding) != 0 {
					t.Errorf("upstream framing: got Content-Length %d, Transfer-Encoding %v; want %d, none", got.ContentLength, got.TransferEncoding, len(tt.body))
				}
			}

			if res.StatusCode != http.StatusOK {
				t.Fatalf("status: got %d; want 200", res.StatusCode)
			}
			if !bytes.Equal(echoed, tt.body) {
				t.Errorf("response body: got %d bytes (sha %s); want %d bytes (sha %s)", len(echoed), sum(echoed), len(tt.body), sum(tt.body))
			}
			if ce := res.Header.Get("Content-Encoding"); ce != tt.contentEncoding {
				t.Errorf("response Content-Encoding: got %q; want %q", ce, tt.contentEncoding)
			}
			if entry.Endpoint != "/v1/files" || entry.UpstreamStatus != 200 || entry.BytesIn != int64(len(tt.body)) || entry.Error != "" {
				t.Errorf("log entry: got endpoint %q, upstream status %d, bytes in %d, error %q; want /v1/files, 200, %d, none",
					entry.Endpoint, entry.UpstreamStatus, entry.BytesIn, entry.Error, len(tt.body))
			}
		})
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// TestForwardPathQueryAndHost checks the request line and Host the upstream
// receives: target path + escaped sub-path, target query then the client's
// query byte-for-byte, and the target's host whatever Host the client sent.
func TestForwardPathQueryAndHost(t *testing.T) {
	up := newUpstream(t, nil)
	eps := []*config.Endpoint{
		endpoint(t, "/ocr", up.URL+"/v2/ocr"),
		endpoint(t, "/q", up.URL+"/base?key=t&mode=fast"),
		endpoint(t, "/root", up.URL),
	}
	exact := endpoint(t, "/exact", up.URL+"/only/")
	exact.IncludeSubpath = false
	eps = append(eps, exact)
	p, _ := newProxy(t, Options{})
	gw := newGateway(t, p, eps...)
	client := newClient(t)

	tests := []struct {
		name, requestURI, wantURI string
	}{
		{"exact path", "/ocr", "/v2/ocr"},
		{"sub-path", "/ocr/jobs/42", "/v2/ocr/jobs/42"},
		{"trailing slash kept", "/ocr/jobs/", "/v2/ocr/jobs/"},
		{"escapes kept", "/ocr/a%20b/%7Euser/c%3Fd", "/v2/ocr/a%20b/%7Euser/c%3Fd"},
		{"query byte-for-byte", "/ocr?b=2&a=1&a=0&x=%20y+z&e=&%E2%9C%93=1&semi;colon", "/v2/ocr?b=2&a=1&a=0&x=%20y+z&e=&%E2%9C%93=1&semi;colon"},
		{"malformed escape in query kept", "/ocr?raw=%zz&p=100%", "/v2/ocr?raw=%zz&p=100%"},
		{"target query first", "/q/x?b=2&b=1", "/base/x?key=t&mode=fast&b=2&b=1"},
		{"target query alone", "/q", "/base?key=t&mode=fast"},
		{"empty target path", "/root/v1/models", "/v1/models"},
		{"empty target path, exact", "/root", "/"},
		{"exact-only endpoint", "/exact", "/only/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustRequest(t, "GET", gw.URL, nil)
			req.URL.Opaque = tt.requestURI // sent exactly as written
			req.Host = "gateway.example"
			res, _ := do(t, client, req)
			gw.entry(t)
			if res.StatusCode != 200 {
				t.Fatalf("status: got %d; want 200", res.StatusCode)
			}
			got := up.last(t)
			if got.RequestURI != tt.wantURI {
				t.Errorf("upstream request URI: got %q; want %q", got.RequestURI, tt.wantURI)
			}
			if want := strings.TrimPrefix(up.URL, "http://"); got.Host != want {
				t.Errorf("upstream Host: got %q; want %q", got.Host, want)
			}
		})
	}
}

// TestForwardRejectsUnsafeSubpath checks that a sub-path that could climb
// above the target path gets a 400 envelope naming the problem and never
// reaches the upstream.
func TestForwardRejectsUnsafeSubpath(t *testing.T) {
	up := newUpstream(t, nil)
	p, _ := newProxy(t, Options{})
	gw := newGateway(t, p, endpoint(t, "/v1/ocr", up.URL+"/api/ocr"))
	client := newClient(t)
	tests := []struct{ name, requestURI, wantInMessage string }{
		{"dot-dot", "/v1/ocr/../../admin", `".."`},
		{"encoded dot-dot", "/v1/ocr/%2e%2e/admin", `".."`},
		{"encoded slash", "/v1/ocr/a%2F..%2Fadmin", "encoded slash"},
		{"double slash", "/v1/ocr//evil.example/x", "empty segment"},
		{"encoded backslash", "/v1/ocr/..%5Cadmin", "encoded backslash"},
		{"backslash", `/v1/ocr/..\admin`, "backslash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mustRequest(t, "GET", gw.URL, nil)
			req.URL.Opaque = tt.requestURI
			res, body := do(t, client, req)
			entry := gw.entry(t)
			env := checkEnvelope(t, res, body, http.StatusBadRequest, "bad_request_error")
			if env.Error.Param != "path" || !strings.Contains(env.Error.Message, tt.wantInMessage) || !strings.Contains(env.Error.Message, "/v1/ocr") {
				t.Errorf("error: got param %q, message %q; want param path and a message naming /v1/ocr and %s", env.Error.Param, env.Error.Message, tt.wantInMessage)
			}
			if n := up.hits.Load(); n != 0 {
				t.Errorf("upstream hits: got %d; want 0", n)
			}
			if entry.Error != "unsafe sub-path" || entry.Endpoint != "/v1/ocr" {
				t.Errorf("log entry: got error %q, endpoint %q; want unsafe sub-path, /v1/ocr", entry.Error, entry.Endpoint)
			}
		})
	}
}

// TestForwardStreamsResponses shows that SSE and unknown-length responses
// reach the client chunk by chunk: the upstream sends its first chunk and
// then waits until the client has read it before sending the rest. A proxy
// that buffered the response would deadlock (and fail on the time bound).
func TestForwardStreamsResponses(t *testing.T) {
	tests := []struct {
		name, contentType string
		first, second     string
	}{
		{"sse", "text/event-stream", "data: {\"n\":1}\n\n", "data: {\"n\":2}\n\ndata: [DONE]\n\n"},
		{"ndjson without length", "application/x-ndjson", "{\"n\":1}\n", "{\"n\":2}\n"},
		{"octet-stream without length", "application/octet-stream", "chunk-one\n", "chunk-two\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientRead := make(chan struct{})
			upstreamErr := make(chan error, 1)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				w.Header().Set("Content-Type", tt.contentType)
				io.WriteString(w, tt.first)
				http.NewResponseController(w).Flush()
				select {
				case <-clientRead:
				case <-time.After(testTimeout):
					upstreamErr <- fmt.Errorf("client never saw the first chunk while the upstream was still open")
					return
				}
				io.WriteString(w, tt.second)
				upstreamErr <- nil
			})
			p, _ := newProxy(t, Options{})
			gw := newGateway(t, p, endpoint(t, "/v1/chat", up.URL))
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			req := mustRequest(t, "POST", gw.URL+"/v1/chat", strings.NewReader(`{"stream":true}`)).WithContext(ctx)
			res, err := newClient(t).Do(req)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type: got %q; want %q", got, tt.contentType)
			}
			first := make([]byte, len(tt.first))
			if _, err := io.ReadFull(res.Body, first); err != nil {
				t.Fatalf("reading first chunk: %v", err)
			}
			if string(first) != tt.first {
				t.Errorf("first chunk: got %q; want %q", first, tt.first)
			}
			close(clientRead)
			rest, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatalf("reading rest: %v", err)
			}
			if string(rest) != tt.second {
				t.Errorf("rest: got %q; want %q", rest, tt.second)
			}
			if err := <-upstreamErr; err != nil {
				t.Error(err)
			}
			gw.entry(t)
		})
	}
}

// TestForwardStreamsLargeUpload pushes 200 MiB through the gateway from an
// io.Pipe. The client writes the first MiB and then waits until the upstream
// has received bytes before writing the rest: only a streaming proxy gets
// past that point. The upstream checks byte count and SHA-256.
func TestForwardStreamsLargeUpload(t *testing.T) {
	const size = 200 << 20
	const firstPart = 1 << 20
	tests := []struct {
		name    string
		chunked bool
	}{
		{"content-length", false},
		{"chunked", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			firstBytesSeen := make(chan struct{})
			type result struct {
				n   int64
				sum string
			}
			results := make(chan result, 1)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := sha256.New()
				buf := make([]byte, 64<<10)
				n, err := io.ReadAtLeast(r.Body, buf, 1)
				h.Write(buf[:n])
				close(firstBytesSeen)
				if err != nil {
					results <- result{int64(n), "read error: " + err.Error()}
					return
				}
				rest, err := io.CopyBuffer(h, r.Body, buf)
				if err != nil {
					results <- result{int64(n) + rest, "read error: " + err.Error()}
					return
				}
				results <- result{int64(n) + rest, hex.EncodeToString(h.Sum(nil))}
				w.WriteHeader(http.StatusCreated)
			}))
			defer up.Close()
			p, _ := newProxy(t, Options{MaxRequestBodyBytes: size})
			gw := newGateway(t, p, endpoint(t, "/v1/upload", up.URL))

			pr, pw := io.Pipe()
			wantSum := make(chan string, 1)
			go func() {
				h := sha256.New()
				rng := rand.NewChaCha8([32]byte{1, 2, 3})
				buf := make([]byte, firstPart)
				var written int64
				for written < size {
					rng.Read(buf)
					h.Write(buf)
					if _, err := pw.Write(buf); err != nil {
						wantSum <- "write error: " + err.Error()
						return
					}
					if written == 0 {
						select {
						case <-firstBytesSeen:
						case <-time.After(testTimeout):
							pw.CloseWithError(fmt.Errorf("upstream saw no bytes while the client held back the rest"))
							wantSum <- "upstream saw no bytes before the client wrote the rest: the proxy is buffering"
							return
						}
					}
					written += int64(len(buf))
				}
				pw.Close()
				wantSum <- hex.EncodeToString(h.Sum(nil))
			}()

			req := mustRequest(t, "PUT", gw.URL+"/v1/upload/big.bin", pr)
			req.ContentLength = size
			if tt.chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", "application/octet-stream")
			ctx, cancel := context.WithTimeout(context.Background(), 4*testTimeout)
			defer cancel()
			res, err := newClient(t).Do(req.WithContext(ctx))
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			res.Body.Close()
			want := <-wantSum // the transport closes the pipe if it stops reading
			var got result
			select {
			case got = <-results:
			case <-time.After(testTimeout):
				t.Fatal("upstream never finished reading the upload")
			}
			if res.StatusCode != http.StatusCreated {
				t.Errorf("status: got %d; want 201", res.StatusCode)
			}
			if got.n != size || got.sum != want {
				t.Errorf("upstream received %d bytes, sha256 %s; want %d bytes, sha256 %s", got.n, got.sum, size, want)
			}
			if e := gw.entry(t); e.BytesIn != size {
				t.Errorf("log entry BytesIn: got %d; want %d", e.BytesIn, size)
			}
		})
	}
}

// TestForwardFullDuplex streams both ways at once: the upstream answers
// before reading the upload and echoes each piece as it arrives, and the
// client sends the next piece only after the echo of the previous one came
// back. A gateway whose server closes or drains the request body once the
// response has started would deadlock here or cut the stream.
func TestForwardFullDuplex(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		rc.Flush()
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			w.Write(buf[:n])
			rc.Flush()
			if err != nil {
				return
			}
		}
	}))
	defer up.Close()
	p, _ := newProxy(t, Options{})
	gw := newGateway(t, p, endpoint(t, "/v1/duplex", up.URL))

	pr, pw := io.Pipe()
	defer pw.Close()
	req := mustRequest(t, "POST", gw.URL+"/v1/duplex", pr)
	req.ContentLength = -1
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	// Unblock pipe writes if the gateway stops reading (it deadlocks
	// without full duplex).
	defer context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })()
	// The client returns the response once its headers arrive, while the
	// body is still being written.
	resc := make(chan *http.Response, 1)
	errc := make(chan error, 1)
	go func() {
		res, err := newClient(t).Do(req.WithContext(ctx))
		if err != nil {
			errc <- err
			return
		}
		resc <- res
	}()
	if _, err := io.WriteString(pw, "ping-0\n"); err != nil {
		t.Fatalf("writing first piece: %v", err)
	}
	var res *http.Response
	select {
	case res = <-resc:
	case err := <-errc:
		t.Fatalf("request: %v", err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for i := range 3 {
		if i > 0 {
			if _, err := fmt.Fprintf(pw, "ping-%d\n", i); err != nil {
				t.Fatalf("writing piece %d: %v", i, err)
			}
		}
		line, err := br.ReadString('\n')
		if want := fmt.Sprintf("ping-%d\n", i); line != want || err != nil {
			t.Fatalf("echo %d: got %q, %v; want %q", i, line, err, want)
		}
	}
	pw.Close()
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the upload ended: got %q, %v; want a clean end", rest, err)
	}
	if e := gw.entry(t); e.BytesIn != 21 || e.Error != "" {
		t.Errorf("log entry: got BytesIn %d, error %q; want 21, none", e.BytesIn, e.Error)
	}
}

// TestForwardHTTP2Upstream checks that the shared transport speaks HTTP/2
// to an upstream that offers it (TLS with ALPN), and streams through it.
func TestForwardHTTP2Upstream(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("Content-Type", "text/event-stream")
		io.Copy(w, r.Body)
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	defer up.Close()
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	pool := x509.NewCertPool()
	pool.AddCert(up.Certificate())
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	p, _ := newProxy(t, Options{Transport: tr})
	gw := newGateway(t, p, endpoint(t, "/v1", up.URL))
	body := allBytes()
	res, got := do(t, newClient(t), mustRequest(t, "POST", gw.URL+"/v1/x", bytes.NewReader(body)))
	gw.entry(t)
	if proto := res.Header.Get("X-Proto"); proto != "HTTP/2.0" {
		t.Errorf("upstream protocol: got %q; want HTTP/2.0", proto)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("echoed body: got %d bytes; want %d, byte-exact", len(got), len(body))
	}
}

// TestForwardRelaysUpstreamResponse checks that the upstream's status,
// end-to-end headers and body reach the client unchanged, errors included,
// that hop-by-hop response headers (also those named in Connection) are
// removed, and that no Content-Type is invented.
func TestForwardRelaysUpstreamResponse(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string // "" = upstream sends none
		body        string
	}{
		{"ok json", 200, "application/json", `{"ok":true}`},
		{"created", 201, "application/json", `{"id":"x"}`},
		{"not found", 404, "application/json", `{"error":"no such model"}`},
		{"teapot", 418, "text/plain", "short and stout"},
		{"server error", 500, "text/html", "<h1>oops</h1>"},
		{"unavailable", 503, "application/json", `{"error":{"message":"overloaded"}}`},
		{"no content type stays absent", 200, "", "<html><body>sniff me</body></html>"},
		{"no content", 204, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				h := w.Header()
				if tt.contentType != "" {
					h.Set("Content-Type", tt.contentType)
				} else {
					h["Content-Type"] = nil // stop the upstream's own server sniffing
				}
				h.Set("X-Request-Id", "up-123")
				h.Add("Set-Cookie", "a=1")
				h.Add("Set-Cookie", "b=2")
				h.Set("Connection", "X-Resp-Hop")
				h.Set("X-Resp-Hop", "secret-hop")
				h.Set("Keep-Alive", "timeout=5")
				h.Set("Proxy-Authenticate", "Basic")
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			p, _ := newProxy(t, Options{})
			gw := newGateway(t, p, endpoint(t, "/v1", up.URL))
			res, body := do(t, newClient(t), mustRequest(t, "GET", gw.URL+"/v1/x", nil))
			entry := gw.entry(t)
			if res.StatusCode != tt.status {
				t.Errorf("status: got %d; want %d", res.StatusCode, tt.status)
			}
			if string(body) != tt.body {
				t.Errorf("body: got %q; want %q", body, tt.body)
			}
			if ct, ok := res.Header["Content-Type"]; tt.contentType == "" && ok {
				t.Errorf("Content-Type: got %q; want none", ct)
			} else if tt.contentType != "" && res.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type: got %q; want %q", res.Header.Get("Content-Type"), tt.contentType)
			}
			if got := res.Header.Get("X-Request-Id"); got != "up-123" {
				t.Errorf("X-Request-Id: got %q; want up-123", got)
			}
			if got := res.Header.Values("Set-Cookie"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
				t.Errorf("Set-Cookie: got %q; want [a=1 b=2]", got)
			}
			for _, h := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate"} {
				if v, ok := res.Header[h]; ok {
					t.Errorf("hop-by-hop response header %s: got %q; want it removed", h, v)
				}
			}
			if entry.UpstreamStatus != tt.status || entry.Error != "" {
				t.Errorf("log entry: got upstream status %d, error %q; want %d, none", entry.UpstreamStatus, entry.Error, tt.status)
			}
		})
	}
}

// TestForwardInventsNoContentType runs Forward in-process against a
// ResponseWriter that, like net/http's server, fixes its header at the first
// body write and sniffs a Content-Type then if the header map has no
// Content-Type key. (Over a real server whether the sniff happens depends on
// whether ReverseProxy's first flush wins a race with the first write.) An
// upstream answer without Content-Type must stay without one.
func TestForwardInventsNoContentType(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header()["Content-Type"] = nil
		io.WriteString(w, "<html><body>sniff me</body></html>")
	})
	p, _ := newProxy(t, Options{})
	w := &sniffingWriter{header: http.Header{}}
	p.Forward(w, httptest.NewRequest("GET", "/v1", nil), endpoint(t, "/v1", up.URL), "")
	if w.status != 200 || w.body.String() != "<html><body>sniff me</body></html>" {
		t.Fatalf("response: got %d %q; want 200 and the upstream body", w.status, w.body.String())
	}
	if ct := w.sent.Values("Content-Type"); len(ct) != 0 {
		t.Errorf("Content-Type sent: got %q; want none", ct)
	}
}

// sniffingWriter models net/http's server: WriteHeader only records the
// status; the header is fixed (and a Content-Type sniffed when the key is
// absent) at the first Write. It has no Flush.
type sniffingWriter struct {
	header, sent http.Header
	status       int
	body         bytes.Buffer
}

func (w *sniffingWriter) Header() http.Header { return w.header }

func (w *sniffingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *sniffingWriter) Write(p []byte) (int, error) {
	if w.sent == nil {
		w.WriteHeader(http.StatusOK)
		if _, ok := w.header["Content-Type"]; !ok && len(p) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		w.sent = w.header.Clone()
	}
	return w.body.Write(p)
}
