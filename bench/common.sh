# shellcheck shell=bash
# What every part of the benchmark shares, sourced once by bench/run.sh: messages, the
# knobs, a scratch folder, a hermetic environment (inherited AWS_* and STARTIFACT_*
# cleared, fake credentials, loopback only), clean-up on exit, timing, the page cache,
# and the figures file that bench/py/report.py turns into the table. Not meant to run
# on its own.
say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }
warn() { printf 'bench: warning: %s\n' "$*" >&2; }

# --- knobs -------------------------------------------------------------------------
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  RUNS=${RUNS:-2} SIZES=${SIZES:-20MB} VERSIONS=${VERSIONS:-1000}
  CALLS=${CALLS:-200} LS_CALLS=${LS_CALLS:-10} RANDOM_READS=${RANDOM_READS:-50}
  LOAD_SIZE=${LOAD_SIZE:-10MB} OUT_DIR=${OUT_DIR:-bench/quick}
else
  RUNS=${RUNS:-5} SIZES=${SIZES:-200MB 1GiB} VERSIONS=${VERSIONS:-10000}
  CALLS=${CALLS:-1000} LS_CALLS=${LS_CALLS:-50} RANDOM_READS=${RANDOM_READS:-100}
  LOAD_SIZE=${LOAD_SIZE:-100MB} OUT_DIR=${OUT_DIR:-bench}
fi
S3S=${S3S:-1}
TIMEOUT=${TIMEOUT:-900}   # seconds any one timed command may take
# RANDOM_SIZE: the artifact of the random reads; the largest of SIZES unless set.
for knob in RUNS VERSIONS CALLS LS_CALLS RANDOM_READS TIMEOUT; do
  case "${!knob}" in ''|*[!0-9]*|0) die "$knob must be a positive integer (got '${!knob}')";; esac
done

# Bytes in a size written as 200MB, 1GiB, 512MiB or 1GB (MB and GB are powers of ten).
bytes_of() {
  local n=${1%%[A-Za-z]*} unit=${1##*[0-9]}
  case "$n" in ''|*[!0-9]*) die "bad size '$1' (write e.g. 200MB or 1GiB)";; esac
  case "$unit" in
    MB) echo $((n * 1000000));;
    MiB) echo $((n * 1048576));;
    GB) echo $((n * 1000000000));;
    GiB) echo $((n * 1073741824));;
    *) die "bad size '$1' (units: MB, MiB, GB, GiB)";;
  esac
}
for size in $SIZES; do bytes_of "$size" >/dev/null; done
LARGEST=$(for size in $SIZES; do printf '%s %s\n' "$(bytes_of "$size")" "$size"; done | sort -n | tail -n 1 | cut -d' ' -f2)
RANDOM_SIZE=${RANDOM_SIZE:-$LARGEST}
bytes_of "$RANDOM_SIZE" >/dev/null
bytes_of "$LOAD_SIZE" >/dev/null   # the artifacts of the load phase

# --- scratch folder and hermetic environment -----------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/startifact-bench.XXXXXX")"
FIGURES="$TMP/figures.tsv"
: >"$FIGURES"
: >"$TMP/empty"
mkdir -p "$TMP/files" "$TMP/logs"

while read -r name; do
  case "$name" in AWS_*|STARTIFACT_*) unset "$name";; esac
done < <(compgen -e)
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE="$TMP/empty" AWS_SHARED_CREDENTIALS_FILE="$TMP/empty"
export LANG=C.UTF-8 PYTHONIOENCODING=utf-8   # the Python tool prints emoji

