package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"
)

// TestAttackInterruptDuringUserCreateLeavesUserBehind: the smoke promises to
// delete "everything it created even when a step fails or it is
// interrupted". It only records the user id after /user/new has answered
// 200 and the answer was read. If the run is interrupted (Ctrl-C, CI
// timeout) or the client times out while /user/new is in flight, the
// gateway has already created the user, but sm.userID is still "" and
// cleanup() deletes nothing: a stray internal_user "keyway-smoke-…" stays
// in production. (The id is chosen by the smoke itself, so cleanup could
// always try to delete it.)
func TestAttackInterruptDuringUserCreateLeavesUserBehind(t *testing.T) {
	base := gateway(t)
	target, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(target)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/user/new" {
			// Let the gateway create the user (detached from the client,
			// as a real server finishes a request the client abandons),
			// then the operator presses Ctrl-C before the answer arrives.
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r.Clone(context.Background()))
			cancel()
			<-r.Context().Done()
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()

	var out bytes.Buffer
	run(ctx, settings{
		BaseURL: front.URL, MasterKey: master, Path: "/v1/ocr/smoke",
		Method: "POST", RevokeWait: time.Second,
	}, &out)
	t.Log("\n" + out.String())
	if u, k := leftovers(t, base); u != 0 || k != 0 {
		t.Errorf("an interrupted smoke left %d users and %d keys behind; want none", u, k)
	}
}
