#!/usr/bin/env bash
# Disk-space benchmark recorded in BENCHMARKS.md: the store directory's size
# over time under retention limits, each scenario against a fresh
# nats-server on a free loopback port and a fresh release stanchion on a
# temp sled store. Writes docs/bench/disk-<scenario>.{csv,png} and fails if
# the directory exceeded its bound after the warm-up (max_age: or if segment
# files are left once every message has expired).
# Usage: scripts/bench-disk.sh [scenario...]   (default: max_msgs max_age)
#   max_msgs: --max_msgs 10000, 2,000,000 msgs of 512 B as fast as PubAcks allow
#   max_age:  --max_age 5s, 10,000 msgs/s of 512 B for 180 s
# Environment: BENCH_OUT (default docs/bench), BENCH_PORT (default: a free port).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nats-server.sh
nats_bin=$(ensure_nats_server)
cargo build --release --bins --quiet
out=${BENCH_OUT:-docs/bench}
mkdir -p "$out"
work=$(mktemp -d)
pids=()

stop_servers() { # stanchion first (it flushes and says goodbye), then nats-server
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  pids=()
}
cleanup() { stop_servers; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  if [ -n "${BENCH_PORT:-}" ]; then echo "$BENCH_PORT"; return; fi
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

start() { # start nats-server and stanchion with extra stanchion flags
  stop_servers
  port=$(free_port)
  url=nats://127.0.0.1:$port
  "$nats_bin" -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
  pids=($!)
  wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || { cat "$work/nats.log" >&2; echo "nats-server did not start" >&2; exit 1; }
  rm -rf "$work/data"
  mkdir -p "$work/data"
  echo "\$ stanchion --nats_server $url --dir \$TMP/data $*"
  RUST_LOG=info target/release/stanchion --nats_server "$url" --dir "$work/data" "$@" >"$work/stan.log" 2>&1 &
  pids+=($!)
  wait_for 30 grep -q "stanchion is ready" "$work/stan.log" || { cat "$work/stan.log" >&2; echo "stanchion did not start" >&2; exit 1; }
}

bench() { # bench SCENARIO FLAGS...
  local name=$1
  shift
  echo "\$ stanchion-bench disk --dir \$TMP/data --csv $out/disk-$name.csv --png $out/disk-$name.png $*"
  local rc=0
  RUST_LIB_BACKTRACE=0 target/release/stanchion-bench disk --url "$url" --dir "$work/data" \
    --csv "$out/disk-$name.csv" --png "$out/disk-$name.png" "$@" || rc=$?
  stop_servers
  echo "stanchion's log:"
  cat "$work/stan.log"
  echo
  return $rc
}

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(max_msgs max_age)
status=0
for s in "${scenarios[@]}"; do
  echo "=== $s"
  case $s in
    max_msgs)
      start --max_msgs 10000
      bench max-msgs --count 2000000 --rate 0 --size 512 --sample-ms 50 --tail-secs 5 \
        --max-dir-mb 192 --max-sled-mb 64 \
        --title "max_msgs 10,000: 2,000,000 msgs of 512 B on one channel" || status=1 ;;
    max_age)
      start --max_age 5s
      bench max-age --count 1800000 --rate 10000 --size 512 --sample-ms 500 --tail-secs 15 \
        --max-dir-mb 192 --max-sled-mb 64 --max-final-segments-mb 0 \
        --title "max_age 5s: 10,000 msgs/s of 512 B for 180 s on one channel" || status=1 ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
exit $status
