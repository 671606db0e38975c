# shellcheck shell=bash
# The read phases, sourced by bench/run.sh.
#
# phase_read SERVER: cold sequential reads of each of SIZES, one region. Every round reads
# the artifact once with each tool, each after the page cache was dropped and on a fresh
# mount: a signed raw GET (curl, the limit), `cat` through our mount, `cat` through
# `rclone mount` and through s3fs-fuse, and the Python tool's --download. Beside each
# time, the CPU seconds it cost (cpu.read.SIZE.TOOL): curl's and the Python tool's own
# (bash's `times`), and for the mounts their daemon's (/proc/PID/stat, read just before
# and just after the timed cat, so the mount's start is not counted; the cat's own CPU
# is not counted either).
#
# phase_cache: warm re-read of an artifact that our mount keeps in its --cache-dir,
# against `cat` of the same file on local disk, with the page cache dropped and warm.

# stage_once PROJECT VERSION FILE: stages FILE with our CLI unless this server already
# holds that version (phases share artifacts). No file name is saved, so no metadata
# object: s3s-fs can serve it.
STAGED=" "
stage_once() {
  local id="$SERVER/$STARTIFACT_REGIONS/$1@$2"
  case "$STAGED" in *" $id "*) return 0;; esac
  say "staging $1 $2 ($(stat -c %s "$3") bytes) with our CLI"
  LOG="$TMP/logs/stage.log" timed "$CLI" "$1" "$2" --stage "$3" >/dev/null || die "startifact $1 $2 --stage failed"
  STAGED+="$id "
}

# curl signed for the fake credentials (moto ignores the signature, s3s-fs checks it).
s3_curl() {
  local region=$1
  shift
  curl -sf --noproxy '*' --max-time "$TIMEOUT" --aws-sigv4 "aws:amz:$region:s3" --user testing:testing \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

# staged_artifact SIZE: a random file of SIZE, staged once as Read BYTES.0.0. Sets the
# caller's bytes, file and path (the artifact through our mount at $MNT).
staged_artifact() {
  bytes=$(bytes_of "$1")
  file=$(random_file "$bytes")
  stage_once Read "$bytes.0.0" "$file"
  path="$MNT/Read/$bytes.0.0/Read@$bytes.0.0"
}

# One cold read with each tool; records read.SIZE.TOOL.
read_round() {
  local size=$1 file=$2 version=$3 round=$4 key="Read@$3" t c0 c bucket=bench-us-east-1
  local url="$S3_URL/$bucket/$key"

  drop_caches
  measure_cpu "read.$size.get" "curl GET $url" s3_curl us-east-1 -o /dev/null "$url"

  if mount_ours; then
    drop_caches
    c0=$(proc_cpu "$DAEMON_PID") || c0=""
    if t=$(read_timed cat "$MNT/Read/$version/$key"); then
      record "read.$size.cat" "$SERVER" s "$t"
      if [ -n "$c0" ] && c=$(cpu_since "$DAEMON_PID" "$c0"); then record "cpu.read.$size.cat" "$SERVER" s "$c"; fi
      record "mem.read.$size" "$SERVER" MiB "$(daemon_hwm_mib)"
      if [ "$round" = 1 ] && ! timeout "$TIMEOUT" cmp -s "$file" "$MNT/Read/$version/$key"; then
        record_fail "read.$size.cat" "$SERVER" "the bytes read through the mount differ"
      fi
    else
      record_fail "read.$size.cat" "$SERVER" "cat through the mount"
    fi
    unmount_ours
  else
    record_fail "read.$size.cat" "$SERVER" "startifact-fs did not mount"
  fi

  local peer
  for peer in rclone s3fs; do
    if "mount_$peer" "$bucket"; then
      drop_caches
      measure_daemon "read.$size.$peer" "cat through $peer" "$PEER_PID" cat "$PEER_MNT/$key"
      if [ "$round" = 1 ] && ! timeout "$TIMEOUT" cmp -s "$file" "$PEER_MNT/$key"; then
        record_fail "read.$size.$peer" "$SERVER" "the bytes read through $peer differ"
      fi
      unmount_peer
    else
      record_fail "read.$size.$peer" "$SERVER" "$peer did not mount"
    fi
  done

  drop_caches
  measure_cpu "read.$size.python" "startifact --download" "$PEER" Read "$version" --download "$TMP/files/download"
  if [ "$round" = 1 ] && ! cmp -s "$file" "$TMP/files/download"; then
    record_fail "read.$size.python" "$SERVER" "the downloaded bytes differ"
  fi
  rm -f "$TMP/files/download"
}

phase_read() {
  local size bytes file path round
  world us-east-1
  for size in $SIZES; do
    staged_artifact "$size"
    for round in $(seq "$RUNS"); do
      say "cold read, $size, $SERVER, round $round/$RUNS"
      read_round "$size" "$file" "$bytes.0.0" "$round"
    done
  done
}

phase_cache() {
  local size bytes file round path t
  world us-east-1
  for size in $SIZES; do
    staged_artifact "$size"
    for round in $(seq "$RUNS"); do
      say "cached re-read, $size, round $round/$RUNS"
      rm -rf "$TMP/cache"
      if ! mount_ours --cache-dir "$TMP/cache"; then
        record_fail "cache.$size.mount-cold" "$SERVER" "startifact-fs did not mount"
        continue
      fi
      # The first read fills the cache; only the re-reads are timed.
      if ! read_timed cat "$path" >/dev/null || ! timeout "$TIMEOUT" cmp -s "$file" "$path"; then
        record_fail "cache.$size.mount-cold" "$SERVER" "the first read through the cache failed or differs"
        unmount_ours
        continue
      fi
      drop_caches
      measure "cache.$size.mount-cold" "cat through the mount" cat "$path"
      drop_caches
      measure "cache.$size.local-cold" "cat of the local file" cat "$file"
      # The drop above took the cache file's pages too: one untimed read through the
      # mount puts them back, so both files are now in the page cache.
      timeout "$TIMEOUT" cat "$path" >/dev/null || true
      measure "cache.$size.mount-warm" "cat through the mount" cat "$path"
      measure "cache.$size.local-warm" "cat of the local file" cat "$file"
      record "mem.cache.$size" "$SERVER" MiB "$(daemon_hwm_mib)"
      unmount_ours
    done
  done
  rm -rf "$TMP/cache"
}
