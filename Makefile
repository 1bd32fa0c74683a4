# Keyway — developer and build targets. `make run` serves locally, `make test`
# runs every test; `sam build` calls build-GatewayFunction.
SHELL := bash
GO ?= go
BIN := bin
CONFIG ?= infra/config/local.yaml
export KEYWAY_CONFIG ?= $(CONFIG)
export KEYWAY_STORE ?= bolt:keyway.db
export KEYWAY_ADDR ?= 127.0.0.1:4000
DEMO_UPSTREAM_ADDR ?= 127.0.0.1:4001
TEST_TIMEOUT ?= 15m

.PHONY: run smoke build test test-short bench lint check-config push-config build-GatewayFunction clean

## run: start the gateway on $(KEYWAY_ADDR) with $(CONFIG) and a demo upstream on $(DEMO_UPSTREAM_ADDR).
## Without KEYWAY_MASTER_KEY the gateway makes a dev master key, keeps it in
## .keyway-dev-master-key (0600, git-ignored), reuses it, and prints it.
run: build
	@export DEMO_UPSTREAM_TOKEN=$${DEMO_UPSTREAM_TOKEN:-demo-upstream-token}; \
	  $(BIN)/echo-upstream -addr $(DEMO_UPSTREAM_ADDR) & up=$$!; \
	  trap 'kill $$up 2>/dev/null' EXIT; \
	  sleep 0.5; kill -0 $$up 2>/dev/null || { echo "demo upstream could not start on $(DEMO_UPSTREAM_ADDR) (set DEMO_UPSTREAM_ADDR and point the config at it)"; exit 1; }; \
	  $(BIN)/gateway

## smoke: check a running deployment end to end and clean up after itself:
##   MASTER_KEY=sk-… make smoke BASE_URL=https://…/Prod SMOKE_PATH=/v1/ocr/x [SMOKE_SSE_PATH=/v1/ocr/stream]
## Against `make run`, BASE_URL and MASTER_KEY default to the local server
## and its dev master key file. The settings reach the program through the
## environment (make exports command-line variables), never its arguments.
smoke:
	$(GO) run ./infra/smoke

## build: the local gateway binary and the demo upstream
build:
	$(GO) build -o $(BIN)/gateway ./functions/gateway
	$(GO) build -o $(BIN)/echo-upstream ./infra/echo

## test: every test — unit, conformance (bbolt and DynamoDB on moto server), the real bootstrap under the Lambda emulator, cfn-lint
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

## test-short: unit tests only, fast
test-short:
	$(GO) test -short -count=1 ./...

## bench: benchmarks against a direct call and nginx; writes docs/performance.md
bench:
	bash infra/bench/run.sh

## lint: gofmt, go vet, cfn-lint
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	cfn-lint template.yaml

## check-config: validate CONFIG without starting (os.environ/ references must resolve: from the environment, then from SSM under SECRETS, in REGION, when it is set)
# On a fresh clone the local config's two references get the same stand-ins
# as `make run` (a placeholder master key only for the check).
check-config:
	@if [ "$(CONFIG)" = infra/config/local.yaml ]; then \
	  export DEMO_UPSTREAM_TOKEN=$${DEMO_UPSTREAM_TOKEN:-demo-upstream-token}; \
	  if [ -z "$$KEYWAY_MASTER_KEY" ]; then \
	    echo "check-config: KEYWAY_MASTER_KEY is not set; checking with a placeholder (make run needs a real one)"; \
	    export KEYWAY_MASTER_KEY=sk-check-config-placeholder-not-a-key; fi; \
	fi; \
	if [ -n "$(SECRETS)" ]; then export KEYWAY_SECRETS_SSM_PREFIX="$(SECRETS)"; fi; \
	if [ -n "$(REGION)" ]; then export AWS_REGION="$(REGION)" AWS_DEFAULT_REGION="$(REGION)"; fi; \
	KEYWAY_CONFIG=$(CONFIG) $(GO) run ./functions/gateway -check

## push-config: validate CONFIG against the secrets in SSM under SECRETS (default /keyway/secrets), then write it to the SSM parameter PARAM in REGION (refuses an invalid config)
# The region is explicit (REGION, else AWS_REGION, else AWS_DEFAULT_REGION)
# and handed to the AWS SDK as both variables, so the config lands where the
# stack runs.
push-config: SECRETS ?= /keyway/secrets
push-config: REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION))
push-config:
	@test -n "$(PARAM)" || { echo "usage: make push-config CONFIG=file PARAM=/keyway/config [SECRETS=/keyway/secrets] [REGION=eu-west-1]"; exit 2; }
	@test -n "$(REGION)" || { echo "push-config: no region: export AWS_REGION=... AWS_DEFAULT_REGION=... (the stack's region) or pass REGION=..."; exit 2; }
	AWS_REGION=$(REGION) AWS_DEFAULT_REGION=$(REGION) KEYWAY_SECRETS_SSM_PREFIX="$(SECRETS)" \
	  KEYWAY_CONFIG=$(CONFIG) $(GO) run ./functions/gateway -push-config "$(PARAM)"

## build-GatewayFunction: called by `sam build` (BuildMethod: makefile)
build-GatewayFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -tags lambda.norpc \
	  -o $(ARTIFACTS_DIR)/bootstrap ./functions/gateway

clean:
	rm -rf $(BIN) .aws-sam
