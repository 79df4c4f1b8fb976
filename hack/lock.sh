#!/usr/bin/env bash
# Regenerates the images' lock files (exact versions with sha256 hashes, for CPython 3.11 on Linux, as in both
# Dockerfiles) from the pyproject files: `make lock`. The operator's lock takes the runtime's versions where they share
# a package, so one environment (make setup, the tests) can hold both exactly as the images do.
set -euo pipefail
cd "$(dirname "$0")/.."
compile() {  # $1 input, $2 output, then extra arguments
  local in=$1 out=$2
  shift 2
  .venv/bin/python -m uv pip compile "$in" "$@" --generate-hashes --python-version 3.11 --python-platform linux \
    --no-header --quiet -o "$out"
}
compile serving-image/pyproject.toml serving-image/requirements.lock
compile pyproject.toml operator/requirements.lock -c serving-image/requirements.lock
# What building each package needs (pip install --no-build-isolation uses these, not whatever PyPI has that day).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' \
  serving-image/pyproject.toml > "$tmp/runtime-build.in"
python3 -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' \
  pyproject.toml > "$tmp/operator-build.in"
compile "$tmp/runtime-build.in" serving-image/build.lock --no-annotate
compile "$tmp/operator-build.in" operator/build.lock --no-annotate
echo "locked: serving-image/requirements.lock serving-image/build.lock operator/requirements.lock operator/build.lock" >&2
