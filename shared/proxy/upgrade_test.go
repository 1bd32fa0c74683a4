package proxy

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestForwardRefusesProtocolUpgrades: with forward_headers, a client's
// "Connection: Upgrade" / "Upgrade: h2c" must not reach the upstream, and an
// upstream 101 must not become a raw tunnel past the body limit, timeout and
// sub-path confinement.
func TestForwardRefusesProtocolUpgrades(t *testing.T) {
	for _, upstreamSwitches := range []bool{false, true} {
		t.Run(fmt.Sprintf("upstream switches %v", upstreamSwitches), func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				if !upstreamSwitches {
					w.Write([]byte("plain"))
					return
				}
				// An upstream that switches protocols whatever it was asked.
				conn, brw, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Errorf("hijack: %v", err)
					return
				}
				defer conn.Close()
				brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
				brw.Flush()
				brw.ReadString('\n') // would echo the tunnelled request line
				brw.WriteString("UPSTREAM-GOT\r\n")
				brw.Flush()
			})
			ep := endpoint(t, "/v1", up.URL)
			ep.ForwardHeaders = true
			p, _ := newProxy(t, Options{})
			gw := newGateway(t, p, ep)

			conn, err := net.Dial("tcp", gw.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET /v1/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode == http.StatusSwitchingProtocols {
				t.Fatalf("got 101: the gateway opened a tunnel to the upstream")
			}
			want := http.StatusOK
			if upstreamSwitches {
				want = http.StatusBadGateway
			}
			if res.StatusCode != want {
				t.Errorf("got %d; want %d", res.StatusCode, want)
			}
			got := up.last(t).Header
			for _, h := range []string{"Connection", "Upgrade", "Http2-Settings"} {
				if v := got.Get(h); v != "" {
					t.Errorf("upstream got %s: %q; want none", h, v)
				}
			}
			if e := gw.entry(t); upstreamSwitches && !strings.Contains(e.Error, "upgrade") {
				t.Errorf("access log error %q; want the refused upgrade named", e.Error)
			}
		})
	}
}
