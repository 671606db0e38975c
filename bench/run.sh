#!/usr/bin/env bash
# The benchmark: every figure of bench/README.md in one run, against loopback servers
# only (moto_server, and s3s-fs for S3 when S3S=1). Installs what it needs, builds our
# release binaries unless BIN_DIR names them, then writes OUT_DIR/RESULTS.md and
# OUT_DIR/results.png and prints the figures and the targets, met or short.
#
#   bash bench/run.sh                     # everything (2-3 hours on 2 cores)
#   bash bench/run.sh read stage          # some phases: read cache stage load metadata random
#   QUICK=1 bash bench/run.sh             # a smoke run: 2 rounds, 20 MB, 1,000 versions
#
# Knobs: RUNS, SIZES, VERSIONS, CALLS, LS_CALLS, RANDOM_READS, RANDOM_SIZE, LOAD_SIZE, S3S, QUICK,
# TIMEOUT, OUT_DIR, KEEP_LOGS, BIN_DIR, CARGO_TARGET_DIR, STARTIFACT_TEST_VENV, BENCH_VENV
# (see bench/README.md).
set -Eeuo pipefail
cd "$(dirname "$0")/.."

ALL_PHASES=(read cache stage load metadata random)
PHASES=("$@")
[ "${#PHASES[@]}" -gt 0 ] || PHASES=("${ALL_PHASES[@]}")
for phase in "${PHASES[@]}"; do
  case " ${ALL_PHASES[*]} " in *" $phase "*) ;; *) echo "bench: unknown phase '$phase' (phases: ${ALL_PHASES[*]})" >&2; exit 2;; esac
done

# shellcheck source=bench/common.sh
source bench/common.sh
# shellcheck source=bench/install.sh
source bench/install.sh
# shellcheck source=bench/servers.sh
source bench/servers.sh
# shellcheck source=bench/mounts.sh
source bench/mounts.sh
# shellcheck source=bench/read.sh
source bench/read.sh
# shellcheck source=bench/stage.sh
source bench/stage.sh
# shellcheck source=bench/load.sh
source bench/load.sh
# shellcheck source=bench/metadata.sh
source bench/metadata.sh
# shellcheck source=bench/random.sh
source bench/random.sh

start_moto
SERVERS=(moto)
if [ "$S3S" = 1 ] && start_s3s; then SERVERS+=(s3s); fi

# --- what the results say about the machine and the tools ----------------------------
note date "$(date -u '+%Y-%m-%d %H:%M UTC')"
note command "$(printf '%s ' "QUICK=$QUICK RUNS=$RUNS SIZES='$SIZES' VERSIONS=$VERSIONS CALLS=$CALLS LS_CALLS=$LS_CALLS RANDOM_READS=$RANDOM_READS RANDOM_SIZE=$RANDOM_SIZE LOAD_SIZE=$LOAD_SIZE S3S=$S3S" bash bench/run.sh "${PHASES[@]}")"
if [ "$QUICK" = 1 ]; then note warning "QUICK=1: a smoke run of the harness, not the benchmark"
elif [ "$RUNS" -lt 5 ]; then note warning "RUNS=$RUNS: the issue asks for the median of at least 5 runs"; fi
note machine "nproc $(nproc), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory, $(uname -sr), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
note "our binaries" "$PROFILE (startifact-fs built $(date -u -r "$FS" '+%Y-%m-%d %H:%M UTC')); this checkout: commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' with local changes'); $("$CLI" --version 2>&1 | head -n 1)"
note moto "$("$PY" -c 'import moto; print(moto.__version__)') (moto_server, SSM always and S3 in the moto rows)"
note "s3s-fs" "$(if [ -n "$S3S_URL" ]; then echo "0.14.1 (S3 in the s3s rows; SSM stays on moto)"
  elif [ "$S3S" = 1 ]; then echo "not run: it could not be installed or started (see the warnings)"
  else echo "not run (S3S=0)"; fi)"
note "Python environment" "$VENV"
note "Python startifact" "$("$PEER" --version 2>&1 | tail -n 1)"
note rclone "$(rclone version 2>/dev/null | head -n 1)"
note "s3fs-fuse" "$(s3fs --version 2>/dev/null | head -n 1)"
note curl "$(curl --version | head -n 1 | cut -d' ' -f1-2)"
note "page cache" "dropped (echo 3 > /proc/sys/vm/drop_caches) before every cold read and random-read round; the staged file stays cached"
note CPU "user + system seconds per GiB of the artifact (of the 8 in the load phase): of curl, our CLI and the Python tool, their own processes (bash's times); of cat, cp and rsync through a mount, the mount's daemon (/proc/PID/stat, clock tick 1/$CLK_TCK s, read just before and after the timed command)"

# --- the phases, on each server where they mean something ------------------------------
for server in "${SERVERS[@]}"; do
  use_s3 "$server"
  for phase in "${PHASES[@]}"; do
    # The cached re-read is served from local disk: the S3 server does not matter.
    if [ "$phase" = cache ] && [ "$server" != moto ]; then continue; fi
    say "phase $phase on $server"
    "phase_$phase"
  done
done

unmount_ours
unmount_peer
note "run time" "$((SECONDS / 60)) min $((SECONDS % 60)) s"
mkdir -p "$OUT_DIR"
cp "$FIGURES" "$OUT_DIR/figures.tsv"
"$PY" bench/py/report.py "$FIGURES" "$TMP/notes.tsv" "$OUT_DIR"
