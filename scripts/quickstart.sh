#!/usr/bin/env bash
# The main job on the embedded local store, on a fresh machine: build, stage an
# artifact with the CLI, mount the store, and read it with ls, cat and readlink.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v fusermount3 >/dev/null 2>&1; then
  echo "installing fuse3 (for /dev/fuse mounts)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq fuse3 attr >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/startifact-fs/target}"
cargo build --locked --bins
bin="$CARGO_TARGET_DIR/debug"

work="$(mktemp -d)"
store="$work/store"            # an empty folder: the store sets itself up
mnt="$work/mnt"
mkdir -p "$mnt"
echo "hello from startifact" > "$work/dist.tar.gz"

set -x
"$bin/startifact" --local-store "$store" SugarWater 1.0.0 --stage "$work/dist.tar.gz" --metadata lang=rust --filename
"$bin/startifact-fs" --staging-dir "$work/staging" "local:$store" "$mnt"   # returns once the mount answers
ls -l "$mnt/SugarWater"
readlink "$mnt/SugarWater/latest"
cat "$mnt/SugarWater/latest/dist.tar.gz"
getfattr -d "$mnt/SugarWater/1.0.0/dist.tar.gz" || true
mkdir "$mnt/SugarWater/1.1.0" && cp "$work/dist.tar.gz" "$mnt/SugarWater/1.1.0/"   # staged on close
readlink "$mnt/SugarWater/latest"
fusermount3 -u "$mnt"
{ set +x; } 2>/dev/null
echo "the store is in $store"
