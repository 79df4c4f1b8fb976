#!/usr/bin/env bash
# make images: both images built from their Dockerfiles (serving-image/Dockerfile -> driftline/runtime:VERSION,
# operator/Dockerfile -> driftline/operator:VERSION) with podman, or docker where a user has it. Cached by content:
# an image whose dev.driftline.content label matches the hash of what it is built from is not built again.
# Where the official Python base cannot be pulled (no registry reachable), the bases are stand-ins made from Debian
# packages (hack/standin/Containerfile) and passed as build ARGs; the Dockerfiles are never edited for it.
# Writes dist/images.json: each image's reference, id (its config digest) and base. Prints that path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(dirname "$here")
log() { echo "images: $*" >&2; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -1)
PY_BUILD=python:3.11.14-bookworm PY_SLIM=python:3.11.14-slim-bookworm  # the Dockerfiles' defaults

engine=${DRIFTLINE_IMAGE_ENGINE:-}
if [ -z "$engine" ]; then
  # docker only where its daemon answers: a docker CLI without one (this machine has such) builds nothing.
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  else engine=podman; bash "$here/fetch-podman.sh" >/dev/null
  fi
fi
E=("$engine"); B=()
if [ "$engine" = podman ]; then
  # runc, not crun: crun refuses a hybrid cgroup layout. The limits stay at the machine's (a build may not raise them).
  E+=(--runtime runc --cgroup-manager=cgroupfs)
  # (nproc at the hard limit itself is refused inside the container here: 4096 is plenty for a build.)
  nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ] && nproc=4096
  B+=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$nproc:$nproc")
fi
has() { "${E[@]}" image inspect "$1" >/dev/null 2>&1; }

# The bases: official if present or pullable, else the stand-ins.
standin() {  # $1 tag, $2 Debian packages
  local tag="localhost/driftline-standin/python:$1" tmp
  if has "$tag"; then echo "$tag"; return; fi
  command -v mmdebstrap >/dev/null || bash "$here/fetch-podman.sh" >/dev/null
  log "no $1 to pull: a stand-in from Debian bookworm ($2)"
  tmp=$(mktemp -d)
  mmdebstrap --quiet --variant=minbase --include="$2" --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' bookworm "$tmp/os.tar" >&2
  "${E[@]}" import "$tmp/os.tar" "localhost/driftline-standin/os:$1" >/dev/null
  cp /etc/ssl/certs/ca-certificates.crt "$tmp/"
  "${E[@]}" build -q "${B[@]}" --network host --build-arg "OS=localhost/driftline-standin/os:$1" -t "$tag" \
    -f "$here/standin/Containerfile" "$tmp" >/dev/null
  rm -rf "$tmp"
  echo "$tag"
}
base() {  # $1 official reference, $2 stand-in packages
  # Fully qualified: podman would match a short name to any local image of that name and tag (the stand-in too).
  local official="docker.io/library/$1"
  if has "$official" || timeout 60 "${E[@]}" pull -q "$official" >/dev/null 2>&1; then echo "$official"; return; fi
  standin "${1#python:}" "$2"
}
slim=$(base "$PY_SLIM" python3,python3-venv,ca-certificates)
build_base=$(base "$PY_BUILD" python3,python3-venv,python3-dev,gcc,libc6-dev,ca-certificates)

content() {  # the hash of what an image is built from (the files .dockerignore lets in), and its bases
  (cd "$root" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -name '*.so' ! -name '_binning.c' \
    -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; echo "$slim $build_base") | sha256sum | cut -c1-16
}
build() {  # $1 reference, $2 Dockerfile, $3 content hash, rest: build args
  local ref=$1 file=$2 hash=$3; shift 3
  if has "$ref" && [ "$("${E[@]}" image inspect --format '{{ index .Labels "dev.driftline.content" }}' "$ref")" = "$hash" ]; then
    log "$ref: up to date ($hash)"; return
  fi
  local start old; start=$(date +%s)
  old=$("${E[@]}" image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)
  log "$ref: building from $file ..."
  "${E[@]}" build "${B[@]}" --network host --label "dev.driftline.content=$hash" "$@" -f "$root/$file" -t "$ref" \
    "$root" >&2
  # The image this one replaces, untagged now: removed unless a container still uses it.
  [ -z "$old" ] || "${E[@]}" rmi "$old" >/dev/null 2>&1 || true
  log "$ref: built in $(( $(date +%s) - start ))s"
}
runtime="driftline/runtime:$version" operator="driftline/operator:$version"
build "$runtime" serving-image/Dockerfile \
  "$(content serving-image/Dockerfile serving-image/requirements.lock serving-image/build.lock \
     serving-image/pyproject.toml serving-image/driftline_runtime)" \
  --build-arg "PYTHON_BUILD_IMAGE=$build_base" --build-arg "PYTHON_IMAGE=$slim"
build "$operator" operator/Dockerfile \
  "$(content operator/Dockerfile operator/requirements.lock operator/build.lock pyproject.toml README.md \
     operator/driftline)" \
  --build-arg "PYTHON_IMAGE=$slim"

mkdir -p "$root/dist"
{
  echo "{"
  sep=""
  for ref in "$runtime" "$operator"; do
    id=$("${E[@]}" image inspect --format '{{.Id}}' "$ref")
    printf '%s  "%s": {"id": "sha256:%s", "engine": "%s", "base": "%s"}' "$sep" "$ref" "${id#sha256:}" "$engine" \
      "$slim"
    sep=$',\n'
  done
  printf '\n}\n'
} > "$root/dist/images.json"
log "recorded in dist/images.json"
echo "$root/dist/images.json"
