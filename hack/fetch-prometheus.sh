#!/usr/bin/env bash
# Fetches Debian's prometheus package (whatever apt's candidate is) into a versioned cache, reused when present.
# Nothing is installed: `apt-get download` + `dpkg -x` into a temporary directory; only the prometheus and promtool
# binaries are kept (promtool unit-tests the chart's alert rules).
# Usage: hack/fetch-prometheus.sh     -> prints the directory holding `prometheus` on stdout (messages on stderr)
#
# The binary is Go built with cgo: dynamically linked against glibc only (libc.so.6, Debian 12 needs >= 2.34),
# nothing else. The cached copy therefore runs on this machine and on any Linux with a recent enough glibc.
set -euo pipefail
cache_root=${DRIFTLINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftline}
log() { echo "prometheus: $*" >&2; }

candidate() {  # apt's candidate version of the prometheus package, empty if none (e.g. no package lists yet)
  LC_ALL=C apt-cache policy prometheus 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}
dir_for() { echo "$cache_root/prometheus-${1//:/_}"; }  # an epoch's colon stays out of the path

command -v apt-get >/dev/null || { log "needs apt-get and dpkg (a Debian-based machine)"; exit 1; }
version=$(candidate)
complete() { [ -x "$1/prometheus" ] && [ -x "$1/promtool" ]; }
if [ -n "$version" ] && complete "$(dir_for "$version")"; then
  log "cached in $(dir_for "$version")"
  dir_for "$version"
  exit 0
fi

start=$(date +%s)
mkdir -p "$cache_root"
# The staging directory sits next to its final place, so that publishing it is one rename on one filesystem.
work=$(mktemp -d "$cache_root/.prometheus-fetch.XXXXXX")
debs=$(mktemp -d)  # world-traversable parents: as root, apt downloads as the unprivileged _apt user
trap 'rm -rf "$work" "$debs"' EXIT
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$debs"; fi

download() { (cd "$debs" && apt-get download -q prometheus >&2); }
if ! download; then
  log "apt-get download failed; refreshing the package lists (apt-get update) and retrying"
  apt-get update -q >&2
  download
fi
deb=$(echo "$debs"/prometheus_*.deb)
[ -f "$deb" ] || { log "apt-get download left no prometheus_*.deb"; exit 1; }
version=$(dpkg-deb -f "$deb" Version)
final=$(dir_for "$version")
if complete "$final"; then  # the lists were stale and the fresh candidate is cached already
  log "cached in $final"
  echo "$final"
  exit 0
fi

dpkg -x "$deb" "$work/root"
stage="$work/prometheus-$version"
mkdir "$stage"
mv "$work/root/usr/bin/prometheus" "$stage/prometheus"
mv "$work/root/usr/bin/promtool" "$stage/promtool"
"$stage/prometheus" --version >&2 || { log "the extracted binary does not run (ldd: $(ldd "$stage/prometheus" 2>&1))"; exit 1; }
"$stage/promtool" --version >&2 || { log "the extracted promtool does not run"; exit 1; }

# Atomic publication: the versioned directory appears complete or not at all. A concurrent run may have won.
complete "$final" || rm -rf "$final"
mv -T "$stage" "$final" 2>/dev/null || complete "$final" || { log "cannot publish $final"; exit 1; }
log "Debian prometheus $version in $final ($(( $(date +%s) - start ))s)"
echo "$final"
