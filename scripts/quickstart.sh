#!/usr/bin/env bash
# The main job on the embedded local store, on a fresh machine: build, stage an
# artifact with the CLI, list it, read its metadata, download it back.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/startifact-fs/target}"
cargo build --locked --bin startifact
startifact="$CARGO_TARGET_DIR/debug/startifact"

work="$(mktemp -d)"
store="$work/store"            # an empty folder: the store sets itself up
echo "hello from startifact" > "$work/dist.tar.gz"

set -x
"$startifact" --local-store "$store" SugarWater 1.0.0 --stage "$work/dist.tar.gz" --metadata lang=rust --filename
"$startifact" --local-store "$store" SugarWater --list
"$startifact" --local-store "$store" SugarWater --info
mkdir -p "$work/out"
"$startifact" --local-store "$store" SugarWater --download "$work/out" --filename
cmp "$work/dist.tar.gz" "$work/out/dist.tar.gz"
{ set +x; } 2>/dev/null
echo "the store is in $store; the download in $work/out"
