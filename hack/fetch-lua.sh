#!/usr/bin/env bash
# Fetches Debian's Lua 5.1 interpreter (whatever apt's candidate of lua5.1 is) into a versioned cache, reused when
# present, for the tests of the Argo CD health checks (examples/gitops/argocd/health/).
# Nothing is installed: `apt-get download` + `dpkg -x` into a temporary directory. Debian's lua5.1 has the Lua core
# linked in; besides glibc it needs only libreadline.so.8, which is fetched too (a fresh machine may lack it) and found
# through a wrapper that sets LD_LIBRARY_PATH.
# Usage: hack/fetch-lua.sh     -> prints the path of the `lua` wrapper on stdout (messages on stderr)
#
# Why 5.1: Argo CD runs health checks in gopher-lua, which implements Lua 5.1. A script that works on Debian's lua5.1
# uses no 5.2+ syntax (goto, integer division, bitwise operators) that Argo CD would refuse.
set -euo pipefail
cache_root=${DRIFTLINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftline}
packages=(lua5.1 libreadline8)
log() { echo "lua: $*" >&2; }

candidate() {  # apt's candidate version of lua5.1, empty if none (e.g. no package lists yet)
  LC_ALL=C apt-cache policy lua5.1 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}
dir_for() { echo "$cache_root/lua-${1//:/_}"; }  # an epoch's colon stays out of the path

command -v apt-get >/dev/null || { log "needs apt-get and dpkg (a Debian-based machine)"; exit 1; }
version=$(candidate)
if [ -n "$version" ] && [ -x "$(dir_for "$version")/lua" ]; then
  log "cached in $(dir_for "$version")"
  echo "$(dir_for "$version")/lua"
  exit 0
fi

start=$(date +%s)
mkdir -p "$cache_root"
# The staging directory sits next to its final place, so that publishing it is one rename on one filesystem.
work=$(mktemp -d "$cache_root/.lua-fetch.XXXXXX")
debs=$(mktemp -d)  # world-traversable parents: as root, apt downloads as the unprivileged _apt user
trap 'rm -rf "$work" "$debs"' EXIT
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$debs"; fi

download() { (cd "$debs" && apt-get download -q "${packages[@]}" >&2); }
if ! download; then
  log "apt-get download failed; refreshing the package lists (apt-get update) and retrying"
  apt-get update -q >&2
  download
fi
deb=$(echo "$debs"/lua5.1_*.deb)
[ -f "$deb" ] || { log "apt-get download left no lua5.1_*.deb"; exit 1; }
version=$(dpkg-deb -f "$deb" Version)
final=$(dir_for "$version")
if [ -x "$final/lua" ]; then  # the lists were stale and the fresh candidate is cached already
  log "cached in $final"
  echo "$final/lua"
  exit 0
fi

for d in "$debs"/*.deb; do dpkg -x "$d" "$work/root"; done
stage="$work/lua-$version"
mkdir -p "$stage/bin" "$stage/lib"
cp -L "$work/root/usr/bin/lua5.1" "$stage/bin/lua5.1"
# libreadline wherever the architecture puts it: the real file and its soname link (relative, kept by cp -a).
find "$work/root" -name 'libreadline.so.8*' -exec cp -a -t "$stage/lib/" {} +
cat >"$stage/lua" <<'WRAPPER'
#!/bin/sh
# Debian's lua5.1 with the shared libraries fetched next to it (hack/fetch-lua.sh).
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/bin/lua5.1" "$@"
WRAPPER
chmod 755 "$stage" "$stage/lua"
printf '%s\n' "${packages[@]}" | while read -r p; do
  printf '%s %s\n' "$p" "$(dpkg-deb -f "$(echo "$debs/${p}"_*.deb)" Version)"
done >"$stage/PACKAGES"
got=$("$stage/lua" -e 'io.write(_VERSION)') || { log "the extracted interpreter does not run (ldd: $(
  LD_LIBRARY_PATH="$stage/lib" ldd "$stage/bin/lua5.1" 2>&1))"; exit 1; }
[ "$got" = "Lua 5.1" ] || { log "expected Lua 5.1, the interpreter says $got"; exit 1; }

# Atomic publication: the versioned directory appears complete or not at all. A concurrent run may have won.
[ -x "$final/lua" ] || rm -rf "$final"
mv -T "$stage" "$final" 2>/dev/null || [ -x "$final/lua" ] || { log "cannot publish $final"; exit 1; }
log "Debian lua5.1 $version in $final ($(( $(date +%s) - start ))s)"
echo "$final/lua"
