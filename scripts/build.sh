# shellcheck shell=bash
# Sourced by install.sh and package.sh: builds both programs and their man pages with
# the profile PROFILE (release by default; dev is the test build), in CARGO_TARGET_DIR
# (default ~/.cache/startifact-fs/target, outside the clone). Sets `profile` and
# `built`, the folder holding the programs and man/.
cache="${STARTIFACT_CACHE:-$HOME/.cache/startifact-fs}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
profile="${PROFILE:-release}"
case "$profile" in dev) built="$CARGO_TARGET_DIR/debug" ;; *) built="$CARGO_TARGET_DIR/$profile" ;; esac

cargo build --locked --quiet --bins --profile "$profile"
cargo run --locked --quiet --profile "$profile" --example man_pages -- "$built/man" >/dev/null
