package govern

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/boltstore"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/proxy"
	"github.com/keywaygw/keyway/shared/reqlog"
	"github.com/keywaygw/keyway/shared/usage"
)

// TestLeaseRenewedWhileStreaming: a response that outlives the lease TTL
// keeps its parallel slot (the governor renews the lease), and the slot is
// free once the response ends.
func TestLeaseRenewedWhileStreaming(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") != "" {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-release
		}
	}))
	defer up.Close()
	target, _ := url.Parse(up.URL)
	ep := &config.Endpoint{Path: "/x", Target: target, Auth: true, Timeout: 10 * time.Second, Metering: config.Metering{Usage: usage.FormatNone}}
	ttl := 300 * time.Millisecond
	g := New(Options{Next: proxy.New(proxy.Options{}), Ledger: st, LeaseTTL: ttl})
	one := int64(1)
	key := &keys.Key{Token: "t", TokenID: "k1", Limits: keys.Limits{MaxParallelRequests: &one}}
	call := func(query string, id string) int {
		r := httptest.NewRequest("GET", "/x?"+query, nil)
		ctx := reqlog.NewContext(r.Context(), &reqlog.Entry{RequestID: id})
		r = r.WithContext(auth.NewContext(ctx, &auth.Principal{Kind: auth.VirtualKey, Key: key, Role: keys.RoleInternalUser}))
		w := httptest.NewRecorder()
		g.Forward(w, r, ep, "")
		return w.Code
	}
	done := make(chan int)
	go func() { done <- call("slow=1", "long") }()
	time.Sleep(4 * ttl) // well past the lease's own life
	if code := call("", "second"); code != http.StatusTooManyRequests {
		t.Errorf("a second call while the long one streams, %v after it began: %d; want 429 (its lease is renewed)", 4*ttl, code)
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("the long call: %d; want 200", code)
	}
	if code := call("", "third"); code != http.StatusOK {
		t.Errorf("a call after the long one ended: %d; want 200 (its slot was released)", code)
	}
}
