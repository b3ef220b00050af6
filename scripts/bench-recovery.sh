#!/usr/bin/env bash
# Recovery at scale and catch-up (BENCHMARKS.md, "Recovery at scale and catch-up"):
# a fresh nats-server on a free loopback port and a fresh temporary sled
# store; `stanchion-bench recovery` runs the release stanchion itself (fill,
# SIGKILL and SIGTERM restarts, catch-up) and exits nonzero when a goal is
# missed.
# Usage: scripts/bench-recovery.sh [stanchion-bench recovery flags...] [-- stanchion flags...]
#   default stanchion flags: -mm 0 -mb 0 (the 5M-message channel is past the
#   default per-channel limits of 1,000,000 messages and ~1 GB)
# Env: BENCH_TMP (where the temp dir goes, default $TMPDIR or /tmp; needs
#   ~3 GB), KEEP=1 keeps the store and the stanchion logs.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nats-server.sh
nats_bin=$(ensure_nats_server)
cargo build --release --bins --quiet
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=nats://127.0.0.1:$port
work=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/stanchion-recovery.XXXXXX")
nats_pid=
cleanup() {
  [ -z "$nats_pid" ] || { kill "$nats_pid" 2>/dev/null || true; wait "$nats_pid" 2>/dev/null || true; }
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

"$nats_bin" -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
nats_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

args=("$@")
has_sep=0
for a in "${args[@]}"; do [ "$a" = "--" ] && has_sep=1; done
[ $has_sep = 1 ] || args+=(-- -mm 0 -mb 0)

echo "\$ stanchion-bench recovery --url $url --dir $work/data ${args[*]}"
status=0
RUST_LIB_BACKTRACE=0 target/release/stanchion-bench recovery --url "$url" \
  --dir "$work/data" --log-dir "$work" "${args[@]}" || status=$?
if [ $status != 0 ]; then
  for f in "$work"/stanchion-*.log; do
    [ -f "$f" ] || continue
    echo "--- last lines of $(basename "$f")"
    tail -n 5 "$f"
  done
fi
exit $status
