"""Peers installed for real from PyPI into a virtualenv of their own, `bench/.venv-peers` (gitignored), at the versions
pinned in `bench/requirements-peers.txt`, so their dependencies never disturb the project's `.venv`.

The venv is made with uv (as hack/setup-python.sh does) and reinstalled when the requirements file changes. Peer code
runs in a subprocess with that venv's python; data goes over .npy files, results come back as JSON on stdout.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import REPO, BenchError, say

VENV = REPO / "bench" / ".venv-peers"
REQUIREMENTS = REPO / "bench" / "requirements-peers.txt"
PYTHON = VENV / "bin" / "python"
_STAMP = VENV / ".bench-requirements-sha256"


def _uv() -> list[str]:
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    found = shutil.which("uv")
    if found is None:
        raise BenchError("uv is needed to make the peer virtualenv: run hack/setup-python.sh (it installs uv in .venv)")
    return [found]


def _run(argv: list[str], timeout: float) -> None:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({out.returncode}):\n{out.stderr[-3000:]}")


def ensure_venv() -> Path:
    """bench/.venv-peers with the pinned peers; quick when it is already up to date. Returns its python."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if PYTHON.exists() and _STAMP.exists() and _STAMP.read_text().strip() == digest:
        return PYTHON
    uv = _uv()
    say(f"installing the peers ({REQUIREMENTS.name}) into {VENV.relative_to(REPO)} ...")
    if not PYTHON.exists():
        _run([*uv, "venv", "-q", str(VENV), "--python", sys.executable], timeout=120)
    # --python pins the target: without it, `python -m uv pip` run from .venv would install into .venv.
    _run([*uv, "pip", "install", "-q", "--python", str(PYTHON), "-r", str(REQUIREMENTS)], timeout=900)
    _STAMP.write_text(digest + "\n")
    return PYTHON


def run_script(script: Path, *args: str, timeout: float = 900.0) -> dict[str, Any]:
    """Run `script` with the peer venv's python; its stdout must be one JSON object."""
    python = ensure_venv()
    try:
        out = subprocess.run(
            [str(python), str(script), *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{script.name} took more than {timeout:.0f}s") from e
    if out.returncode != 0:
        raise BenchError(f"{script.name} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def versions() -> dict[str, str]:
    """The pinned versions, from the requirements file."""
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins
