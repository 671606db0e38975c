#!/usr/bin/env bash
# Staging (write) benchmark: stages a random file to three regions of a loopback
# moto_server with the Python `startifact` 1.0a10, with our `startifact` CLI, and through
# a startifact-fs mount (`cp`, then `rsync`), plus the daemon's memory. See bench/README.md.
#
#   bash bench/write.sh                      # builds the release binaries first
#   BIN_DIR=path/to/target/debug bash bench/write.sh   # measures existing binaries
#
# Knobs: BIN_DIR, SIZE_MB (default 200), PART_SIZE (the mount's --part-size), CARGO_TARGET_DIR,
# STARTIFACT_TEST_VENV.
set -Eeuo pipefail
cd "$(dirname "$0")/.."

RUNS=3          # stages per tool (best and median are reported)
WRITE_TIMEOUT=${WRITE_TIMEOUT:-600}
SIZE_MB=${SIZE_MB:-200}
REGIONS=us-east-1,us-west-2,eu-west-2

BENCH=bench/write.sh
VENV_PROGRAMS=(startifact)
EXTRA_TOOLS=(rsync)
# shellcheck source=bench/common.sh
source bench/common.sh
PEER="$VENV/bin/startifact"
export LANG=C.UTF-8 PYTHONIOENCODING=utf-8   # the Python tool prints emoji

# --- 5. three regions: a bucket and /bench/bucket-name in each, then `startifact --setup`
say "setting up $REGIONS (bucket bench-REGION and /bench/bucket-name in each)"
"$PY" - "$REGIONS" <<'EOF'
import os, sys
import boto3

endpoint = os.environ["AWS_ENDPOINT_URL"]
for region in sys.argv[1].split(","):
    s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint)
    ssm = boto3.client("ssm", region_name=region, endpoint_url=endpoint)
    bucket = f"bench-{region}"
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    ssm.put_parameter(Name="/bench/bucket-name", Value=bucket, Type="String")
EOF
# The /startifact configuration parameter in every region, written by our CLI (no
# terminal, so every answer is given as an option).
"$CLI" --setup --regions "$REGIONS" --bucket-name-param /bench/bucket-name \
  --bucket-key-prefix "" --parameter-name-prefix "" </dev/null >"$TMP/setup.out" 2>&1 \
  || die "startifact --setup failed"
sed 's/^/   setup: /' "$TMP/setup.out" >&2
export STARTIFACT_REGIONS="$REGIONS"

# --- 6. the artifact -------------------------------------------------------------------
SIZE=$((SIZE_MB * 1000000))
say "writing $SIZE_MB MB of random data"
head -c "$SIZE" /dev/urandom >"$FILE"

# --- 7. staging with the command-line tools ---------------------------------------------
# Each stage makes a new version, so nothing collides: 1.0.N Python, 2.0.N ours,
# 3.0.N cp through the mount, 4.0.N rsync through the mount.
# Runs "$@" once, with a time limit; appends its duration to the array named $1.
timed() {
  local -n into=$1
  shift
  local t0 t1
  t0=$(now_ns)
  timeout -k 10 "$WRITE_TIMEOUT" "$@" </dev/null >"$TMP/stage.out" 2>&1 || die "$* failed or timed out (${WRITE_TIMEOUT}s)"
  t1=$(now_ns)
  into+=("$(secs "$t0" "$t1")")
}

# Start-up cost of each command (no AWS calls), as a baseline for the stage times.
peer_start=(); cli_start=()
for i in $(seq "$RUNS"); do
  timed peer_start "$PEER" --version
  timed cli_start "$CLI" --version
done

peer_times=()
for i in $(seq "$RUNS"); do
  timed peer_times "$PEER" Bench "1.0.$i" --stage "$FILE"
  say "Python startifact --stage $i/$RUNS: ${peer_times[-1]} s (Bench 1.0.$i)"
done
cli_times=()
for i in $(seq "$RUNS"); do
  timed cli_times "$CLI" Bench "2.0.$i" --stage "$FILE"
  say "our startifact --stage $i/$RUNS: ${cli_times[-1]} s (Bench 2.0.$i)"
done

# --- 8. mount -----------------------------------------------------------------------------
mount_fs() {
  local i
  "$FS" -f --staging-dir "$TMP/staging" ${PART_SIZE:+--part-size "$PART_SIZE"} --log-file "$DAEMON_LOG" aws "$MNT" </dev/null >>"$TMP/daemon.out" 2>&1 &
  DAEMON_PID=$!
  for i in $(seq 300); do
    is_mounted && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || { wait "$DAEMON_PID" || true; DAEMON_PID=""; die "startifact-fs exited before mounting"; }
    [ "$i" -lt 300 ] || die "$MNT not mounted within 30 s"
    sleep 0.1
  done
}
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status"; }

