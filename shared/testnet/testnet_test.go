package testnet

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddrIsBindableAndOutsideEphemeral: the address is on loopback,
// below the kernel's ephemeral range, and can be bound.
func TestFreeAddrIsBindableAndOutsideEphemeral(t *testing.T) {
	for range 20 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		host, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if host != "127.0.0.1" || port < low || port >= high {
			t.Fatalf("FreeAddr() = %q; want 127.0.0.1 and a port in [%d, %d)", addr, low, high)
		}
		if eph, ok := ephemeralStart(); ok && port >= eph {
			t.Fatalf("FreeAddr() = %q is in the ephemeral range starting at %d", addr, eph)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("FreeAddr() = %q, but binding it fails: %v", addr, err)
		}
		ln.Close()
	}
}

// TestAddrInUse recognises Go's and Python's bind errors, and nothing else.
func TestAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = net.Listen("tcp", ln.Addr().String())
	if err == nil || !AddrInUse(err.Error()) {
		t.Errorf("AddrInUse(%v) = false; want true", err)
	}
	if !AddrInUse("OSError: [Errno 98] Address already in use") {
		t.Error("Python's message not recognised")
	}
	if AddrInUse("connection refused") {
		t.Error("an unrelated error recognised as address in use")
	}
}
