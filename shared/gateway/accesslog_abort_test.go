package gateway

import (
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestPanicAfterHeadersAbortsResponse: a panic once the status line is out
// must not end the response cleanly (a cut-off stream would look whole):
// the client sees a broken body. Before, it sees a 500 envelope.
func TestPanicAfterHeadersAbortsResponse(t *testing.T) {
	logs := &lockedBuffer{}
	g := &Gateway{logger: slog.New(slog.NewJSONHandler(logs, nil))}
	srv := httptest.NewUnstartedServer(g.withAccessLog(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/before" {
			panic("boom before headers")
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		panic("boom mid-stream")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	defer srv.Close()

	res, err := srv.Client().Get(srv.URL + "/after")
	if err != nil {
		t.Fatalf("GET /after: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil {
		t.Errorf("panic after headers: body %q read to a clean end; want the response aborted (a read error)", body)
	}
	res, err = srv.Client().Get(srv.URL + "/before")
	if err != nil {
		t.Fatalf("GET /before: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusInternalServerError {
		t.Errorf("panic before headers: got %d; want 500", res.StatusCode)
	}
	srv.Close() // waits for the handlers, so their log lines are in
	if !strings.Contains(logs.String(), "panic after the response started") {
		t.Errorf("log: got %s; want the aborted response's access line to say why", logs.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
