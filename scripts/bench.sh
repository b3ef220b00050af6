#!/usr/bin/env bash
# Runs the benchmark scenarios recorded in BENCHMARKS.md: each against a
# fresh nats-server and a fresh release stanchion on a temp sled store.
# Usage: scripts/bench.sh [scenario...]   (default: all)
#   publish publish_nosync pubsub pubsub_nosync sync rss idle1k idle1k30 idle10k
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nats-server.sh
nats_bin=$(ensure_nats_server)
cargo build --release --bins --quiet
port=${BENCH_PORT:-34222}
url=nats://127.0.0.1:$port
work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start() { # start nats-server and stanchion with extra stanchion flags
  cleanup_servers
  "$nats_bin" -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
  pids=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  rm -rf "$work/data"
  RUST_LOG=warn target/release/stanchion --nats_server "$url" --dir "$work/data" "$@" >"$work/stan.log" 2>&1 &
  stan_pid=$!
  pids+=($stan_pid)
  for _ in $(seq 100); do grep -q "stanchion is ready" "$work/stan.log" 2>/dev/null && break; sleep 0.1; done
}
cleanup_servers() { if [ ${#pids[@]} -gt 0 ]; then kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; fi; pids=(); }
bench() { echo "\$ stanchion-bench $*"; target/release/stanchion-bench --url "$url" "$@"; echo; }

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(publish publish_nosync pubsub pubsub_nosync sync rss idle1k idle1k30 idle10k)
for s in "${scenarios[@]}"; do
  echo "=== $s"
  case $s in
    publish)        start;                    bench -n 200000 ;;
    publish_nosync) start --file_sync=false;  bench -n 200000 ;;
    pubsub)         start;                    bench -n 200000 --ns 1 ;;
    pubsub_nosync)  start --file_sync=false;  bench -n 200000 --ns 1 ;;
    sync)           start;                    bench -n 5000 --sync ;;
    rss)            start;                    bench -n 1000000 --no-echo --server-pid "$stan_pid" ;;
    idle1k)         start -hbi 1s;            bench --idle-clients 1000 --window 20 --server-pid "$stan_pid" ;;
    idle1k30)       start;                    bench --idle-clients 1000 --window 60 --server-pid "$stan_pid" ;;
    idle10k)        start;                    bench --idle-clients 10000 --window 60 --server-pid "$stan_pid" ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