# --- clean-up: every part registers what it starts ------------------------------------
# Commands run at exit, last registered first (mounts before the servers they use).
CLEANUPS=()
at_exit() { CLEANUPS+=("$1"); }
cleanup() {
  local status=$? i
  trap - ERR
  set +e
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}"; done
  if [ "$status" -ne 0 ]; then
    echo "bench: FAILED (exit $status); logs:" >&2
    for log in "$TMP"/logs/*; do
      [ -s "$log" ] || continue
      echo "--- tail of $log" >&2
      tail -n 10 "$log" >&2
    done
  fi
  # KEEP_LOGS=DIR: the servers', daemons' and commands' logs are kept there.
  if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp -r "$TMP/logs/." "$KEEP_LOGS/"; fi
  rm -rf "$TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Stops a process we started: SIGTERM, then SIGKILL after $2 seconds (default 30).
stop_pid() {
  local pid=$1 wait_s=${2:-30} i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "process $pid ignored SIGTERM for $wait_s s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# --- timing, the page cache, figures -------------------------------------------------
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# Runs "$@" with the time limit, its output appended to the log file $LOG; prints its
# seconds. Fails (status 1) when the command fails. read_timed: the same, with the
# standard output thrown away (the bytes a read prints).
# It runs in a subshell of its own, so that bash's `times` (the user and system CPU of
# the children the shell waited for, with everything they waited for in turn) counts
# this command's processes only: their CPU seconds go to $CPU_FILE (see last_cpu).
CPU_FILE="$TMP/cpu"
timed() (
  t0="" t1="" log="${LOG:-$TMP/logs/commands.log}"
  limit=(timeout -k 10 "$TIMEOUT")
  # timeout(1) cannot run a shell function: those keep their own limits.
  if declare -F "$1" >/dev/null; then limit=(); fi
  t0=$(now_ns)
  times >"$CPU_FILE.0"
  "${limit[@]}" "$@" </dev/null >>"${TIMED_OUT:-$log}" 2>>"$log" || exit 1
  times >"$CPU_FILE.1"
  t1=$(now_ns)
  children_cpu "$CPU_FILE.0" "$CPU_FILE.1" >"$CPU_FILE"
  secs "$t0" "$t1"
)
read_timed() { TIMED_OUT=/dev/null timed "$@"; }

# children_cpu BEFORE AFTER: the children's CPU seconds (user + system) between two
# outputs of `times` (its second line, as "0m1.234s 0m0.056s").
children_cpu() {
  awk 'function s(x) { split(x, p, "m"); sub("s", "", p[2]); return p[1] * 60 + p[2] }
       FNR == 2 { c[FILENAME == ARGV[1] ? 0 : 1] = s($1) + s($2) }
       END { printf "%.3f", c[1] - c[0] }' "$1" "$2"
}
# The CPU seconds of what the last timed call ran (and what it waited for).
last_cpu() { cat "$CPU_FILE"; }

# The CPU seconds (user + system, all threads) process PID has used so far: fields 14
# and 15 of /proc/PID/stat, in clock ticks. cpu_since PID BEFORE: those since BEFORE.
CLK_TCK=$(getconf CLK_TCK)
proc_cpu() {
  local stat
  stat=$(<"/proc/$1/stat") || return 1
  # The name (field 2) is in parentheses and may hold spaces: count from after it.
  stat=${stat##*) }
  awk -v tck="$CLK_TCK" '{ printf "%.3f", ($12 + $13) / tck }' <<<"$stat"
}
cpu_since() {
  local now
  now=$(proc_cpu "$1") || return 1
  awk -v a="$2" -v b="$now" 'BEGIN { printf "%.3f", b - a }'
}

# measure KEY WHAT COMMAND...: times COMMAND (output thrown away) and records its seconds
# as KEY for the current server, or records KEY as failed at WHAT.
measure() {
  local key=$1 what=$2 t
  shift 2
  if t=$(read_timed "$@"); then record "$key" "$SERVER" s "$t"; else record_fail "$key" "$SERVER" "$what"; fi
}
# measure_cpu KEY WHAT COMMAND...: measure, and the CPU seconds of COMMAND's processes
# as cpu.KEY.
measure_cpu() {
  local key=$1 what=$2 t
  shift 2
  if t=$(read_timed "$@"); then
    record "$key" "$SERVER" s "$t"
    record "cpu.$key" "$SERVER" s "$(last_cpu)"
  else
    record_fail "$key" "$SERVER" "$what"
  fi
}
# measure_daemon KEY WHAT PID COMMAND...: measure, and the CPU seconds process PID (a
# mount's daemon) used while COMMAND ran as cpu.KEY.
measure_daemon() {
  local key=$1 what=$2 pid=$3 t c0 c
  shift 3
  c0=$(proc_cpu "$pid") || c0=""
  if t=$(read_timed "$@"); then
    record "$key" "$SERVER" s "$t"
    if [ -n "$c0" ] && c=$(cpu_since "$pid" "$c0"); then record "cpu.$key" "$SERVER" s "$c"; fi
  else
    record_fail "$key" "$SERVER" "$what"
  fi
}

# Writes dirty pages, then drops the page cache, dentries and inodes of the whole machine.
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# One measurement: record KEY SERVER UNIT VALUE. A figure is every value of one
# KEY and SERVER; the report takes their median, min and max.
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$FIGURES"; }
# A measurement that could not be made: record_fail KEY SERVER REASON.
record_fail() {
  warn "$1 ($2) failed: $3"
  printf '%s\t%s\tfail\t%s\n' "$1" "$2" "$3" >>"$FIGURES"
}
# A measurement that does not apply here: record_na KEY SERVER REASON.
record_na() { printf '%s\t%s\tna\t%s\n' "$1" "$2" "$3" >>"$FIGURES"; }
# A note for the results (the versions of the tools, which server, how a figure was made).
note() { printf '%s\t%s\n' "$1" "$2" >>"$TMP/notes.tsv"; }

# A file of $1 bytes of random data, made once: prints its path.
random_file() {
  local path="$TMP/files/random-$1"
  [ -e "$path" ] || head -c "$1" /dev/urandom >"$path"
  echo "$path"
}
