# shellcheck shell=bash
# The metadata phase, sourced by bench/run.sh.
#
# phase_metadata SERVER: a project "Meta" of VERSIONS versions, written straight into one
# region by bench/py/seed.py (with file name metadata on moto; none on s3s-fs, which
# cannot hold K and K/metadata). Checked once through our mount and the Python tool.
# Then every round, on a fresh mount, bench/py/probe.py times the first listing of the
# project (cold), LS_CALLS more (warm), and CALLS x readlink of latest and stat of the
# latest version's file (warm), each call on its own, in one Python process. Beside the
# cold listing, the same listing straight from the server with boto3 (ListObjectsV2, every
# page; the keys include the metadata objects on moto) shows what the server costs, and
# the same warm listing of a local folder of as many entries shows what listing that
# many names costs without FUSE (the bound of the warm ls). Then PROCESSES (16)
# processes at once each do CALLS x (readlink of latest, stat of the latest version's
# file), each call timed (warm; p50 and p99 over every process's calls), and the same
# on the local folder (its latest, and a local file).
SEEDED=" "
PROCESSES=${PROCESSES:-16}

phase_metadata() {
  local latest file round line metadata=()
  world us-east-1
  if [ "$SERVER" = moto ]; then metadata=(--metadata); fi
  case "$SEEDED" in
    *" $SERVER "*) latest="1.0.$((VERSIONS - 1))";;
    *)
      say "seeding Meta with $VERSIONS versions on $SERVER"
      latest=$("$PY" bench/py/seed.py Meta "$VERSIONS" us-east-1 "${metadata[@]}" 2>>"$TMP/logs/seed.log") \
        || { record_fail meta.ls-cold "$SERVER" "seeding $VERSIONS versions"; return; }
      SEEDED+="$SERVER "
      ;;
  esac
  if [ "$SERVER" = moto ]; then file="seed-$((VERSIONS - 1)).txt"; else file="Meta@$latest"; fi

  if ! metadata_check "$latest" "$file"; then
    record_fail meta.ls-cold "$SERVER" "the seeded project does not read back"
    return
  fi
  # The local folder: a version folder per version, and latest.
  if [ ! -d "$TMP/local-listing" ]; then
    mkdir -p "$TMP/local-listing"
    (cd "$TMP/local-listing" && seq -f '1.0.%.0f' 0 $((VERSIONS - 1)) | xargs mkdir && ln -s "$latest" latest)
  fi
  [ -e "$TMP/local-file" ] || echo "version $latest" >"$TMP/local-file"
  for round in $(seq "$RUNS"); do
    say "metadata, $VERSIONS versions, $SERVER, round $round/$RUNS"
    if ! mount_ours; then
      record_fail meta.ls-cold "$SERVER" "startifact-fs did not mount"
      continue
    fi
    if "$PY" bench/py/probe.py meta "$MNT/Meta" "$MNT/Meta/$latest/$file" "$LS_CALLS" "$CALLS" "$TMP/local-listing" \
      >"$TMP/probe.out" 2>>"$TMP/logs/probe.log"; then
      while read -r line; do record "meta.${line% *}" "$SERVER" ms "${line#* }"; done <"$TMP/probe.out"
    else
      record_fail meta.ls-cold "$SERVER" "probe.py meta"
    fi
    if "$PY" bench/py/probe.py parallel "$MNT/Meta" "$MNT/Meta/$latest/$file" "$CALLS" "$PROCESSES" \
      "$TMP/local-listing" "$TMP/local-file" >"$TMP/probe.out" 2>>"$TMP/logs/probe.log"; then
      while read -r line; do record "meta.${line% *}" "$SERVER" ms "${line#* }"; done <"$TMP/probe.out"
    else
      record_fail "meta.readlink$PROCESSES" "$SERVER" "probe.py parallel"
    fi
    record mem.meta "$SERVER" MiB "$(daemon_hwm_mib)"
    unmount_ours
    if line=$("$PY" bench/py/world.py list us-east-1 Meta@ 2>>"$TMP/logs/world.log"); then
      record meta.list-raw "$SERVER" ms "${line#* }"
    else
      record_fail meta.list-raw "$SERVER" "ListObjectsV2 with boto3"
    fi
  done
}

# The seeded latest version reads back whole through a fresh mount and the Python tool,
# and the project lists every version.
metadata_check() {
  local latest=$1 file=$2 ok=0 count entries
  mount_ours || return 1
  [ "$(readlink "$MNT/Meta/latest")" = "$latest" ] || { warn "Meta/latest is not $latest"; ok=1; }
  [ "$(cat "$MNT/Meta/$latest/$file")" = "version $latest" ] || { warn "Meta/$latest/$file differs"; ok=1; }
  entries=("$MNT"/Meta/*)   # a glob reads the folder without a stat of each entry
  count=$((${#entries[@]} - 1))
  [ "$count" = "$VERSIONS" ] || { warn "the mount lists $count versions, not $VERSIONS"; ok=1; }
  unmount_ours
  timed "$PEER" Meta --download "$TMP/files/meta" >/dev/null || { warn "startifact Meta --download failed"; ok=1; }
  [ "$(cat "$TMP/files/meta" 2>/dev/null)" = "version $latest" ] || { warn "startifact Meta --download differs"; ok=1; }
  rm -f "$TMP/files/meta"
  return "$ok"
}
