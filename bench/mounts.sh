# shellcheck shell=bash
# Mounting and unmounting, sourced by bench/run.sh: our startifact-fs, and the peers
# rclone mount and s3fs-fuse, each in the foreground as a child of this shell, so that
# its process is known (for its memory) and clean-up can stop it. Every mount_* fails
# (status 1) instead of exiting, so that a peer that does not come up is a failed
# figure, not a failed run.
MNT="$TMP/mnt"          # ours
PEER_MNT="$TMP/peer"    # rclone's or s3fs's
mkdir -p "$MNT" "$PEER_MNT"
DAEMON_PID=""
PEER_PID=""
at_exit 'unmount_ours; unmount_peer'

is_mounted() { grep -q " $1 $2 " /proc/mounts; }

# Waits up to 30 s for MOUNTPOINT to be mounted as TYPE while process PID lives.
wait_mounted() {
  local mnt=$1 type=$2 pid=$3
  for _ in $(seq 300); do
    is_mounted "$mnt" "$type" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Stops process $1 and makes sure nothing stays mounted at $2 (type $3).
stop_mount() {
  stop_pid "$1" 30
  if is_mounted "$2" "$3"; then
    warn "$2 still mounted after its process exited; fusermount3 -uz"
    fusermount3 -uz "$2" 2>/dev/null || umount -l "$2" 2>/dev/null || true
  fi
}

# mount_ours [OPTION...]: a fresh startifact-fs mount at $MNT with the given options.
mount_ours() {
  unmount_ours
  "$FS" -f --log-file "$TMP/logs/daemon.log" "$@" aws "$MNT" </dev/null >>"$TMP/logs/daemon.out" 2>&1 &
  DAEMON_PID=$!
  wait_mounted "$MNT" fuse.startifact-fs "$DAEMON_PID" && return 0
  warn "startifact-fs did not mount (see $TMP/logs/daemon.out)"
  unmount_ours
  return 1
}
unmount_ours() {
  [ -n "$DAEMON_PID" ] || is_mounted "$MNT" fuse.startifact-fs || return 0
  stop_mount "$DAEMON_PID" "$MNT" fuse.startifact-fs
  DAEMON_PID=""
}

# The daemon's peak resident memory so far (VmHWM), in MiB.
daemon_hwm_mib() {
  awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$DAEMON_PID/status"
}

# mount_rclone BUCKET: `rclone mount` of one bucket at $PEER_MNT, with rclone's defaults
# (no VFS cache: reads stream from S3), read-only.
mount_rclone() {
  unmount_peer
  cat >"$TMP/rclone.conf" <<EOF
[bench]
type = s3
provider = Other
env_auth = false
access_key_id = testing
secret_access_key = testing
endpoint = $S3_URL
region = us-east-1
force_path_style = true
EOF
  rclone --config "$TMP/rclone.conf" mount "bench:$1" "$PEER_MNT" --read-only \
    </dev/null >>"$TMP/logs/rclone.log" 2>&1 &
  peer_started $! fuse.rclone rclone
}

# mount_s3fs BUCKET: s3fs-fuse of one bucket at $PEER_MNT, path-style, read-only.
mount_s3fs() {
  unmount_peer
  echo "testing:testing" >"$TMP/s3fs.passwd"
  chmod 600 "$TMP/s3fs.passwd"
  s3fs "$1" "$PEER_MNT" -f -o "url=$S3_URL,use_path_request_style,passwd_file=$TMP/s3fs.passwd,endpoint=us-east-1,ro" \
    </dev/null >>"$TMP/logs/s3fs.log" 2>&1 &
  peer_started $! fuse.s3fs s3fs
}

# peer_started PID TYPE NAME: waits for the peer just started (logging to
# $TMP/logs/NAME.log) to mount at $PEER_MNT; unmounts and fails when it does not.
peer_started() {
  PEER_PID=$1 PEER_TYPE=$2
  wait_mounted "$PEER_MNT" "$PEER_TYPE" "$PEER_PID" && return 0
  warn "$3 did not come up (see $TMP/logs/$3.log)"
  unmount_peer
  return 1
}
unmount_peer() {
  [ -n "$PEER_PID" ] || return 0
  stop_mount "$PEER_PID" "$PEER_MNT" "$PEER_TYPE"
  PEER_PID=""
}
