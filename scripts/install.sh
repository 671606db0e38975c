#!/usr/bin/env bash
# Installs startifact-fs on a host without dpkg (on Debian and Ubuntu, prefer the
# package: scripts/package.sh). Builds, then puts in place:
#   $PREFIX/bin/startifact, $PREFIX/bin/startifact-fs   (PREFIX=/usr/local by default)
#   $PREFIX/share/man/man1/startifact.1, man8/startifact-fs.8
#   /etc/systemd/system/startifact-fs@.service           (ExecStart= pointing at $PREFIX/bin)
#   /etc/default/startifact-fs                            (only when there is none yet)
# DESTDIR=DIR installs under DIR instead of / (to package or to look first);
# PROFILE=dev installs the test build (default: release).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-/usr/local}"
root="${DESTDIR:-}"
# shellcheck source=scripts/build.sh
source scripts/build.sh

install -D -m 755 "$built/startifact" "$root$prefix/bin/startifact"
install -D -m 755 "$built/startifact-fs" "$root$prefix/bin/startifact-fs"
install -D -m 644 "$built/man/startifact.1" "$root$prefix/share/man/man1/startifact.1"
install -D -m 644 "$built/man/startifact-fs.8" "$root$prefix/share/man/man8/startifact-fs.8"
mkdir -p "$root/etc/systemd/system"
sed "s|/usr/bin/startifact-fs|$prefix/bin/startifact-fs|g" systemd/startifact-fs@.service \
  > "$root/etc/systemd/system/startifact-fs@.service"
chmod 644 "$root/etc/systemd/system/startifact-fs@.service"
if [ ! -e "$root/etc/default/startifact-fs" ]; then
  install -D -m 644 systemd/startifact-fs.default "$root/etc/default/startifact-fs"
fi
echo "installed startifact and startifact-fs in $root$prefix/bin"
[ -n "$root" ] || echo "then: systemctl daemon-reload; see README.md, Running as a service"
