// Command gateway is Keyway's one entry point: an AWS Lambda function when
// AWS_LAMBDA_RUNTIME_API is set, a local HTTP server otherwise.
//
//	gateway                     serve (local or Lambda)
//	gateway -check              load and validate KEYWAY_CONFIG, print the report, exit
//	gateway -push-config /name  validate the KEYWAY_CONFIG file, then write it to SSM
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keywaygw/keyway/shared/app"
	"github.com/keywaygw/keyway/shared/lambdaio"
)

func main() {
	check := flag.Bool("check", false, "validate the config named by KEYWAY_CONFIG and exit")
	push := flag.String("push-config", "", "validate the KEYWAY_CONFIG file, then write it to this SSM parameter")
	flag.Parse()
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	slog.SetDefault(logger)
	var err error
	switch {
	case *push != "":
		err = app.PushConfig(context.Background(), os.Getenv, *push, os.Stdout)
	case *check:
		err = app.CheckConfig(context.Background(), os.Getenv, os.Stdout)
	default:
		err = run(logger)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyway:", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	inLambda := os.Getenv("AWS_LAMBDA_RUNTIME_API") != ""
	if app.WantsDevMasterKey(os.Getenv, inLambda) {
		key, created, err := app.DevMasterKey(app.DevMasterKeyFile)
		if err != nil {
			return err
		}
		os.Setenv(app.EnvMasterKey, key)
		how := "reusing"
		if created {
			how = "created"
		}
		// Printed on purpose, once, to the developer's terminal (not a log
		// line): local mode only, and only when no key was configured.
		fmt.Printf("keyway: %s dev master key (%s, mode 0600, git-ignored): %s\n", how, app.DevMasterKeyFile, key)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	a, err := app.Build(ctx, app.Options{Getenv: os.Getenv, Lambda: inLambda, Logger: logger})
	if err != nil {
		return err
	}
	defer a.Close()

	if inLambda {
		switch mode := os.Getenv(app.EnvResponseMode); mode {
		case "", "stream":
			lambda.StartWithOptions(lambdaio.Stream(a.Handler), lambda.WithContext(ctx))
		case "buffered":
			lambda.StartWithOptions(lambdaio.Buffered(a.Handler), lambda.WithContext(ctx))
		default:
			return fmt.Errorf("%s=%q: want stream or buffered", app.EnvResponseMode, mode)
		}
		return nil
	}

	addr := os.Getenv(app.EnvAddr)
	if addr == "" {
		addr = app.DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s (%s): %w", addr, app.EnvAddr, err)
	}
	return a.Serve(ctx, ln)
}
