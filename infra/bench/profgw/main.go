// Command profgw is the local gateway as functions/gateway runs it (app.Build
// from the environment, app.Serve, JSON logs on stderr) with a CPU profile
// recorded while it serves: make bench runs it under the same wrk load as
// the overhead test, so the profile shows where a served request's CPU
// goes, net/http server included. It writes the profile when it gets
// SIGTERM or SIGINT.
//
//	KEYWAY_CONFIG=… KEYWAY_STORE=bolt:… KEYWAY_ADDR=… profgw -cpuprofile cpu.pprof
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/keywaygw/keyway/shared/app"
)

func main() {
	out := flag.String("cpuprofile", "gateway-cpu.pprof", "CPU profile file")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "profgw:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, err := app.Build(ctx, app.Options{Getenv: os.Getenv, Logger: logger})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", os.Getenv(app.EnvAddr))
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	serr := a.Serve(ctx, ln)
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return err
	}
	return serr
}
