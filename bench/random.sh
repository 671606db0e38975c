# shellcheck shell=bash
# The random-read phase, sourced by bench/run.sh.
#
# phase_random SERVER: an artifact of RANDOM_SIZE (the largest of SIZES unless set),
# staged once with our CLI; every round, on a fresh mount with the page cache dropped,
# bench/py/probe.py reads RANDOM_READS blocks of 4 KiB at random offsets (the same
# offsets every round: a fixed seed) with os.pread on one open file, each timed on its
# own, and checks every block against the local copy.
phase_random() {
  # shellcheck disable=SC2034 # bytes is set by staged_artifact, beside file and path
  local bytes file round line path
  world us-east-1
  staged_artifact "$RANDOM_SIZE"
  for round in $(seq "$RUNS"); do
    say "random 4 KiB reads of $RANDOM_SIZE, $SERVER, round $round/$RUNS"
    if ! mount_ours; then
      record_fail random.p50 "$SERVER" "startifact-fs did not mount"
      continue
    fi
    drop_caches
    if timeout "$TIMEOUT" "$PY" bench/py/probe.py pread "$path" "$file" "$RANDOM_READS" 42 \
      >"$TMP/probe.out" 2>>"$TMP/logs/probe.log"; then
      while read -r line; do record "${line% *}" "$SERVER" ms "${line#* }"; done <"$TMP/probe.out"
    else
      record_fail random.p50 "$SERVER" "probe.py pread (see the probe log)"
    fi
    record mem.random "$SERVER" MiB "$(daemon_hwm_mib)"
    unmount_ours
  done
}
