#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (the S3 server the tests, benchmarks and demo store models in) from its Go module into a
# versioned cache, reused when present. Cold: ~11 minutes of CPU on 2 cores (a large dependency tree).
# Usage: hack/build-seaweedfs.sh   -> prints the binary's path on the last line of stdout
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"
cache_root=${DRIFTLINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftline}
dir="$cache_root/bin/seaweedfs-${SEAWEEDFS_VERSION}"
if [ -x "$dir/weed" ]; then echo "seaweedfs: cached in $dir" >&2; echo "$dir/weed"; exit 0; fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod
start=$(date +%s)
stage="$dir.partial.$$"; mkdir -p "$stage"; trap 'rm -rf "$stage"' EXIT
echo "[0s] building SeaweedFS ${SEAWEEDFS_VERSION} (weed) -> $dir; cold, this takes ~11 minutes on 2 cores" >&2
(cd "$here/seaweedfs" && go build -trimpath -ldflags "-s -w" -o "$stage/weed" github.com/seaweedfs/seaweedfs/weed)
mkdir -p "$dir"; mv "$stage/weed" "$dir/weed"
echo "[$(( $(date +%s) - start ))s] seaweedfs: built $dir/weed" >&2
echo "$dir/weed"
