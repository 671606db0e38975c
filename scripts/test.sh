#!/usr/bin/env bash
# Runs the whole test suite on this machine, installing first what it needs:
# Debian's fuse3, attr, rsync and curl (and passwd, util-linux for the tests that act as
# other local users and for `script`'s terminal, and systemd for `systemd-analyze verify`
# of the units: no systemd runs); cargo-deb for the package test; a Python virtual
# environment with moto[server] and the Python startifact peer. The build folder and the
# environment live outside the
# clone (under ~/.cache/startifact-fs) so that later runs reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${STARTIFACT_CACHE:-$HOME/.cache/startifact-fs}"
mkdir -p "$cache"

missing=()
for tool in fusermount3:fuse3 getfattr:attr rsync:rsync curl:curl useradd:passwd setpriv:util-linux systemd-analyze:systemd; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv="${STARTIFACT_TEST_VENV:-$cache/venv}"
# Pinned: another moto (5.2.1) reported multipart completions as failed.
if ! "$venv/bin/python" -c 'import moto, startifact, sys; sys.exit(moto.__version__ != "5.2.5")' >/dev/null 2>&1 \
   || [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/startifact" ]; then
  echo "creating the Python environment in $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5' 'startifact==1.0a10'
fi
export STARTIFACT_TEST_VENV="$venv"
# The package test builds a .deb with cargo-deb (about 3 minutes to build, once).
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "installing cargo-deb"
  cargo install --locked --quiet cargo-deb@3.8.0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

# In tiers, fastest first; the first tier that fails ends the run:
#   1. the unit tests of the library and the binaries (the filesystem model, without
#      FUSE, included): seconds once built, no server;
#   2. the examples in the documentation (`cargo test` runs them too);
#   3. the integration tests: moto, real mounts, the Python peer.
# Arguments go to the integration tests' harness, e.g. `bash scripts/test.sh staging`
# runs the integration tests whose names contain "staging" (after tiers 1 and 2).
cargo test --locked --lib --bins
cargo test --locked --doc
cargo test --locked --test integration -- --test-threads="${TEST_THREADS:-4}" "$@"
