#!/usr/bin/env bash
# make bench: Keyway side by side with a direct call and nginx on this
# machine, SSE delivery, 1 GiB bodies, auth cost, Lambda cold start, micro
# benchmarks; writes the raw outputs to $BENCH_OUT (.bench/) and the report
# to $BENCH_DOC (docs/performance.md). See docs/performance.md for what each
# part measures.
#
# Everything runs on loopback. Every process this script starts is stopped on
# exit (trap). Bounded: about 10 minutes with the defaults on a 2-core
# machine. Tools that are missing are installed: wrk, nginx, hyperfine with
# apt-get; benchstat and the Lambda Runtime Interface Emulator with go install.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

OUT=${BENCH_OUT:-$ROOT/.bench}
DOC=${BENCH_DOC:-docs/performance.md}
DURATION=${BENCH_DURATION:-5}      # seconds per wrk run
REPS=${BENCH_REPS:-5}              # wrk repetitions per path and connection count
CONNS=${BENCH_CONNS:-"1 16 64"}
SSE_STREAMS=${BENCH_SSE_STREAMS:-20}
BIG=${BENCH_BIG_BYTES:-1073741824} # 1 GiB
BIG_REPS=${BENCH_BIG_REPS:-5}
COLD=${BENCH_COLD_STARTS:-20}
COUNT=${BENCH_COUNT:-6}            # go test -count
PROXY_CPU=${BENCH_PROXY_CPU:-0}    # the proxy under test
LOAD_CPU=${BENCH_LOAD_CPU:-1}      # wrk, the clients, the upstream
GO=${GO:-go}
RIE_PKG=github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d
MASTER=sk-bench-master-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

log() { printf '\n== %s  [%s]\n' "$*" "$(date +%T)"; }
die() { echo "bench: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# Processes: every background process is recorded and stopped on exit.
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID...: stop processes this script started, now.
stop() {
	local pid keep=()
	for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
	for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		[[ " $* " == *" $pid "* ]] || keep+=("$pid")
	done
	PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------------------
# Tools.
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || [ ! -x /usr/sbin/nginx ] || NGINX=/usr/sbin/nginx
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -n "$NGINX" ] || missing+=(nginx)
command -v hyperfine >/dev/null || missing+=(hyperfine)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]} (apt-get)"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi
GOBIN_DIR=$($GO env GOBIN)
[ -n "$GOBIN_DIR" ] || GOBIN_DIR=$($GO env GOPATH)/bin
BENCHSTAT=$GOBIN_DIR/benchstat
RIE=$GOBIN_DIR/aws-lambda-rie
if [ ! -x "$BENCHSTAT" ]; then
	log "installing benchstat (go install)"
	$GO install golang.org/x/perf/cmd/benchstat@latest
fi
if [ ! -x "$RIE" ]; then
	log "installing the Lambda Runtime Interface Emulator (go install)"
	$GO install "$RIE_PKG"
fi

NCPU=$(nproc)
if [ "$NCPU" -lt 2 ]; then
	echo "bench: only $NCPU CPU: nothing is pinned apart" >&2
	PROXY_CPU=0 LOAD_CPU=0
fi
# Prefixes, not functions: a backgrounded function would be a subshell, and
# $! its pid rather than the program's (taskset execs the program).
ON_PROXY_CPU=(taskset -c "$PROXY_CPU")
ON_LOAD_CPU=(taskset -c "$LOAD_CPU")

# free_port: a loopback port nothing listens on.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	die "no free port found"
}

# wait_http URL: until it answers (any status), at most 10 s.
wait_http() {
	for _ in $(seq 200); do
		curl -s -o /dev/null --max-time 1 "$1" && return 0
		sleep 0.05
	done
	die "$1 did not answer within 10 s"
}

# ---------------------------------------------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT"/{bin,wrk,nginx,lambda,cold-logs}
START=$(date +%s)

log "building"
$GO build -o "$OUT/bin/" ./infra/bench/upstream ./infra/bench/ssebench ./infra/bench/bigbody ./infra/bench/coldstart \
	./infra/bench/report ./infra/bench/bareproxy ./infra/bench/profgw ./infra/bench/procstat
$GO build -o "$OUT/bin/gateway" ./functions/gateway

