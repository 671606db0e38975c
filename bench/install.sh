# shellcheck shell=bash
# Installs what the benchmark needs when it is missing, sourced by bench/run.sh after
# bench/common.sh: Debian's s3fs, rclone, rsync, curl and fuse3; a Python environment with
# moto[server] and the Python startifact pinned as scripts/test.sh pins them, boto3 and
# matplotlib; s3s-fs (a Rust S3 server over a folder, from crates.io) when S3S=1; and
# our release binaries unless BIN_DIR names them. Sets CLI, FS, VENV, PY, PEER, S3S_BIN
# and PROFILE.
cache="${STARTIFACT_CACHE:-$HOME/.cache/startifact-fs}"
mkdir -p "$cache"

# --- Debian packages -------------------------------------------------------------------
missing=()
for tool in s3fs:s3fs rclone:rclone rsync:rsync curl:curl fusermount3:fuse3 cmp:diffutils timeout:coreutils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -e /dev/fuse ] || die "/dev/fuse is missing"
[ -w /proc/sys/vm/drop_caches ] || die "cannot drop the page cache (/proc/sys/vm/drop_caches is not writable: run as root)"

# --- Python environment ----------------------------------------------------------------
# The versions scripts/test.sh pins; the test environment is used as it is when it has
# everything, else a separate one is made so that the test environment is left alone.
MOTO_VERSION=5.2.5
PEER_VERSION=1.0a10
venv_has_all() {
  "$1/bin/python" - "$MOTO_VERSION" "$PEER_VERSION" >/dev/null 2>&1 <<'EOF' && [ -x "$1/bin/moto_server" ] && [ -x "$1/bin/startifact" ]
import sys
from importlib.metadata import version
import boto3, matplotlib, moto, startifact
sys.exit(moto.__version__ != sys.argv[1] or version("startifact") != sys.argv[2])
EOF
}
VENV="${STARTIFACT_TEST_VENV:-$cache/venv}"
if ! venv_has_all "$VENV"; then
  VENV="${BENCH_VENV:-$cache/bench-venv}"
  if ! venv_has_all "$VENV"; then
    say "installing moto[server]==$MOTO_VERSION, startifact==$PEER_VERSION and matplotlib in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "startifact==$PEER_VERSION" boto3 matplotlib
    venv_has_all "$VENV" || die "the Python environment $VENV is still incomplete"
  fi
fi
PY="$VENV/bin/python"
PEER="$VENV/bin/startifact"

# --- s3s-fs ------------------------------------------------------------------------------
S3S_BIN=""
if [ "$S3S" = 1 ]; then
  S3S_BIN="$cache/s3s-fs/bin/s3s-fs"
  if [ ! -x "$S3S_BIN" ]; then
    # 0.14.1: later versions need a newer rustc.
    say "installing s3s-fs 0.14.1 (cargo install, a few minutes once)"
    if ! cargo install s3s-fs@0.14.1 --features binary --locked --root "$cache/s3s-fs" >"$TMP/logs/s3s-install.log" 2>&1; then
      warn "cargo install s3s-fs failed (see above); the s3s-fs section is skipped"
      tail -n 5 "$TMP/logs/s3s-install.log" >&2
      S3S_BIN=""
    fi
  fi
fi

# --- our binaries -----------------------------------------------------------------------
if [ -n "${BIN_DIR:-}" ]; then
  PROFILE="existing binaries in BIN_DIR=$BIN_DIR"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
  command -v cargo >/dev/null || die "cargo not found (or set BIN_DIR to a folder holding startifact and startifact-fs)"
  say "building: cargo build --release --bins (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  cargo build --locked --release --bins
  BIN_DIR="$CARGO_TARGET_DIR/release"
  PROFILE="release, built in $BIN_DIR"
fi
CLI="$BIN_DIR/startifact"
FS="$BIN_DIR/startifact-fs"
for bin in "$CLI" "$FS"; do
  [ -x "$bin" ] || die "$bin is missing or not executable"
done
