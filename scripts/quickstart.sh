#!/usr/bin/env bash
# The main job on the embedded local store, on a fresh machine: build, stage an
# artifact with the CLI, mount the store, and read it with ls, cat and readlink.
# Each step shows its command and output, then checks that output is what the README
# says; the first that is not stops the run, naming the step. A failed run unmounts and
# removes what it made; a run that passes leaves the store for you to look at.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v fusermount3 >/dev/null 2>&1 || ! command -v getfattr >/dev/null 2>&1; then
  echo "installing fuse3 (for /dev/fuse mounts) and attr (getfattr)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq fuse3 attr >/dev/null
fi
cache="${STARTIFACT_CACHE:-$HOME/.cache/startifact-fs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
# The same dependency build as `cargo test` (see the note in Cargo.toml).
cargo build --locked --bins
bin="$CARGO_TARGET_DIR/debug"

work="$(mktemp -d)"
store="$work/store"            # an empty folder: the store sets itself up
mnt="$work/mnt"
mkdir -p "$mnt"
echo "hello from startifact" > "$work/dist.tar.gz"

mounted() { grep -q " $mnt fuse.startifact-fs " /proc/mounts; }
cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    if [ -s "$work/startifact-fs.log" ]; then tail -n 20 "$work/startifact-fs.log" >&2; fi
    if mounted; then fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt"; fi
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step NAME COMMAND...: shows and runs COMMAND, keeping its output in $out.
step() {
  current="$1"
  shift
  echo "+ $*"
  out="$("$@")" || fail "exit status $?"
  if [ -n "$out" ]; then printf '%s\n' "$out"; fi
}
fail() {
  echo "🔥 quickstart failed at \"$current\": $*" >&2
  exit 1
}
is() { [ "$out" = "$1" ] || fail "expected \"$1\""; }
has_line() { grep -Eq -- "$1" <<<"$out" || fail "no line matches /$1/"; }

step "stage 1.0.0 with the CLI" \
  "$bin/startifact" --local-store "$store" SugarWater 1.0.0 --stage "$work/dist.tar.gz" --metadata lang=rust --filename
has_line '^📦 Staged to local\.$'

step "mount the store" \
  "$bin/startifact-fs" --staging-dir "$work/staging" --log-file "$work/startifact-fs.log" "local:$store" "$mnt"   # returns once it answers
mounted || fail "$mnt is not a fuse.startifact-fs mount"

step "ls shows 1.0.0 and latest -> 1.0.0" ls -l "$mnt/SugarWater"
has_line '^d.* 1\.0\.0$'
has_line '^l.* latest -> 1\.0\.0$'
[ "$(grep -c '^[dl-]' <<<"$out")" = 2 ] || fail "expected exactly 1.0.0 and latest"

step "readlink latest" readlink "$mnt/SugarWater/latest"
is "1.0.0"

step "cat the artifact" cat "$mnt/SugarWater/latest/dist.tar.gz"
is "hello from startifact"

step "getfattr shows the metadata" getfattr -d "$mnt/SugarWater/1.0.0/dist.tar.gz"
has_line '^user\.lang="rust"$'
has_line '^user\.startifact:filename="dist\.tar\.gz"$'

step "mkdir 1.1.0" mkdir "$mnt/SugarWater/1.1.0"
step "cp stages 1.1.0 on close" cp "$work/dist.tar.gz" "$mnt/SugarWater/1.1.0/"
step "readlink latest after the stage" readlink "$mnt/SugarWater/latest"
is "1.1.0"

step "unmount" fusermount3 -u "$mnt"
! mounted || fail "$mnt is still mounted"

echo "quickstart passed; the store is in $store"
