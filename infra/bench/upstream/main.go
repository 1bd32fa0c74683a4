// Command upstream is the benchmark harness's loopback upstream (make bench).
// It serves, on one address:
//
//	GET  /json              1 KiB of JSON (Content-Length 1024)
//	GET  /sse?n=100&every=10ms
//	                        server-sent events, n of them, every apart, each
//	                        stamped with the wall-clock time it was written:
//	                        data: {"seq":I,"sent_ns":UNIXNANO}
//	GET  /download?bytes=N  N bytes of generated data (Content-Length N)
//	POST /upload            reads and counts the body; answers {"bytes":N}
//
// Everything is built once at start-up; the handlers allocate as little as
// the standard library lets them, so the upstream stays the cheap side.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

const chunk = 256 << 10

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	addrFile := flag.String("addr-file", "", "write the bound address to this file once listening")
	flag.Parse()

	payload := jsonPayload(1024)
	block := bytes.Repeat([]byte("0123456789abcdef"), chunk/16)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /json", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{"1024"}
		w.Write(payload)
	})
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		n := intParam(r, "n", 100)
		every := 10 * time.Millisecond
		if v := r.URL.Query().Get("every"); v != "" {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				every = d
			}
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		rc.Flush()
		start := time.Now()
		buf := make([]byte, 0, 128)
		for i := 0; i < n; i++ {
			if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
				time.Sleep(d)
			}
			buf = buf[:0]
			buf = append(buf, "id: "...)
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, "\ndata: {\"seq\":"...)
			buf = strconv.AppendInt(buf, int64(i), 10)
			buf = append(buf, ",\"sent_ns\":"...)
			buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
			buf = append(buf, "}\n\n"...)
			if _, err := w.Write(buf); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /download", func(w http.ResponseWriter, r *http.Request) {
		n := int64(intParam(r, "bytes", 1<<30))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			b := block
			if int64(len(b)) > n {
				b = b[:n]
			}
			m, err := w.Write(b)
			if err != nil {
				return
			}
			n -= int64(m)
		}
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, chunk)
		n, err := io.CopyBuffer(io.Discard, r.Body, buf)
		if err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"bytes\":%d}\n", n)
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		if err := os.WriteFile(*addrFile, []byte(ln.Addr().String()), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// jsonPayload returns a JSON object of exactly size bytes.
func jsonPayload(size int) []byte {
	const head, tail = `{"data":"`, `"}`
	b := append([]byte(head), bytes.Repeat([]byte{'a'}, size-len(head)-len(tail))...)
	return append(b, tail...)
}

func intParam(r *http.Request, name string, def int) int {
	if v := r.URL.Query().Get(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return n
		}
	}
	return def
}
