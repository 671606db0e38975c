# What bench/read.sh and bench/write.sh share, sourced by both after they set
# BENCH (their name for messages), VENV_PROGRAMS and EXTRA_TOOLS (arrays, may be empty)
# and SIZE_MB: say/die, the binaries (BIN_DIR or a release build), the Python
# environment, a hermetic environment (inherited AWS_* and STARTIFACT_* cleared, fake
# credentials, loopback only), the mount's clean-up, timing helpers, and a moto_server
# on a free loopback port (AWS_ENDPOINT_URL). Not meant to run on its own.
say() { printf '== %s\n' "$*" >&2; }
die() { printf '%s: error: %s\n' "$BENCH" "$*" >&2; exit 1; }
trap 'printf "%s: failed at line %s: %s\n" "$BENCH" "$LINENO" "$BASH_COMMAND" >&2' ERR

case "$SIZE_MB" in ''|*[!0-9]*|0) die "SIZE_MB must be a positive integer (got '$SIZE_MB')";; esac

# --- 1. binaries -------------------------------------------------------------------
if [ -n "${BIN_DIR:-}" ]; then
  PROFILE="existing binaries in BIN_DIR=$BIN_DIR (profile: $(basename "$BIN_DIR"))"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/startifact-fs/target}"
  command -v cargo >/dev/null || die "cargo not found (or set BIN_DIR to a folder holding startifact and startifact-fs)"
  say "building: cargo build --release --bins (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  cargo build --release --bins
  BIN_DIR="$CARGO_TARGET_DIR/release"
  PROFILE="release (built in $BIN_DIR)"
fi
CLI="$BIN_DIR/startifact"
FS="$BIN_DIR/startifact-fs"
for bin in "$CLI" "$FS"; do
  [ -x "$bin" ] || die "$bin is missing or not executable"
done

# --- 2. Python environment (moto_server, boto3, and what the script adds) -------------
VENV="${STARTIFACT_TEST_VENV:-$HOME/.cache/startifact-fs/venv}"
venv_ok=1
for program in moto_server "${VENV_PROGRAMS[@]}"; do
  [ -x "$VENV/bin/$program" ] || venv_ok=0
done
if [ "$venv_ok" = 0 ] || ! "$VENV/bin/python" -c 'import boto3' >/dev/null 2>&1; then
  die "no usable Python environment in $VENV (needs boto3, bin/moto_server ${VENV_PROGRAMS[*]}).
Run 'bash scripts/test.sh' once, or create it:
  python3 -m venv '$VENV' && '$VENV/bin/pip' install 'moto[server]' 'startifact==1.0a10'"
fi
PY="$VENV/bin/python"

for tool in curl cmp fusermount3 timeout "${EXTRA_TOOLS[@]}"; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
[ -e /dev/fuse ] || die "/dev/fuse is missing"

# --- 3. hermetic environment ---------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/startifact-bench.XXXXXX")"
MNT="$TMP/mnt"
FILE="$TMP/artifact.bin"
NAME="$(basename "$FILE")"
DAEMON_LOG="$TMP/daemon.log"
mkdir -p "$MNT"
: >"$TMP/empty"

while read -r name; do
  case "$name" in AWS_*|STARTIFACT_*) unset "$name";; esac
done < <(compgen -e)
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE="$TMP/empty" AWS_SHARED_CREDENTIALS_FILE="$TMP/empty"

MOTO_PID=""
DAEMON_PID=""

is_mounted() { grep -q " $MNT fuse.startifact-fs " /proc/mounts; }

# Stops the daemon (SIGTERM, then SIGKILL after 30 s) and makes sure nothing stays mounted.
unmount() {
  if [ -n "$DAEMON_PID" ]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 300); do
      kill -0 "$DAEMON_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
      say "warning: daemon $DAEMON_PID ignored SIGTERM for 30 s; killing it"
      kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
  fi
  if is_mounted; then
    say "warning: $MNT still mounted after the daemon exited; fusermount3 -u"
    fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" || true
  fi
}

cleanup() {
  local status=$?
  trap - ERR
  set +e
  unmount
  if [ -n "$MOTO_PID" ]; then
    kill -TERM "$MOTO_PID" 2>/dev/null
    wait "$MOTO_PID" 2>/dev/null
  fi
  if [ "$status" -ne 0 ]; then
    echo "$BENCH: FAILED (exit $status)" >&2
    for log in "$TMP/moto.log" "$TMP/setup.out" "$TMP/stage.out" "$TMP/daemon.out" "$DAEMON_LOG"; do
      if [ -s "$log" ]; then
        echo "--- tail of $log" >&2
        tail -n 15 "$log" >&2
      fi
    done
  fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ns() { date +%s%N; }
# Seconds between two nanosecond stamps.
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
best() { printf '%s\n' "$@" | sort -g | head -n 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# --- 4. moto_server -------------------------------------------------------------------
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
say "starting moto_server on 127.0.0.1:$PORT"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" </dev/null >"$TMP/moto.log" 2>&1 &
MOTO_PID=$!
for i in $(seq 600); do
  kill -0 "$MOTO_PID" 2>/dev/null || die "moto_server exited at start"
  curl -s --noproxy '*' -o /dev/null "$AWS_ENDPOINT_URL/" && break
  [ "$i" -lt 600 ] || die "moto_server did not answer within 60 s"
  sleep 0.1
done
