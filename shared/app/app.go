// Package app builds a Keyway gateway from its environment (the runtime
// contract in docs/config.md) and runs it as a local HTTP server. The Lambda
// entry point uses the same Build; only the serving differs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/keywaygw/keyway/shared/admin"
	"github.com/keywaygw/keyway/shared/auth"
	"github.com/keywaygw/keyway/shared/config"
	"github.com/keywaygw/keyway/shared/console"
	"github.com/keywaygw/keyway/shared/gateway"
	"github.com/keywaygw/keyway/shared/govern"
	"github.com/keywaygw/keyway/shared/keys"
	"github.com/keywaygw/keyway/shared/lambdaio"
	"github.com/keywaygw/keyway/shared/ledger"
	"github.com/keywaygw/keyway/shared/metrics"
	"github.com/keywaygw/keyway/shared/proxy"
)

// Environment variable names and their local defaults (design.md's runtime
// contract).
const (
	EnvConfig        = "KEYWAY_CONFIG"
	EnvStore         = "KEYWAY_STORE"
	EnvAddr          = "KEYWAY_ADDR"
	EnvSecretsPrefix = "KEYWAY_SECRETS_SSM_PREFIX"
	EnvResponseMode  = "KEYWAY_RESPONSE_MODE"
	EnvConfigTTL     = "KEYWAY_CONFIG_TTL"
	EnvIdleTimeout   = "KEYWAY_RESPONSE_IDLE_TIMEOUT"

	DefaultConfig    = "infra/config/example.yaml"
	DefaultStore     = "bolt:keyway.db"
	DefaultAddr      = "127.0.0.1:4000"
	DefaultConfigTTL = 30 * time.Second
	// DefaultLambdaIdleTimeout ends a Lambda response whose upstream has
	// sent nothing for this long (lambdaio.IdleTimeout): API Gateway cuts a
	// REGIONAL stream idle for 300s, and the function would otherwise run
	// on, billed, to its own timeout.
	DefaultLambdaIdleTimeout = 270 * time.Second
	// apiGatewayIdle is API Gateway's idle timeout for a REGIONAL streamed
	// response.
	apiGatewayIdle = 300 * time.Second
)

// App is a built gateway and what must be closed with it.
type App struct {
	Handler http.Handler
	Config  *config.Watcher
	Store   keys.Store
	Logger  *slog.Logger

	// IdleTimeout is the response idle timeout the Handler applies (0:
	// none; the Lambda default is DefaultLambdaIdleTimeout).
	IdleTimeout time.Duration
}

// Options select how Build reads its environment.
type Options struct {
	// Getenv reads the environment (os.Getenv in production).
	Getenv func(string) string
	// Lambda is true under the Lambda runtime: KEYWAY_CONFIG is then required
	// and the store defaults to nothing (the template sets dynamodb:).
	Lambda bool
	Logger *slog.Logger
	// Transport overrides the upstream transport (tests, benchmarks).
	Transport http.RoundTripper
}

