# shellcheck shell=bash
# The load phase, sourced by bench/run.sh.
#
# phase_load SERVER: LOAD_READERS (8) different artifacts of LOAD_SIZE, staged once with
# our CLI to one region, read all at once, cold. Each round: the page cache dropped, the
# 8 raw signed GETs at once (curl, the limit: the wall time of the whole batch); then a
# fresh mount, the page cache dropped, 8 `cat`s through it at once (the bytes checked
# with cmp in the first round); then another fresh mount, the page cache dropped, the
# same 8 `cat`s one after another (the bound: more readers at once must never take
# longer in all than reading them one by one). Records load.SIZE.get8, .cat8, .seq8
# (seconds), their CPU seconds as cpu.load.SIZE.* (the curls' own; the daemon's for the
# cats, read just before and after the timed batch), the daemon's peak memory after
# each batch (mem.load.SIZE.cat8, .seq8), and each round's ratios load.SIZE.vs-get
# (get8 / cat8) and load.SIZE.vs-seq (seq8 / cat8).
LOAD_READERS=8

# get_all URL...: one signed GET each, all at once; fails when any fails.
get_all() {
  local url pids=() pid status=0
  for url in "$@"; do
    s3_curl us-east-1 -o /dev/null "$url" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return "$status"
}

# cat_all PATH...: cat of each, all at once (the bytes to standard output); fails when
# any fails.
cat_all() {
  local path pids=() pid status=0
  for path in "$@"; do
    timeout -k 10 "$TIMEOUT" cat "$path" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return "$status"
}

# cat_each PATH...: cat of each, one after another; fails at the first that fails.
cat_each() {
  local path
  for path in "$@"; do timeout -k 10 "$TIMEOUT" cat "$path" || return 1; done
}

# load_cats FIGURE ROUND PATH...: on a fresh mount with the page cache dropped, the
# timed batch FIGURE (cat8: cat_all, seq8: cat_each); records it, the daemon's CPU and
# peak memory, and checks the bytes in round 1. Sets LOAD_T to the seconds when it
# succeeded, else to "". (Not run in a subshell: the mount's daemon must stay known to
# the clean-up at exit.)
LOAD_T=""
load_cats() {
  local figure=$1 round=$2 key t c0 c i run=cat_all
  shift 2
  key="load.$LOAD_SIZE.$figure"
  LOAD_T=""
  if [ "$figure" = seq8 ]; then run=cat_each; fi
  if ! mount_ours; then
    record_fail "$key" "$SERVER" "startifact-fs did not mount"
    return 0
  fi
  drop_caches
  c0=$(proc_cpu "$DAEMON_PID") || c0=""
  if t=$(read_timed "$run" "$@"); then
    record "$key" "$SERVER" s "$t"
    if [ -n "$c0" ] && c=$(cpu_since "$DAEMON_PID" "$c0"); then record "cpu.$key" "$SERVER" s "$c"; fi
    record "mem.load.$LOAD_SIZE.$figure" "$SERVER" MiB "$(daemon_hwm_mib)"
    if [ "$round" = 1 ]; then
      for ((i = 1; i <= LOAD_READERS; i++)); do
        if ! timeout "$TIMEOUT" cmp -s "$TMP/files/load-$i" "${!i}"; then
          record_fail "$key" "$SERVER" "the bytes of artifact $i read through the mount differ"
          t=""
        fi
      done
    fi
    LOAD_T=$t
  else
    record_fail "$key" "$SERVER" "$LOAD_READERS cats through the mount ($run)"
  fi
  unmount_ours
}

# ratio NUM DEN: NUM / DEN.
ratio_of() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", a / b }'; }

phase_load() {
  local bytes i round version urls=() paths=() get cat seq
  world us-east-1
  bytes=$(bytes_of "$LOAD_SIZE")
  for ((i = 1; i <= LOAD_READERS; i++)); do
    [ -e "$TMP/files/load-$i" ] || head -c "$bytes" /dev/urandom >"$TMP/files/load-$i"
    version="$bytes.0.$i"
    stage_once Load "$version" "$TMP/files/load-$i"
    urls+=("$S3_URL/bench-us-east-1/Load@$version")
    paths+=("$MNT/Load/$version/Load@$version")
  done
  for round in $(seq "$RUNS"); do
    say "$LOAD_READERS cold reads at once, $LOAD_SIZE each, $SERVER, round $round/$RUNS"
    drop_caches
    get=""
    if get=$(read_timed get_all "${urls[@]}"); then
      record "load.$LOAD_SIZE.get8" "$SERVER" s "$get"
      record "cpu.load.$LOAD_SIZE.get8" "$SERVER" s "$(last_cpu)"
    else
      get=""
      record_fail "load.$LOAD_SIZE.get8" "$SERVER" "$LOAD_READERS curl GETs at once"
    fi
    load_cats cat8 "$round" "${paths[@]}"
    cat=$LOAD_T
    load_cats seq8 "$round" "${paths[@]}"
    seq=$LOAD_T
    if [ -n "$get" ] && [ -n "$cat" ]; then record "load.$LOAD_SIZE.vs-get" "$SERVER" x "$(ratio_of "$get" "$cat")"; fi
    if [ -n "$seq" ] && [ -n "$cat" ]; then record "load.$LOAD_SIZE.vs-seq" "$SERVER" x "$(ratio_of "$seq" "$cat")"; fi
  done
}