# --- 9, 10. staging through the mount: cp, then rsync, each on a fresh mount ----------------
# Only the copy is timed: `mkdir` of the version folder comes first. cp's close()
# returns when the stage is done; rsync writes .NAME.XXXXXX and stages at the rename.
mount_fs
cp_times=()
for i in $(seq "$RUNS"); do
  timeout -k 10 60 mkdir "$MNT/Bench/3.0.$i" || die "mkdir $MNT/Bench/3.0.$i failed"
  timed cp_times cp "$FILE" "$MNT/Bench/3.0.$i/"
  say "cp through the mount $i/$RUNS: ${cp_times[-1]} s (Bench 3.0.$i)"
done
cp_hwm=$(hwm_kib)
cp_rss=$(rss_kib)
unmount

mount_fs
rsync_times=()
for i in $(seq "$RUNS"); do
  timeout -k 10 60 mkdir "$MNT/Bench/4.0.$i" || die "mkdir $MNT/Bench/4.0.$i failed"
  timed rsync_times rsync -a "$FILE" "$MNT/Bench/4.0.$i/"
  say "rsync through the mount $i/$RUNS: ${rsync_times[-1]} s (Bench 4.0.$i)"
done
rsync_hwm=$(hwm_kib)
rsync_rss=$(rss_kib)
unmount

# --- 11. checks: every region holds every version; read back through a fresh mount -------
say "checking that every region holds the $((4 * RUNS)) versions"
"$PY" - "$REGIONS" "$RUNS" "$SIZE" <<'EOF'
import os, sys
import boto3

endpoint = os.environ["AWS_ENDPOINT_URL"]
runs, size = int(sys.argv[2]), int(sys.argv[3])
want = {f"Bench@{major}.0.{i}" for major in (1, 2, 3, 4) for i in range(1, runs + 1)}
for region in sys.argv[1].split(","):
    s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint)
    got = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=f"bench-{region}"):
        for o in page.get("Contents", []):
            got[o["Key"]] = o["Size"]
    missing = sorted(want - got.keys())
    wrong = sorted(k for k in want & got.keys() if got[k] != size)
    if missing or wrong:
        sys.exit(f"{region}: missing {missing}, wrong size {wrong}")
EOF
versions="$(timeout 120 "$CLI" Bench --list </dev/null)" || die "startifact Bench --list failed"
count=$(printf '%s\n' "$versions" | grep -c .)
[ "$count" -eq $((4 * RUNS)) ] || die "startifact Bench --list shows $count versions, expected $((4 * RUNS))"

mount_fs
for v in 3.0.1 4.0.1; do
  listing="$(timeout -k 10 60 ls "$MNT/Bench/$v")" || die "ls $MNT/Bench/$v failed"
  [ "$listing" = "$NAME" ] || die "$MNT/Bench/$v holds '$listing', expected '$NAME'"
  timeout -k 10 "$WRITE_TIMEOUT" cmp "$FILE" "$MNT/Bench/$v/$NAME" || die "Bench $v read back through the mount differs"
done
say "cmp: Bench 3.0.1 (cp) and 4.0.1 (rsync), read back through a fresh mount, match the file"
unmount

# --- 12. report -----------------------------------------------------------------------------
peer_best=$(best "${peer_times[@]}")
ratio() { awk -v a="$(best "$@")" -v p="$peer_best" 'BEGIN { printf "%.2f", a / p }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mbps() { awk -v s="$SIZE" -v t="$1" 'BEGIN { printf "%.0f", s / 1e6 / t }'; }
row() { # label, memory note, times...
  local label=$1 memory=$2
  shift 2
  local b
  b=$(best "$@")
  printf '%-30s %9s %9s %7s %12s   %s\n' "$label" "$b s" "$(median "$@") s" "$(ratio "$@")" "$memory" "$(mbps "$b") MB/s; runs: $*"
}

echo
echo "startifact-fs staging (write) benchmark — $(date '+%Y-%m-%d %H:%M:%S %z')"
echo "binaries: $PROFILE"
echo "machine:  nproc $(nproc), $(uname -sr)"
echo "artifact: $SIZE_MB MB ($SIZE bytes) to 3 regions ($REGIONS) on one moto_server, $RUNS runs each"
echo
printf '%-30s %9s %9s %7s %12s   %s\n' "stage with" "best" "median" "ratio" "VmHWM" "note (ratio = best / Python best)"
row "Python startifact --stage" "-" "${peer_times[@]}"
row "our startifact --stage" "-" "${cli_times[@]}"
row "cp through the mount" "$(mib "$cp_hwm") MiB" "${cp_times[@]}"
row "rsync -a through the mount" "$(mib "$rsync_hwm") MiB" "${rsync_times[@]}"
echo
echo "VmHWM: the daemon's peak resident memory after its $RUNS stages (VmRSS then: cp $(mib "$cp_rss") MiB, rsync $(mib "$rsync_rss") MiB)."
echo "Start-up (--version, best of $RUNS): Python startifact $(best "${peer_start[@]}") s, our startifact $(best "${cli_start[@]}") s; included in their stage times."
echo "Checked: all $((4 * RUNS)) versions in every region at full size; Bench 3.0.1 and 4.0.1 read back through a fresh mount match (cmp)."
