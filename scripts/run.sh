#!/usr/bin/env bash
# Quick start: a local nats-server on 127.0.0.1:4222 (unless one already
# listens there) and stanchion on the sled store in ./data. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nats-server.sh
nats_bin=$(ensure_nats_server)

if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  "$nats_bin" -a 127.0.0.1 -p 4222 &
  nats_pid=$!
  # Background jobs ignore Ctrl-C in scripts: stop nats-server explicitly.
  trap 'kill $nats_pid 2>/dev/null || true' EXIT
  trap 'exit 130' INT TERM
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done
fi

cargo run --release --bin stanchion -- \
  --nats_server nats://127.0.0.1:4222 --cluster_id test-cluster --store sled --dir ./data "$@"
