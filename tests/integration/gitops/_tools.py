"""The two judges of the status fixtures: Debian's Lua 5.1 running the Argo CD health checks, and the kstatus library.

Both are fetched or built by the project's scripts into ~/.cache/driftline (hack/fetch-lua.sh, hack/kstatus/build.sh);
each script is idempotent and answers at once when its cache is warm, so the tests call it rather than guess paths.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.unit.gitops._status import REPO, to_lua

FETCH_LUA = REPO / "hack" / "fetch-lua.sh"
BUILD_KSTATUS = REPO / "hack" / "kstatus" / "build.sh"
HARNESS = Path(__file__).with_name("argocd_harness.lua")


def _script_output(script: Path, override: str) -> Path:
    """The executable a hack/ script prints on its last line, or the one named by the environment variable."""
    if os.environ.get(override):
        path = Path(os.environ[override])
    else:
        out = subprocess.run(["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True, timeout=900)
        path = Path(out.stdout.strip().splitlines()[-1])
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise FileNotFoundError(f"{path} is not an executable (from {override or script})")
    return path


def lua_bin() -> Path:
    """$DRIFTLINE_LUA if set, else Debian's lua5.1 fetched by hack/fetch-lua.sh."""
    return _script_output(FETCH_LUA, "DRIFTLINE_LUA")


def kstatus_bin() -> Path:
    """$DRIFTLINE_KSTATUS if set, else the CLI hack/kstatus/build.sh builds from sigs.k8s.io/cli-utils."""
    return _script_output(BUILD_KSTATUS, "DRIFTLINE_KSTATUS")


@dataclass(frozen=True)
class Verdict:
    status: str
    message: str
    error: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    script: Path
    obj: dict[str, Any]


@dataclass(frozen=True)
class Run:
    verdicts: dict[str, Verdict]
    """Per case id."""
    coverage: dict[Path, set[int]]
    """Per health.lua: the lines that ran in some case."""


def argocd_health(lua: Path, cases: Sequence[Case], workdir: Path) -> Run:
    """Each case's health.lua run on its object as Argo CD runs it (see argocd_harness.lua), in one interpreter."""
    chunk = workdir / "cases.lua"
    rows = [f"{{id = {to_lua(c.id)}, script = {to_lua(str(c.script))}, obj = {to_lua(c.obj)}}}" for c in cases]
    chunk.write_text("return {\n" + ",\n".join(rows) + "\n}\n", encoding="utf-8")
    out = subprocess.run(
        [str(lua), str(HARNESS), str(chunk), "--coverage"], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, f"the harness failed ({out.returncode}): {out.stderr}"
    verdicts, coverage = {}, {}
    for line in out.stdout.splitlines():
        row = json.loads(line)
        if "script" in row:
            coverage[Path(row["script"])] = {int(n) for n in row["lines"].split(",") if n}
        else:
            verdicts[row["id"]] = Verdict(row.get("status", ""), row.get("message", ""), row.get("error", ""))
    assert set(verdicts) == {c.id for c in cases}, out.stdout
    return Run(verdicts, coverage)


def kstatus(binary: Path, objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """kstatus's status.Compute of each object: {kind, name, status, message, conditions} (or error)."""
    out = subprocess.run(
        [str(binary)], input=json.dumps(list(objects)), capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, f"kstatus failed ({out.returncode}): {out.stderr}"
    results = json.loads(out.stdout)
    assert isinstance(results, list) and len(results) == len(objects)
    return results
