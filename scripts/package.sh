#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed first if missing):
#   bash scripts/package.sh            # release build: target/debian/startifact-fs_*.deb
#   sudo dpkg -i ~/.cache/startifact-fs/target/debian/startifact-fs_*.deb
# It holds both programs (/usr/bin), the systemd template unit, /etc/default/startifact-fs,
# the man pages, the README and examples of .mount/.automount units and an fstab line.
# PROFILE=dev packages the test build instead (what the tests do: no second build).
# The path of the package is printed last.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "installing cargo-deb" >&2
  cargo install --locked --quiet cargo-deb@3.8.0
fi
# shellcheck source=scripts/build.sh
source scripts/build.sh
out="$CARGO_TARGET_DIR/debian"
mkdir -p "$out"
cargo deb --no-build --profile "$profile" --output "$out" 2>&1 | tail -n 1
