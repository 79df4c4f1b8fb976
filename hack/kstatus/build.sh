#!/usr/bin/env bash
# Builds the kstatus CLI (main.go here: the real sigs.k8s.io/cli-utils kstatus library, pinned in go.mod) into a
# cache directory named after the cli-utils version and a hash of the sources, reused when present.
# Usage: hack/kstatus/build.sh     -> prints the path of the `kstatus` binary on stdout (messages on stderr)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${DRIFTLINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftline}
log() { echo "kstatus: $*" >&2; }

version=$(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' "$here/go.mod")
[ -n "$version" ] || { log "no sigs.k8s.io/cli-utils requirement in $here/go.mod"; exit 1; }
digest=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)
final="$cache_root/kstatus-$version-$digest"
if [ -x "$final/kstatus" ]; then log "cached in $final"; echo "$final/kstatus"; exit 0; fi

command -v go >/dev/null || { log "needs Go (go.mod says $(awk '$1 == "go" { print $2 }' "$here/go.mod"))"; exit 1; }
start=$(date +%s)
mkdir -p "$cache_root"
# The staging directory sits next to its final place, so that publishing it is one rename on one filesystem.
stage=$(mktemp -d "$cache_root/.kstatus-build.XXXXXX")
trap 'rm -rf "$stage"' EXIT
# -mod=readonly: go.mod and go.sum are complete and committed; a build never edits them.
(cd "$here" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$stage/kstatus" .)
echo '{"kind":"ConfigMap","metadata":{"name":"probe"}}' | "$stage/kstatus" | grep -q '"Current"' ||
  { log "the built binary does not answer"; exit 1; }

# Atomic publication: the directory appears complete or not at all. A concurrent run may have won.
chmod 755 "$stage"
mv -T "$stage" "$final" 2>/dev/null || [ -x "$final/kstatus" ] || { log "cannot publish $final"; exit 1; }
log "sigs.k8s.io/cli-utils $version kstatus in $final ($(( $(date +%s) - start ))s)"
echo "$final/kstatus"
