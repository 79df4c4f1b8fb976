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
MLSERVER = "mlserver"
"""MLServer gets a virtualenv of its own (bench/.venv-mlserver, bench/requirements-mlserver.txt): its pins (pandas,
FastAPI, gRPC) must not bend Evidently's."""


def _paths(name: str) -> tuple[Path, Path]:
    """(virtualenv, requirements file) of a peer set: "peers" or "mlserver"."""
    if name == "peers":
        return VENV, REQUIREMENTS
    return REPO / "bench" / f".venv-{name}", REPO / "bench" / f"requirements-{name}.txt"


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


def ensure_venv(name: str = "peers") -> Path:
    """The peer set's virtualenv with its pinned packages; quick when it is already up to date. Returns its python."""
    venv, requirements = _paths(name)
    python, stamp = venv / "bin" / "python", venv / ".bench-requirements-sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    uv = _uv()
    say(f"installing the peers ({requirements.name}) into {venv.relative_to(REPO)} ...")
    if not python.exists():
        _run([*uv, "venv", "-q", str(venv), "--python", sys.executable], timeout=120)
    # --python pins the target: without it, `python -m uv pip` run from .venv would install into .venv.
    _run([*uv, "pip", "install", "-q", "--python", str(python), "-r", str(requirements)], timeout=900)
    stamp.write_text(digest + "\n")
    return python


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


def versions(name: str = "peers") -> dict[str, str]:
    """The pinned versions, from the requirements file."""
    pins = {}
    for line in _paths(name)[1].read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins
