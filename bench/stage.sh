# shellcheck shell=bash
# The staging phase, sourced by bench/run.sh.
#
# phase_stage SERVER: stages each of SIZES to three regions, every round once with each
# method, a new version each time: the Python tool's --stage, our CLI's --stage, `cp`
# and `rsync -a` into our mount (each on a fresh mount; close() returns when the stage
# is done; rsync stages at its rename), our CLI and `cp` again with
# --multipart-threshold 5G (one request a region, as the Python tool sends: the cli1 and
# cp1 rows), one raw PUT to one region, and three raw PUTs at once (one per region;
# curl, UNSIGNED-PAYLOAD). The source file stays in the page
# cache throughout. Every stage is checked (each region holds the object at full size)
# and then deleted, so that the servers do not fill the disk. On s3s-fs the mount cannot
# stage: it saves the file name as a K/metadata object beside K, which s3s-fs (one path
# per key) cannot hold. Beside each time, the CPU seconds it cost (cpu.stage.SIZE.TOOL):
# for our CLI, the Python tool and curl, their processes' own (bash's `times`); for
# cp, rsync and cp1, the mount's daemon's (/proc/PID/stat, just before and just after
# the timed copy: the mount's start and the copying tool's own CPU are not counted).
STAGE_REGIONS=us-east-1,us-west-2,eu-west-2

# checked FIGURE KEY BYTES SECONDS [CPU]: records FIGURE (stage.SIZE.METHOD), and CPU
# as cpu.FIGURE, when every region holds KEY at BYTES, else a failure.
checked() {
  local figure=$1 key=$2 bytes=$3 t=$4 cpu=${5:-}
  if "$PY" bench/py/world.py check "$STAGE_REGIONS" "$bytes" "$key" >>"$TMP/logs/world.log" 2>&1; then
    record "$figure" "$SERVER" s "$t"
    if [ -n "$cpu" ]; then record "cpu.$figure" "$SERVER" s "$cpu"; fi
  else
    record_fail "$figure" "$SERVER" "not in every region at full size after the stage"
  fi
}

# stage_through TOOL SIZE BYTES FILE VERSION [MOUNT OPTION...]: a fresh mount, mkdir,
# then the timed copy (cp1: cp into a mount staging in one request a region). The
# staging folder stays from one mount to the next, as a host's does: with it what the
# daemons learned of each region (sending.json).
stage_through() {
  local tool=$1 size=$2 bytes=$3 file=$4 version=$5 t="" c0 cpu
  shift 5
  if ! mount_ours --staging-dir "$TMP/staging" "$@"; then
    record_fail "stage.$size.$tool" "$SERVER" "startifact-fs did not mount"
    return
  fi
  if ! timeout 60 mkdir "$MNT/Stage/$version"; then
    record_fail "stage.$size.$tool" "$SERVER" "mkdir in the mount"
  else
    c0=$(proc_cpu "$DAEMON_PID") || c0=""
    case "$tool" in
      cp|cp1) t=$(timed cp "$file" "$MNT/Stage/$version/") || t="";;
      rsync) t=$(timed rsync -a "$file" "$MNT/Stage/$version/") || t="";;
    esac
    cpu=""
    if [ -n "$c0" ]; then cpu=$(cpu_since "$DAEMON_PID" "$c0") || cpu=""; fi
    if [ -n "$t" ]; then checked "stage.$size.$tool" "Stage@$version" "$bytes" "$t" "$cpu"
    else record_fail "stage.$size.$tool" "$SERVER" "$tool into the mount"; fi
    record "mem.stage.$size.$tool" "$SERVER" MiB "$(daemon_hwm_mib)"
  fi
  unmount_ours
  forget "$STAGE_REGIONS" "Stage@$version"
}

# One PUT per region, all at once; fails when any fails.
put_all() {
  local file=$1 key=$2 region pids=() status=0
  for region in ${STAGE_REGIONS//,/ }; do
    s3_curl "$region" -o /dev/null -T "$file" "$S3_URL/bench-$region/$key" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  return "$status"
}

phase_stage() {
  local size bytes file round version t n=0
  world "$STAGE_REGIONS"
  # Each server's run starts knowing nothing of how its regions take large files: the
  # first stage of each size goes in parts, as on a new host (see bench/README.md).
  rm -rf "$TMP/staging" "$TMP/state"
  export XDG_STATE_HOME="$TMP/state"
  for size in $SIZES; do
    bytes=$(bytes_of "$size")
    file=$(random_file "$bytes")
    n=$((n + 1))
    for round in $(seq "$RUNS"); do
      # moto never gives back the memory of an object sent in one request: a fresh
      # one (same address, so what was learned of it still applies) each round.
      restart_moto
      world "$STAGE_REGIONS"
      say "staging, $size to $STAGE_REGIONS, $SERVER, round $round/$RUNS"
      version="$n.$round"
      if t=$(timed "$PEER" Stage "$version.1" --stage "$file"); then
        checked "stage.$size.python" "Stage@$version.1" "$bytes" "$t" "$(last_cpu)"
      else record_fail "stage.$size.python" "$SERVER" "startifact --stage"; fi
      if t=$(timed "$CLI" Stage "$version.2" --stage "$file"); then
        checked "stage.$size.cli" "Stage@$version.2" "$bytes" "$t" "$(last_cpu)"
      else record_fail "stage.$size.cli" "$SERVER" "our startifact --stage"; fi
      if t=$(timed "$CLI" Stage "$version.5" --stage "$file" --multipart-threshold 5G); then
        checked "stage.$size.cli1" "Stage@$version.5" "$bytes" "$t" "$(last_cpu)"
      else record_fail "stage.$size.cli1" "$SERVER" "our startifact --stage --multipart-threshold 5G"; fi
      forget "$STAGE_REGIONS" "Stage@$version.1" "Stage@$version.2" "Stage@$version.5"

      if [ "$SERVER" = s3s ]; then
        record_na "stage.$size.cp" "$SERVER" "s3s-fs cannot hold K and K/metadata"
        record_na "stage.$size.rsync" "$SERVER" "s3s-fs cannot hold K and K/metadata"
        record_na "stage.$size.cp1" "$SERVER" "s3s-fs cannot hold K and K/metadata"
      else
        stage_through cp "$size" "$bytes" "$file" "$version.3"
        stage_through rsync "$size" "$bytes" "$file" "$version.4"
        stage_through cp1 "$size" "$bytes" "$file" "$version.6" --multipart-threshold 5G
      fi

      if t=$(timed s3_curl us-east-1 -o /dev/null -T "$file" "$S3_URL/bench-us-east-1/raw-$version"); then
        record "stage.$size.put1" "$SERVER" s "$t"
        record "cpu.stage.$size.put1" "$SERVER" s "$(last_cpu)"
      else record_fail "stage.$size.put1" "$SERVER" "curl PUT"; fi
      if t=$(timed put_all "$file" "raw3-$version"); then
        checked "stage.$size.put3" "raw3-$version" "$bytes" "$t" "$(last_cpu)"
      else record_fail "stage.$size.put3" "$SERVER" "three curl PUTs"; fi
      forget "$STAGE_REGIONS" "raw-$version" "raw3-$version"
    done
  done
}
