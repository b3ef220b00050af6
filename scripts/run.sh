#!/usr/bin/env bash
# Quick start: a local nats-server on 127.0.0.1:4222 (unless one already
# listens there) and stanchion on the sled store in ./data, monitoring on
# http://127.0.0.1:8222 (/streaming/serverz, /readyz, /metrics). Ctrl-C
# stops both. Extra arguments go to stanchion.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nats-server.sh
nats_bin=$(ensure_nats_server)
cargo build --release --bin stanchion

pids=()
# Background jobs ignore Ctrl-C in scripts: stop them explicitly (SIGTERM
# lets stanchion flush and exit cleanly).
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do # stanchion first, then nats-server
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  "$nats_bin" -a 127.0.0.1 -p 4222 &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done
fi

target/release/stanchion --nats_server nats://127.0.0.1:4222 --cluster_id test-cluster \
  --store sled --dir ./data -a 127.0.0.1 -m 8222 "$@" &
pids+=($!)
wait "${pids[-1]}"
