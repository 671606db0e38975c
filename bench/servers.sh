# shellcheck shell=bash
# The servers, sourced by bench/run.sh: moto_server for SSM (always) and S3, and
# optionally s3s-fs, a faster S3 server in Rust, for S3 only. use_s3 chooses which one
# serves S3 to everything started after it (our programs, the Python tool, boto3, curl,
# rclone, s3fs), through AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_SSM.
S3S_URL=""   # set by start_s3s when it starts
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits until $2 answers HTTP, while process $1 lives.
wait_http() {
  for _ in $(seq 600); do
    kill -0 "$1" 2>/dev/null || return 1
    curl -s --noproxy '*' -o /dev/null "$2/" && return 0
    sleep 0.1
  done
  return 1
}

# start_moto [PORT]: a new moto_server (on PORT, else a free port).
start_moto() {
  local port=${1:-}
  [ -n "$port" ] || port=$(free_port)
  MOTO_URL="http://127.0.0.1:$port"
  say "starting moto_server on $MOTO_URL"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >>"$TMP/logs/moto.log" 2>&1 &
  MOTO_PID=$!
  if [ -z "${MOTO_STOPPED_AT_EXIT:-}" ]; then
    # shellcheck disable=SC2016 # expanded at exit
    at_exit 'stop_pid "$MOTO_PID" 10'
    MOTO_STOPPED_AT_EXIT=1
  fi
  wait_http "$MOTO_PID" "$MOTO_URL" || die "moto_server did not start"
  export AWS_ENDPOINT_URL_SSM="$MOTO_URL"
}

# restart_moto: a fresh moto_server at the same address, with nothing in it (moto keeps
# the memory of every object it was sent in one request, deleted or not: about 1 GiB
# for each 1 GiB PUT, so a stage phase of many would exhaust the machine's memory).
restart_moto() {
  local port=${MOTO_URL##*:}
  stop_pid "$MOTO_PID" 10
  start_moto "$port"
  [ "$SERVER" = moto ] && export AWS_ENDPOINT_URL_S3="$MOTO_URL"
  return 0
}

# Starts s3s-fs over a folder; returns non-zero (after a warning) when it cannot.
start_s3s() {
  local port
  [ -n "$S3S_BIN" ] || return 1
  port=$(free_port)
  S3S_URL="http://127.0.0.1:$port"
  mkdir -p "$TMP/s3s-root"
  say "starting s3s-fs on $S3S_URL"
  "$S3S_BIN" --host 127.0.0.1 --port "$port" --access-key testing --secret-key testing \
    "$TMP/s3s-root" </dev/null >"$TMP/logs/s3s-fs.log" 2>&1 &
  S3S_PID=$!
  # shellcheck disable=SC2016 # expanded at exit
  at_exit 'stop_pid "$S3S_PID" 10'
  wait_http "$S3S_PID" "$S3S_URL" || { warn "s3s-fs did not start"; S3S_URL=""; return 1; }
}

# use_s3 moto|s3s: which server answers S3 from now on. SERVER names it in the figures.
use_s3() {
  SERVER=$1
  case "$1" in
    moto) S3_URL="$MOTO_URL";;
    s3s) S3_URL="$S3S_URL";;
    *) die "use_s3: unknown server $1";;
  esac
  unset AWS_ENDPOINT_URL
  export AWS_ENDPOINT_URL_S3="$S3_URL" S3_URL SERVER
}

# world REGIONS: in every region a bucket bench-REGION on the current S3 server, and the
# /bench/bucket-name and /startifact parameters (moto); STARTIFACT_REGIONS names them.
world() {
  "$PY" bench/py/world.py setup "$1" >>"$TMP/logs/world.log" 2>&1 || die "setting up $1 failed"
  export STARTIFACT_REGIONS="$1"
}

# forget REGIONS KEY...: deletes objects from every region's bucket (large artifacts
# that are no longer needed, so that the servers do not fill the disk).
forget() { "$PY" bench/py/world.py delete "$@" >>"$TMP/logs/world.log" 2>&1 || warn "deleting $* failed"; }
