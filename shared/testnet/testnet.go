// Package testnet picks loopback addresses for processes that tests start
// and that must be told their listen address up front (the RIE, moto
// server, the gateway binary).
//
// The usual trick, listen on 127.0.0.1:0 and close, returns a port from the
// kernel's ephemeral range, which every outgoing connection on the machine
// also draws from: under `go test ./...`, with many packages dialling moto
// and test servers at once, the port is often taken again before the child
// binds it ("address already in use"). FreeAddr picks from below that range
// instead, where only other explicit binds compete, and checks the port is
// free; callers that start a process should still retry on a bind failure.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Ports are drawn from [low, high): below Linux's default ephemeral range
// (32768–60999) and above the well-known and most registered ones in use on
// a development machine.
const low, high = 20000, 32768

// FreeAddr returns "127.0.0.1:PORT" for a port that was free a moment ago
// and is outside the ephemeral range (see the package comment).
func FreeAddr() (string, error) {
	lo, hi := low, high
	if elo, ok := ephemeralStart(); ok && elo < hi && elo > lo+1000 {
		hi = elo // a machine with a lower ephemeral range
	}
	var lastErr error
	for range 50 {
		port := lo + rand.IntN(hi-lo)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			lastErr = err
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr, nil
	}
	return "", fmt.Errorf("no free loopback port in [%d, %d) after 50 tries: %w", lo, hi, lastErr)
}

// ephemeralStart reads the start of Linux's ip_local_port_range; ok is
// false elsewhere.
func ephemeralStart() (port int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	port, err = strconv.Atoi(f[0])
	return port, err == nil
}

// AddrInUse reports whether a child process's output says it could not bind
// its address, so the caller picks another and starts it again.
func AddrInUse(output string) bool {
	return strings.Contains(output, "address already in use") || strings.Contains(output, "Address already in use")
}