// Build reads the environment, loads the config (failing fast with the
// whole validation report), opens the key store and assembles the handler.
func Build(ctx context.Context, o Options) (*App, error) {
	getenv := o.Getenv
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ttl := DefaultConfigTTL
	if v := getenv(EnvConfigTTL); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s=%q is not a duration like \"30s\" (0 disables reloads)", EnvConfigTTL, v)
		}
		ttl = d
	}
	var idle time.Duration
	if o.Lambda {
		idle = DefaultLambdaIdleTimeout
	}
	if v := getenv(EnvIdleTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%s=%q is not a duration like \"270s\" (0 disables it)", EnvIdleTimeout, v)
		}
		idle = d
	}
	if o.Lambda {
		// Endpoint timeouts default to what API Gateway can deliver, for
		// the first load and every reload.
		ctx = config.WithLambdaDefaults(ctx)
		if getenv(EnvConfig) == "" {
			return nil, fmt.Errorf("%s is required in Lambda (e.g. ssm:/keyway/config)", EnvConfig)
		}
		if getenv(EnvStore) == "" {
			return nil, fmt.Errorf("%s is required in Lambda (e.g. dynamodb:keyway)", EnvStore)
		}
	}

	aws := &awsClients{}
	src, resolver, err := configInputs(ctx, getenv, aws)
	if err != nil {
		return nil, err
	}
	watcher, err := config.NewWatcher(ctx, src, resolver, ttl, logger)
	if err != nil {
		return nil, err
	}
	cfg := watcher.Current()
	for _, w := range cfg.Warnings {
		logger.Warn("config: " + w)
	}
	if o.Lambda {
		for _, ep := range cfg.Endpoints {
			if ep.Timeout >= apiGatewayIdle {
				logger.Warn("config: endpoint timeout reaches API Gateway's 300s idle timeout; the caller is cut off before it can end", "endpoint", ep.Path, "timeout", ep.Timeout.String())
			}
		}
	}
	if cfg.MasterKey == "" {
		logger.Warn("config: general_settings.master_key is not set; the admin API can only be used with proxy_admin keys")
	}

	store, err := openStore(ctx, envOr(getenv, EnvStore, DefaultStore), aws)
	if err != nil {
		watcher.Close()
		return nil, err
	}

	// Metrics: Prometheus on /metrics for the local server and containers;
	// under Lambda, EMF members on the access line instead (a sandbox
	// cannot be scraped).
	var mets *metrics.Metrics
	if !o.Lambda {
		mets = metrics.New(metrics.Options{})
		watcher.OnReload(mets.ConfigReload)
	}

	cache := auth.NewCache(cfg.Settings.KeyCacheTTL, 0)
	authn := auth.NewAuthenticator(store, cache, logger)
	fwd := proxy.New(proxy.Options{
		Transport:           o.Transport,
		MaxRequestBodyBytes: cfg.Settings.MaxRequestBodyBytes,
		Logger:              logger,
	})
	led, ok := store.(ledger.Store)
	if !ok {
		store.Close()
		watcher.Close()
		return nil, fmt.Errorf("key store %T keeps no usage ledger", store)
	}
	gov := govern.New(govern.Options{
		Next:      fwd,
		Ledger:    led,
		Retention: func() time.Duration { return watcher.Current().Settings.SpendLogsRetention },
		OnSoftBudget: func(s ledger.Subject) {
			mets.SoftBudgetCrossed(string(s.Kind))
		},
		Logger: logger,
	})
	handler := gateway.New(gateway.Options{
		Config: watcher.Current,
		Auth:   authn,
		Admin: admin.New(admin.Options{
			Store:          store,
			Ledger:         led,
			MaxKeysPerUser: maxKeysPerUser(cfg.Settings.MaxKeysPerUser),
			Invalidate:     authn.Invalidate,
			Logger:         logger,
			Config: admin.ConfigInfo{
				Endpoints: func() []*config.Endpoint { return watcher.Current().Endpoints },
				Status:    watcher.Status,
			},
		}),
		Console: console.New(),
		Proxy:   gov,
		OnConfig: func(cfg *config.Config) {
			cache.SetTTL(cfg.Settings.KeyCacheTTL)
			fwd.SetMaxRequestBodyBytes(cfg.Settings.MaxRequestBodyBytes)
		},
		Logger:  logger,
		Metrics: mets,
		EMF:     o.Lambda,
	})
	var h http.Handler = handler
	if idle > 0 {
		h = lambdaio.IdleTimeout(handler, idle)
	}
	return &App{Handler: h, IdleTimeout: idle, Config: watcher, Store: store, Logger: logger}, nil
}

// Close releases the store and stops config reloads.
func (a *App) Close() error {
	a.Config.Close()
	return a.Store.Close()
}

// Serve runs the local HTTP server on ln until ctx is done, then shuts down
// gracefully: new connections are refused, in-flight requests (streams
// included) may finish within the config's shutdown_timeout, and are cut
// after it.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Logger.Info("keyway listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	grace := a.Config.Current().Settings.ShutdownTimeout
	a.Logger.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.Logger.Warn("in-flight requests cut at shutdown timeout", "err", err)
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// maxKeysPerUser maps keyway.max_keys_per_user (0: no cap) to
// admin.Options.MaxKeysPerUser (negative: no cap). The setting is read at
// start-up; a reload does not change it.
func maxKeysPerUser(n int64) int {
	if n == 0 {
		return -1
	}
	return int(n)
}
