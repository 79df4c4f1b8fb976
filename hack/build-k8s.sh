#!/usr/bin/env bash
# Builds the real control-plane binaries from Go modules into a versioned cache, reused when present.
# Usage: hack/build-k8s.sh            -> prints the bin directory on the last line of stdout
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"
cache_root=${DRIFTLINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/driftline}
bin="$cache_root/bin/k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"
want=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd helm)
# The oldest Kubernetes Driftline supports: only its API server, for the CRD validation suite (devcluster.binaries).
min_bin="$cache_root/bin/kube-apiserver-${KUBERNETES_MIN_VERSION}"

complete() { for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done; }
complete_min() { [ -x "$min_bin/kube-apiserver" ]; }
if complete && complete_min; then echo "k8s binaries: cached in $bin" >&2; echo "$bin"; exit 0; fi

export CGO_ENABLED=0 GOFLAGS=-mod=mod
start=$(date +%s)
stage="$bin.partial.$$"; mkdir -p "$stage"; trap 'rm -rf "$stage"' EXIT
step() { echo "[$(( $(date +%s) - start ))s] $*" >&2; }

kver_for() {  # the version stamp of a Kubernetes build, as its own release build writes it
  local minor=${1#v1.}; minor=${minor%%.*}
  echo "-X k8s.io/component-base/version.gitVersion=$1 -X k8s.io/component-base/version.gitMajor=1" \
    "-X k8s.io/component-base/version.gitMinor=${minor} -X k8s.io/component-base/version.gitTreeState=clean" \
    "-X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
}
kver=$(kver_for "$KUBERNETES_VERSION")

build() {  # $1 module dir, $2 output (a file for one package, a directory ending in / for several), $3 ldflags, rest: packages
  local mod=$1 out=$2 ldf=$3; shift 3
  step "building $(for p in "$@"; do basename "$p"; done | tr '\n' ' ')..."
  (cd "$here/k8s-bin/$mod" && go build -trimpath -ldflags "-s -w $ldf" -o "$out" "$@")
  step "built: $(ls "$stage" | tr '\n' ' ')"
}
if ! complete; then
  step "Go $(go env GOVERSION); Kubernetes ${KUBERNETES_VERSION}, etcd ${ETCD_VERSION}, helm ${HELM_VERSION} -> $bin"
  step "a cold build takes a long while on 2 cores (tens of minutes); warm builds reuse GOCACHE"
  build etcd "$stage/etcd" "" go.etcd.io/etcd/server/v3
  build helm "$stage/helm" "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    helm.sh/helm/v3/cmd/helm
  build kubernetes "$stage/" "$kver" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  mkdir -p "$bin"; mv "$stage"/* "$bin/"
fi
if ! complete_min; then
  step "the oldest supported API server, Kubernetes ${KUBERNETES_MIN_VERSION} -> $min_bin"
  build kubernetes-min "$stage/kube-apiserver" "$(kver_for "$KUBERNETES_MIN_VERSION")" k8s.io/kubernetes/cmd/kube-apiserver
  mkdir -p "$min_bin"; mv "$stage/kube-apiserver" "$min_bin/"
fi
step "done in $(( $(date +%s) - start ))s"
echo "$bin"
