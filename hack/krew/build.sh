#!/usr/bin/env bash
# Builds the krew CLI (sigs.k8s.io/krew, pinned in go.mod; tools.go imports its command) into a cache directory
# named after the krew version and a hash of go.mod and go.sum, reused when present.
# Usage: hack/krew/build.sh     -> prints the path of the `krew` binary on stdout (messages on stderr)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache_root=${DRIFTLINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftline}
log() { echo "krew: $*" >&2; }

version=$(awk '$1 == "require" && $2 == "sigs.k8s.io/krew" { print $3 }' "$here/go.mod")
[ -n "$version" ] || { log "no sigs.k8s.io/krew requirement in $here/go.mod"; exit 1; }
digest=$(cat "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-12)
final="$cache_root/krew-$version-$digest"
if [ -x "$final/krew" ]; then log "cached in $final"; echo "$final/krew"; exit 0; fi

command -v go >/dev/null || { log "needs Go (go.mod says $(awk '$1 == "go" { print $2 }' "$here/go.mod"))"; exit 1; }
start=$(date +%s)
mkdir -p "$cache_root"
stage=$(mktemp -d "$cache_root/.krew-build.XXXXXX")  # beside its final place: publishing is one rename
trap 'rm -rf "$stage"' EXIT
(cd "$here" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w" -o "$stage/krew" sigs.k8s.io/krew/cmd/krew)
KREW_ROOT="$stage/root" "$stage/krew" version >/dev/null || { log "the built binary does not answer"; exit 1; }
rm -rf "$stage/root"
chmod 755 "$stage"
mv -T "$stage" "$final" 2>/dev/null || [ -x "$final/krew" ] || { log "cannot publish $final"; exit 1; }
log "sigs.k8s.io/krew $version in $final ($(( $(date +%s) - start ))s)"
echo "$final/krew"