{
	echo "date:       $(date -u '+%Y-%m-%d %H:%M UTC')"
	if [ -n "${BENCH_COMMIT:-}" ]; then # set when run from an export of a commit (git archive)
		echo "commit:     $BENCH_COMMIT"
	else
		echo "commit:     $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- shared functions 2>/dev/null || echo ' (+ uncommitted changes in shared/ or functions/)')"
	fi
	echo "cpu:        $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') MHz, flags $(grep -m1 -o -w -e avx512f -e avx2 /proc/cpuinfo | head -1)"
	echo "nproc:      $NCPU"
	echo "memory:     $(free -m | awk '/^Mem:/ {print $2 " MiB total, " $7 " MiB available"}')"
	echo "kernel:     $(uname -sr)"
	echo "load avg:   $(cut -d' ' -f1-3 /proc/loadavg) at start (the machine is shared; see the note under Analysis)"
	echo "go:         $($GO version | cut -d' ' -f3-)"
	echo "nginx:      $($NGINX -v 2>&1 | cut -d/ -f2)"
	echo "wrk:        $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt"
cat >"$OUT/params.txt" <<EOF
duration_s=$DURATION
reps=$REPS
conns=$CONNS
sse_streams=$SSE_STREAMS
big_bytes=$BIG
big_reps=$BIG_REPS
cold_starts=$COLD
count=$COUNT
proxy_cpu=$PROXY_CPU
load_cpu=$LOAD_CPU
EOF

# ---------------------------------------------------------------------------
log "starting the upstream, Keyway, nginx and the bare Go proxy"
UP_ADDR_FILE=$OUT/upstream.addr
GOMAXPROCS=1 "${ON_LOAD_CPU[@]}" "$OUT/bin/upstream" -addr 127.0.0.1:0 -addr-file "$UP_ADDR_FILE" &
UP_PID=$!
PIDS+=("$UP_PID")
for _ in $(seq 100); do [ -s "$UP_ADDR_FILE" ] && break; sleep 0.05; done
UP=$(cat "$UP_ADDR_FILE")
wait_http "http://$UP/json"

GW_PORT=$(free_port)
GW=127.0.0.1:$GW_PORT
cat >"$OUT/keyway.yaml" <<EOF
# make bench: one auth: true pass-through endpoint to the bench upstream.
general_settings:
  master_key: os.environ/KEYWAY_MASTER_KEY
  pass_through_endpoints:
    - path: /bench
      target: http://$UP
      auth: true
      include_subpath: true
keyway:
  max_request_body_bytes: 2147483648 # 2 GiB, for the 1 GiB upload
EOF
export KEYWAY_MASTER_KEY=$MASTER
export KEYWAY_CONFIG=$OUT/keyway.yaml KEYWAY_STORE=bolt:$OUT/keyway.db KEYWAY_ADDR=$GW

# Set-up run: a user and a virtual key through the admin API, as a user would.
"$OUT/bin/gateway" 2>"$OUT/keyway-setup.log" &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://$GW/health"
curl -sf "http://$GW/user/new" -H "Authorization: Bearer $MASTER" \
	-d '{"user_id": "bench-user", "user_role": "internal_user"}' >/dev/null || die "/user/new failed (see $OUT/keyway-setup.log)"
KEY=$(curl -sf "http://$GW/key/generate" -H "Authorization: Bearer $MASTER" -d '{"user_id": "bench-user"}' |
	sed -n 's/.*"key":"\(sk-[^"]*\)".*/\1/p')
[ -n "$KEY" ] || die "/key/generate gave no key (see $OUT/keyway-setup.log)"
stop "$GW_PID"
AUTH="Authorization: Bearer $KEY"

# Measured run: one core, access log (one JSON line per request) to /dev/null.
GOMAXPROCS=1 "${ON_PROXY_CPU[@]}" "$OUT/bin/gateway" 2>/dev/null &
GW_PID=$!
PIDS+=("$GW_PID")
wait_http "http://$GW/health"
[ "$(readlink "/proc/$GW_PID/exe")" = "$OUT/bin/gateway" ] || die "pid $GW_PID is not the gateway: peak RSS would be someone else's"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$GW/bench/json" -H "$AUTH")
[ "$code" = 200 ] || die "Keyway answered $code to the bench key"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$GW/bench/json")
[ "$code" = 401 ] || die "Keyway answered $code without a key; want 401"

NG_PORT=$(free_port)
NG=127.0.0.1:$NG_PORT
NGD=$OUT/nginx
NGINX_USER=""
[ "$(id -u)" -ne 0 ] || NGINX_USER="user root;"
cat >"$NGD/nginx.conf" <<EOF
# make bench: a plain reverse proxy, one worker, keep-alive to the upstream.
$NGINX_USER
worker_processes 1;
daemon off;
pid $NGD/nginx.pid;
error_log $NGD/error.log warn;
events { worker_connections 4096; }
http {
    access_log /dev/null;
    client_body_temp_path $NGD/body;
    proxy_temp_path $NGD/proxy;
    fastcgi_temp_path $NGD/fastcgi;
    uwsgi_temp_path $NGD/uwsgi;
    scgi_temp_path $NGD/scgi;
    upstream bench_upstream {
        server $UP;
        keepalive 64;
    }
    server {
        listen $NG;
        location /bench/ {
            proxy_pass http://bench_upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"${ON_PROXY_CPU[@]}" "$NGINX" -p "$NGD" -c "$NGD/nginx.conf" -e "$NGD/error.log" &
NG_PID=$!
PIDS+=("$NG_PID")
wait_http "http://$NG/bench/json"

GB=127.0.0.1:$(free_port)
GOMAXPROCS=1 "${ON_PROXY_CPU[@]}" "$OUT/bin/bareproxy" -addr "$GB" -upstream "http://$UP" 2>/dev/null &
GB_PID=$!
PIDS+=("$GB_PID")
wait_http "http://$GB/bench/json"

# procdiff FILE PID...: after procsnap FILE PID..., replace FILE with what the
# kernel accounted to the processes in between (CPU time, run-queue wait).
procsnap() { local f=$1; shift; "$OUT/bin/procstat" "$@" >"$f"; }
procdiff() {
	local f=$1; shift
	"$OUT/bin/procstat" "$@" | awk -F= 'NR==FNR {before[$1]=$2; next} {print $1 "=" $2 - before[$1]}' "$f" - >"$f.new"
	mv "$f.new" "$f"
}

# ---------------------------------------------------------------------------
log "1. overhead: wrk, ${DURATION}s per run, $REPS repetitions, connections $CONNS"
PATHS="direct nginx gobare keyway"
declare -A URL=([direct]="http://$UP/json" [nginx]="http://$NG/bench/json" [gobare]="http://$GB/bench/json" [keyway]="http://$GW/bench/json")
# Whose CPU time is counted: the proxy under test (nginx: master and workers);
# for direct, the upstream.
declare -A CPU_PIDS=([direct]="$UP_PID" [nginx]="$NG_PID $(pgrep -P "$NG_PID" | tr '\n' ' ')" [gobare]="$GB_PID" [keyway]="$GW_PID")
for t in $PATHS; do # warm-up: connections, pools, caches
	"${ON_LOAD_CPU[@]}" wrk -t1 -c64 -d1s -H "$AUTH" "${URL[$t]}" >/dev/null
done
for rep in $(seq "$REPS"); do
	for c in $CONNS; do
		for t in $PATHS; do
			f=$OUT/wrk/$t-c$c-r$rep.txt
			# shellcheck disable=SC2086 # CPU_PIDS holds a list
			procsnap "${f%.txt}.proc" ${CPU_PIDS[$t]}
			"${ON_LOAD_CPU[@]}" wrk -t1 -c"$c" -d"${DURATION}s" --latency -H "$AUTH" "${URL[$t]}" >"$f"
			# shellcheck disable=SC2086
			procdiff "${f%.txt}.proc" ${CPU_PIDS[$t]}
			printf '  rep %s c=%-3s %-7s %10s rps  p50 %-9s p99 %-9s cpu %5s ms  run-queue wait %5s ms\n' "$rep" "$c" "$t" \
				"$(awk '/^Requests\/sec/ {print $2}' "$f")" "$(awk '$1=="50%" {print $2}' "$f")" "$(awk '$1=="99%" {print $2}' "$f")" \
				"$(awk -F= '$1=="cpu_ns" {print int($2/1e6)}' "${f%.txt}.proc")" "$(awk -F= '$1=="runqueue_ns" {print int($2/1e6)}' "${f%.txt}.proc")"
		done
	done
done
stop "$NG_PID"

log "2. SSE: $SSE_STREAMS streams of 100 events, 10 ms apart, per path"
"${ON_LOAD_CPU[@]}" "$OUT/bin/ssebench" -streams "$SSE_STREAMS" -H "$AUTH" -watch keyway="$GW_PID" -watch gobare="$GB_PID" \
	-t direct="http://$UP/sse" -t gobare="http://$GB/bench/sse" -t keyway="http://$GW/bench/sse" -out "$OUT/sse.json"

log "3. big bodies: $BIG bytes, $BIG_REPS transfers per path and direction"
BB_WATCH=(-watch keyway="$GW_PID" -watch gobare="$GB_PID")
"${ON_LOAD_CPU[@]}" "$OUT/bin/bigbody" -mode download -bytes "$BIG" -reps "$BIG_REPS" -H "$AUTH" "${BB_WATCH[@]}" \
	-t direct="http://$UP/download?bytes=$BIG" -t gobare="http://$GB/bench/download?bytes=$BIG" \
	-t keyway="http://$GW/bench/download?bytes=$BIG" -out "$OUT/download.json"
"${ON_LOAD_CPU[@]}" "$OUT/bin/bigbody" -mode upload -bytes "$BIG" -reps "$BIG_REPS" -H "$AUTH" "${BB_WATCH[@]}" \
	-t direct="http://$UP/upload" -t gobare="http://$GB/bench/upload" -t keyway="http://$GW/bench/upload" -out "$OUT/upload.json"
stop "$GW_PID" "$GB_PID"

log "profile: the gateway's code under wrk -c64 (${DURATION}s)"
GOMAXPROCS=1 "${ON_PROXY_CPU[@]}" "$OUT/bin/profgw" -cpuprofile "$OUT/gateway-cpu.pprof" 2>/dev/null &
PG_PID=$!
PIDS+=("$PG_PID")
wait_http "http://$GW/health"
"${ON_LOAD_CPU[@]}" wrk -t1 -c64 -d1s -H "$AUTH" "${URL[keyway]}" >/dev/null
"${ON_LOAD_CPU[@]}" wrk -t1 -c64 -d"${DURATION}s" -H "$AUTH" "${URL[keyway]}" >"$OUT/profile-wrk.txt"
stop "$PG_PID"
$GO tool pprof -top -cum -nodecount 35 "$OUT/bin/profgw" "$OUT/gateway-cpu.pprof" 2>/dev/null | sed -n '1,45p' >"$OUT/gateway-cpu-top.txt"
$GO tool pprof -top -nodecount 35 "$OUT/bin/profgw" "$OUT/gateway-cpu.pprof" 2>/dev/null | sed -n '1,45p' >"$OUT/gateway-cpu-flat.txt"

log "profile: the gateway's code during one download and one upload"
GOMAXPROCS=1 "${ON_PROXY_CPU[@]}" "$OUT/bin/profgw" -cpuprofile "$OUT/gateway-bigbody-cpu.pprof" 2>/dev/null &
PG_PID=$!
PIDS+=("$PG_PID")
wait_http "http://$GW/health"
"${ON_LOAD_CPU[@]}" "$OUT/bin/bigbody" -mode download -bytes "$BIG" -reps 1 -H "$AUTH" -t keyway="http://$GW/bench/download?bytes=$BIG" -out /dev/null
"${ON_LOAD_CPU[@]}" "$OUT/bin/bigbody" -mode upload -bytes "$BIG" -reps 1 -H "$AUTH" -t keyway="http://$GW/bench/upload" -out /dev/null
stop "$PG_PID" "$UP_PID"
$GO tool pprof -top -cum -nodecount 35 "$OUT/bin/profgw" "$OUT/gateway-bigbody-cpu.pprof" 2>/dev/null | sed -n '1,45p' >"$OUT/gateway-bigbody-cpu-top.txt"
$GO tool pprof -top -nodecount 25 "$OUT/bin/profgw" "$OUT/gateway-bigbody-cpu.pprof" 2>/dev/null | sed -n '1,35p' >"$OUT/gateway-bigbody-cpu-flat.txt"

# ---------------------------------------------------------------------------
log "4. auth cost: cache hit vs miss, bbolt and DynamoDB on moto server (-count $COUNT)"
$GO test -run '^$' -bench . -benchmem -count "$COUNT" -timeout 10m ./infra/bench/authbench | tee "$OUT/auth.txt"
"$BENCHSTAT" "$OUT/auth.txt" >"$OUT/auth-benchstat.txt"

log "5. cold start: bootstrap size and $COLD starts under the RIE"
make -s build-GatewayFunction ARTIFACTS_DIR="$OUT/lambda/arm64" GO="$GO" ||
	make -s build-GatewayFunction ARTIFACTS_DIR="$OUT/lambda/arm64" GO="$GO" # once more: a shared build cache can race
LFLAGS=(-trimpath -ldflags='-s -w' -tags lambda.norpc)
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $GO build "${LFLAGS[@]}" -o "$OUT/lambda/amd64/bootstrap" ./functions/gateway
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $GO build "${LFLAGS[@]}" -o "$OUT/lambda/nullfn" ./infra/bench/nullfn
{
	echo "bootstrap_arm64=$(stat -c %s "$OUT/lambda/arm64/bootstrap")"
	echo "bootstrap_amd64=$(stat -c %s "$OUT/lambda/amd64/bootstrap")"
	echo "nullfn_amd64=$(stat -c %s "$OUT/lambda/nullfn")"
} >"$OUT/sizes.txt"
cat "$OUT/sizes.txt"
COLD_ENV=(-env KEYWAY_CONFIG="$OUT/keyway.yaml" -env KEYWAY_STORE="bolt:$OUT/keyway.db" -env KEYWAY_MASTER_KEY="$MASTER")
"$OUT/bin/coldstart" -rie "$RIE" -n "$COLD" -event infra/bench/coldstart/health_event.json \
	-fn keyway="$OUT/lambda/amd64/bootstrap" -fn baseline="$OUT/lambda/nullfn" "${COLD_ENV[@]}" \
	-log-dir "$OUT/cold-logs" -out "$OUT/cold.json"
# One more start with the Go runtime's init trace: which packages' init costs.
"$OUT/bin/coldstart" -rie "$RIE" -n 1 -warmup 0 -event infra/bench/coldstart/health_event.json \
	-fn inittrace="$OUT/lambda/amd64/bootstrap" "${COLD_ENV[@]}" -env GODEBUG=inittrace=1 \
	-log-dir "$OUT/cold-logs" -out /dev/null >/dev/null
# The log holds the RIE's own init trace too: the bootstrap's starts at INIT START.
awk '/INIT START/ {on = 1} on && $1=="init" && $7=="clock," {printf "%8.3f ms  %9s bytes  %s\n", $5, $8, $2; total += $5}
	END {printf "%8.3f ms  total of the bootstrap'"'"'s package inits\n", total > "/dev/stderr"}' \
	"$OUT/cold-logs/inittrace-01.log" 2>"$OUT/inittrace-total.txt" | sort -rn | sed -n 1,10p >"$OUT/inittrace.txt" # sed reads all: no SIGPIPE under pipefail
cat "$OUT/inittrace-total.txt" >>"$OUT/inittrace.txt"
hyperfine -N --warmup 3 --runs 20 --style basic "$OUT/bin/gateway -check" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$OUT/check.txt"

log "6. micro: go test -bench over route, auth, proxy, gateway (-count $COUNT)"
$GO test -run '^$' -bench . -benchmem -count "$COUNT" -timeout 10m \
	./shared/route ./shared/auth ./shared/proxy ./shared/gateway | tee "$OUT/micro.txt"
"$BENCHSTAT" "$OUT/micro.txt" >"$OUT/micro-benchstat.txt"
$GO test -run '^$' -bench '^BenchmarkRequestPath$' -benchtime 3s -timeout 5m \
	-cpuprofile "$OUT/cpu.pprof" -memprofile "$OUT/mem.pprof" -o "$OUT/gateway.test" ./shared/gateway >/dev/null
$GO tool pprof -top -cum -nodecount 30 "$OUT/gateway.test" "$OUT/cpu.pprof" 2>/dev/null | sed -n '1,40p' >"$OUT/cpu-top.txt"
$GO tool pprof -top -sample_index=alloc_objects -nodecount 25 "$OUT/gateway.test" "$OUT/mem.pprof" 2>/dev/null | sed -n '1,35p' >"$OUT/mem-top.txt"

log "7. metering and limits: infra/bench/govbench (-count 3)"
$GO test -run '^$' -bench . -count 3 -timeout 20m ./infra/bench/govbench | tee "$OUT/govern.txt"

log "8. listing keys, 100 vs 10,000: infra/bench/listbench (-count 3)"
$GO test -run '^$' -bench . -count 3 -timeout 20m ./infra/bench/listbench | tee "$OUT/listing.txt"

# ---------------------------------------------------------------------------
log "report"
echo "took=$(($(date +%s) - START))s" >>"$OUT/params.txt"
"$OUT/bin/report" -in "$OUT" -notes infra/bench/notes.md -out "$DOC"
echo "bench: took $(($(date +%s) - START)) s; raw outputs in $OUT"
