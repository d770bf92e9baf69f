#!/usr/bin/env bash
# Server benchmark: requests/s and p50/p95 latency at concurrency 1, 4 and 16, for
# batching on (--max-batch $BATCH) vs off (--max-batch 1) and speculative decoding on
# ($DRAFT) vs off (none). Starts one server per configuration, drives it with the
# `whisper-server-bench` example, stops it with SIGTERM.
#
#   apps/server/bench.sh                          # base, cpu, self-q8, 48 requests per level
#   MAIN=weights/models/tiny.en REQUESTS=16 apps/server/bench.sh
#   DEVICE=cuda FEATURES=cuda apps/server/bench.sh
#   CONFIGS="batch8-draft batch1-none" apps/server/bench.sh
#   MODE=stress apps/server/bench.sh              # flood, 256 short, 10-minute soak
#   MODE=stress STRESS_ARGS="--soak-s 60" apps/server/bench.sh
#
# MODE=stress starts one server with its default limits (plus EXTRA_SERVER_ARGS) and runs
# the `whisper-server-stress` example against it: 200 concurrent max-size uploads of valid
# audio, then of garbage, 256 concurrent short requests and a soak (STRESS_ARGS passes
# flags, e.g. `--flood 100 --soak-s 600 --soak-rate 2`).
#
# Environment: MAIN (weights/models/base), DRAFT (self-q8), DEVICE (cpu), FEATURES (cargo
# features, e.g. cuda), BATCH (8), MAX_WAIT_MS (10), CONCURRENCY (1,4,16), REQUESTS (48),
# ENDPOINT (/v1/audio/transcriptions), PORT (8123), PROFILE (release; `test` reuses the
# test build), OUT (target/server-bench), CONFIGS (subset of: batch-none batch1-none
# batch-draft batch1-draft), EXTRA_SERVER_ARGS.
set -euo pipefail
cd "$(dirname "$0")/../.."

MAIN=${MAIN:-weights/models/base}
DRAFT=${DRAFT:-self-q8}
DEVICE=${DEVICE:-cpu}
FEATURES=${FEATURES:-}
BATCH=${BATCH:-8}
MAX_WAIT_MS=${MAX_WAIT_MS:-10}
CONCURRENCY=${CONCURRENCY:-1,4,16}
REQUESTS=${REQUESTS:-48}
ENDPOINT=${ENDPOINT:-/v1/audio/transcriptions}
PORT=${PORT:-8123}
PROFILE=${PROFILE:-release}
OUT=${OUT:-target/server-bench}
CONFIGS=${CONFIGS:-"batch-none batch1-none batch-draft batch1-draft"}
MODE=${MODE:-load}
STRESS_ARGS=${STRESS_ARGS:-}
EXTRA_SERVER_ARGS=${EXTRA_SERVER_ARGS:-}

feature_args=()
[[ -n "$FEATURES" ]] && feature_args=(--features "$FEATURES")
cargo build --profile "$PROFILE" -p whisper-server --bin whisper-server --example whisper-server-bench \
  --example whisper-server-stress "${feature_args[@]}"
case "$PROFILE" in
  release) dir=target/release ;;
  dev | test) dir=target/debug ;;
  *) dir=target/$PROFILE ;;
esac
server_bin=$dir/whisper-server
bench_bin=$dir/examples/whisper-server-bench
stress_bin=$dir/examples/whisper-server-stress

mkdir -p "$OUT"
stamp=$(date +%Y%m%d-%H%M%S)
results=$OUT/results-$stamp.jsonl
url=http://127.0.0.1:$PORT
server_pid=

stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=
}
trap stop_server EXIT

# Starts the server with these extra flags; waits until it is healthy.
start_server() {
  local log=$1
  shift
  # shellcheck disable=SC2086
  "$server_bin" --host 127.0.0.1 --port "$PORT" --main "$MAIN" --device "$DEVICE" "$@" $EXTRA_SERVER_ARGS >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 600); do
    if curl -fs "$url/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$server_pid" 2>/dev/null; then echo "server failed to start; see $log" >&2; exit 1; fi
    sleep 0.5
  done
  curl -fs "$url/health" >/dev/null || { echo "server not ready after 300 s; see $log" >&2; exit 1; }
}

if [[ "$MODE" == stress ]]; then
  log=$OUT/server-$stamp-stress.log
  start_server "$log"
  echo "stress: commit $(git rev-parse --short HEAD), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  # shellcheck disable=SC2086
  "$stress_bin" --url "$url" --jsonl "$OUT/stress-$stamp.jsonl" $STRESS_ARGS
  stop_server
  echo "results: $OUT/stress-$stamp.jsonl; server log: $log"
  exit 0
fi

for config in $CONFIGS; do
  case "$config" in
    batch-none) batch=$BATCH draft=none ;;
    batch1-none) batch=1 draft=none ;;
    batch-draft) batch=$BATCH draft=$DRAFT ;;
    batch1-draft) batch=1 draft=$DRAFT ;;
    *) echo "unknown config $config" >&2; exit 2 ;;
  esac
  label="batch${batch}-${draft##*/}"
  start_server "$OUT/server-$stamp-$label.log" --draft "$draft" --max-batch "$batch" \
    --max-wait-ms "$MAX_WAIT_MS" --queue-capacity 256
  "$bench_bin" --url "$url" --concurrency "$CONCURRENCY" --requests "$REQUESTS" --endpoint "$ENDPOINT" \
    --label "$label" --jsonl "$results"
  stop_server
done

echo
echo "results: $results"
python3 - "$results" <<'EOF' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| config | concurrency | req/s | audio s/s | p50 s | p95 s | mean batch | acceptance | errors |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
f = lambda x, d=3: "-" if x is None or x != x else f"{x:.{d}f}"
for r in rows:
    print(f"| {r['config']} | {r['concurrency']} | {f(r['requests_per_s'],2)} | {f(r['audio_s_per_s'],1)} | {f(r['p50_s'])} | "
          f"{f(r['p95_s'])} | {f(r['mean_batch'],2)} | {f(r['acceptance_rate'])} | {r['errors']} |")
EOF
