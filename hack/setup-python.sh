#!/usr/bin/env bash
# Creates .venv with the operator, the runtime and the dev tools, all editable. Idempotent and quick when warm.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
if ! .venv/bin/python -m uv --version >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv>=0.5"
fi
stamp=.venv/.driftline-installed
# The compiled drift binning is part of the install: a change to its sources rebuilds it.
sum=$(cat pyproject.toml serving-image/pyproject.toml serving-image/driftline_runtime/drift/_binning.pyx \
  serving-image/driftline_runtime/drift/binning.h serving-image/requirements.lock operator/requirements.lock |
  sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
  echo "installing the Python environment into .venv ..." >&2
  # The images' locks as constraints: the tests run the very versions the images ship (hack/lock.sh).
  VIRTUAL_ENV=$PWD/.venv .venv/bin/python -m uv pip install -q -c serving-image/requirements.lock \
    -c operator/requirements.lock -e ./serving-image -e '.[dev,demo]'
  echo "$sum" > "$stamp"
fi
