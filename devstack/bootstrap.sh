#!/usr/bin/env bash
# Installs everything the demo and the tests need, idempotently:
# Debian packages, the Python dev environment, and the Go-built binaries
# (cached outside the clone, so a second run takes seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '[lucid bootstrap] %s\n' "$*"; }

# Debian packages: the list lives in versions.py, read with the system Python. A package is
# installed when one of the commands it is listed for is missing (so npm that came with
# NodeSource's nodejs, which conflicts with Debian's npm package, is left alone).
mapfile -t apt_packages < <(python3 -c 'import sys; sys.path.insert(0, "devstack")
from lucid_devstack.host_commands import packages_needed; print("\n".join(packages_needed()))')
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  step "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  # xrdp is here only for the tests' own desktops. On a machine with systemd its package
  # enables and starts the system service: RDP logins on every interface, and a pid file
  # that keeps every test desktop's xrdp from starting. Stop what we just installed.
  if [[ " ${missing[*]} " == *" xrdp "* && -d /run/systemd/system ]]; then
    step "apt: disabling the system xrdp service (the stack runs its own xrdp on 127.0.0.1)"
    systemctl disable --now xrdp.service xrdp-sesman.service
  fi
fi

# Python environment, rebuilt only when the dependency declarations change.
stamp=".venv/.lucid-deps"
want=$(cat pyproject.toml {common,operator,recorder,devstack}/pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  step "python: creating .venv and installing pinned dependencies"
  python3 -m venv --clear .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ./common -e ./operator -e ./recorder -e ./devstack -e '.[dev]'
  echo "$want" > "$stamp"
fi

# The recorder's native core (native/, Rust via maturin), rebuilt only when its sources
# change. lucid_recorder runs without it, on its pure-Python reference, but the tests
# compare the two and the benchmarks measure it, so the dev environment always has it.
native_stamp=".venv/.lucid-native"
native_want=$(find native -path native/target -prune -o -type f -print | LC_ALL=C sort \
  | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$native_stamp" 2>/dev/null)" != "$native_want" ]]; then
  command -v cargo >/dev/null || { echo "[lucid bootstrap] Rust (cargo) is required to build native/" >&2; exit 1; }
  step "native: building lucid-native with maturin (cargo, release)"
  .venv/bin/pip install -q ./native
  .venv/bin/python -c 'import lucid_native'
  echo "$native_want" > "$native_stamp"
fi

# Go-built binaries: kube-apiserver, kube-controller-manager, etcd, MinIO, helm.
if ! command -v go >/dev/null; then
  echo "[lucid bootstrap] Go is required (the stack builds its binaries from Go modules)" >&2
  exit 1
fi
# Every command the stack runs must now be on PATH: a package that stopped shipping one
# fails here, by name, and not in the middle of the tests.
step "commands: checking that every command the stack runs is on PATH"
.venv/bin/python -m lucid_devstack.host_commands

# The browser player's npm packages (pinned in player/package-lock.json), reinstalled only
# when the lock file changes. The page itself is committed, built (recorder/.../web/), so
# neither the wheel nor the recorder image needs Node.
stamp="player/node_modules/.lucid-lock"
want=$(sha256sum player/package-lock.json | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  step "npm: installing the player's packages (npm ci)"
  npm ci --prefix player --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
step "go: building what is missing of kube-apiserver, kube-controller-manager, etcd, MinIO, helm"
.venv/bin/python -m lucid_devstack.build
step "ready"
