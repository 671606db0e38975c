#!/usr/bin/env bash
# Read benchmark: a raw S3 GET from a loopback moto_server against a cold `cat` of the
# same artifact through a startifact-fs mount, plus the daemon's memory and the cost of
# warm metadata calls (ls, readlink). See bench/README.md.
#
#   bash bench/read.sh                      # builds the release binaries first
#   BIN_DIR=path/to/target/debug bash bench/read.sh   # measures existing binaries
#
# Knobs: BIN_DIR, SIZE_MB (default 200), CACHE=1 (mount with an empty --cache-dir),
# CARGO_TARGET_DIR, STARTIFACT_TEST_VENV.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

RUNS=3          # raw GETs and cold cats (best and median are reported)
ITERATIONS=200  # warm metadata calls per measurement
READ_TIMEOUT=${READ_TIMEOUT:-600}
SIZE_MB=${SIZE_MB:-200}
CACHE=${CACHE:-0}

BENCH=bench/read.sh
VENV_PROGRAMS=()
EXTRA_TOOLS=()
# shellcheck source=bench/common.sh
source bench/common.sh

# --- 5. one region: bucket and parameters ---------------------------------------------
say "setting up us-east-1 (bucket bench-artifacts, /bench/bucket-name, /startifact)"
"$PY" - <<'EOF'
import json, os
import boto3

endpoint = os.environ["AWS_ENDPOINT_URL"]
s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=endpoint)
s3.create_bucket(Bucket="bench-artifacts")
ssm.put_parameter(Name="/bench/bucket-name", Value="bench-artifacts", Type="String")
ssm.put_parameter(
    Name="/startifact",
    Type="String",
    Value=json.dumps({
        "bucket_name_param": "/bench/bucket-name",
        "bucket_key_prefix": "",
        "parameter_name_prefix": "",
        "regions": "us-east-1",
        "save_ok": "y",
    }),
)
EOF
export STARTIFACT_REGIONS=us-east-1

# --- 6. the artifact -------------------------------------------------------------------
SIZE=$((SIZE_MB * 1000000))
say "writing $SIZE_MB MB of random data and staging it as Bench 1.0.0"
head -c "$SIZE" /dev/urandom >"$FILE"
"$CLI" Bench 1.0.0 --stage "$FILE" >"$TMP/stage.out" 2>&1 || die "startifact --stage failed"
sed 's/^/   stage: /' "$TMP/stage.out" >&2

# --- 7. raw GET from moto ---------------------------------------------------------------
# Signed, because moto answers an anonymous GET of an object with a private ACL (any
# PutObject upload, i.e. small artifacts) with 403; moto does not check the signature.
URL="$AWS_ENDPOINT_URL/bench-artifacts/Bench@1.0.0"
raw_get() { curl -sf --noproxy '*' --aws-sigv4 "aws:amz:us-east-1:s3" --user testing:testing -o /dev/null "$@" "$URL"; }
got="$(raw_get -w '%{size_download}')" || die "curl GET $URL failed"
[ "$got" = "$SIZE" ] || die "curl downloaded $got bytes, expected $SIZE"
get_times=()
for i in $(seq "$RUNS"); do
  t0=$(now_ns)
  raw_get || die "curl GET $URL failed"
  t1=$(now_ns)
  get_times+=("$(secs "$t0" "$t1")")
  say "raw GET $i/$RUNS: ${get_times[-1]} s"
done

# --- 8. mount -----------------------------------------------------------------------------
mount_fs() {
  local i
  local extra=()
  if [ "$CACHE" = 1 ]; then
    # A fresh, empty cache for every mount: each cold read goes through it.
    rm -rf "$TMP/cache"
    extra=(--cache-dir "$TMP/cache")
  fi
  "$FS" -f --metadata-ttl 60 "${extra[@]}" --log-file "$DAEMON_LOG" aws "$MNT" </dev/null >>"$TMP/daemon.out" 2>&1 &
  DAEMON_PID=$!
  for i in $(seq 300); do
    is_mounted && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { wait "$DAEMON_PID" || true; DAEMON_PID=""; die "startifact-fs exited before mounting"; }
    [ "$i" -lt 300 ] || die "$MNT not mounted within 30 s"
    sleep 0.1
  done
}

ART="$MNT/Bench/1.0.0/Bench@1.0.0"

# --- 9, 10. cold reads on fresh mounts ------------------------------------------------
cat_times=()
hwm_kb=0
rss_kb=0
for i in $(seq "$RUNS"); do
  mount_fs
  t0=$(now_ns)
  timeout -k 10 "$READ_TIMEOUT" cat "$ART" >/dev/null || die "cat $ART failed or timed out (${READ_TIMEOUT}s)"
  t1=$(now_ns)
  cat_times+=("$(secs "$t0" "$t1")")
  h=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status")
  r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status")
  if [ "$h" -gt "$hwm_kb" ]; then hwm_kb=$h; fi
  if [ "$r" -gt "$rss_kb" ]; then rss_kb=$r; fi
  say "cold cat $i/$RUNS: ${cat_times[-1]} s (daemon VmHWM $((h / 1024)) MiB, VmRSS $((r / 1024)) MiB)"
  if [ "$i" -eq 1 ]; then
    timeout -k 10 "$READ_TIMEOUT" cmp "$FILE" "$ART" || die "the mounted file differs from the staged one"
    say "cmp: the mounted file matches the staged one"
  fi
  if [ "$i" -lt "$RUNS" ]; then unmount; fi
done

# --- 11. warm metadata (the last mount has been used) ---------------------------------
target="$(readlink "$MNT/Bench/latest")" || die "readlink $MNT/Bench/latest failed"
[ "$target" = 1.0.0 ] || die "$MNT/Bench/latest points to '$target', expected '1.0.0'"
listing="$(ls "$MNT/Bench")" || die "ls $MNT/Bench failed"

LOCAL="$TMP/local/Bench"
mkdir -p "$LOCAL/1.0.0"
ln -s 1.0.0 "$LOCAL/latest"

# Mean milliseconds per call of "$@ TARGET" over $ITERATIONS calls.
per_call_ms() {
  local t0 t1 n
  t0=$(now_ns)
  for ((n = 0; n < ITERATIONS; n++)); do "$@" >/dev/null; done
  t1=$(now_ns)
  awk -v a="$t0" -v b="$t1" -v n="$ITERATIONS" 'BEGIN { printf "%.3f", (b - a) / 1e6 / n }'
}
say "warm metadata: $ITERATIONS x ls and readlink, mount then local folder"
ls_fs=$(per_call_ms ls "$MNT/Bench")
rl_fs=$(per_call_ms readlink "$MNT/Bench/latest")
ls_local=$(per_call_ms ls "$LOCAL")
rl_local=$(per_call_ms readlink "$LOCAL/latest")

# --- 12. report -----------------------------------------------------------------------------
get_best=$(best "${get_times[@]}")
cat_best=$(best "${cat_times[@]}")
cat_median=$(median "${cat_times[@]}")
ratio=$(awk -v c="$cat_best" -v g="$get_best" 'BEGIN { printf "%.2f", c / g }')
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mbps() { awk -v s="$1" -v t="$2" 'BEGIN { printf "%.0f", s / 1e6 / t }'; }

echo
echo "startifact-fs read benchmark — $(date '+%Y-%m-%d %H:%M:%S %z')"
echo "binaries: $PROFILE"
echo "machine:  nproc $(nproc), $(uname -sr)"
echo "artifact: $SIZE_MB MB ($SIZE bytes), $RUNS runs each, $ITERATIONS metadata calls"
echo
printf '%-34s %12s   %s\n' "measure" "value" "note"
printf '%-34s %12s   %s\n' "raw GET (curl from moto), best" "$get_best s" "$(mbps "$SIZE" "$get_best") MB/s; runs: ${get_times[*]}"
printf '%-34s %12s   %s\n' "cold cat via mount, best" "$cat_best s" "$(mbps "$SIZE" "$cat_best") MB/s; runs: ${cat_times[*]}"
printf '%-34s %12s   %s\n' "cold cat via mount, median" "$cat_median s" ""
printf '%-34s %12s   %s\n' "ratio cat/GET (best/best)" "$ratio" ""
printf '%-34s %12s   %s\n' "daemon VmHWM after cold cat" "$(mib "$hwm_kb") MiB" "max over runs; VmRSS $(mib "$rss_kb") MiB"
printf '%-34s %12s   %s\n' "warm ls, per call" "$ls_fs ms" "local folder: $ls_local ms"
printf '%-34s %12s   %s\n' "warm readlink, per call" "$rl_fs ms" "local folder: $rl_local ms"
