"""The status fixtures (tests/data/status/), what each must mean to Argo CD and kstatus, and the Argo CD health checks.

Shared by the unit tests (fixture shapes, the argocd-cm snippet) and the integration tests (the checks run on a real
Lua interpreter and the real kstatus library).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
STATUS_DIR = REPO / "tests" / "data" / "status"
EXPECTED = STATUS_DIR / "expected.yaml"
GITOPS = REPO / "examples" / "gitops"
HEALTH_DIR = GITOPS / "argocd" / "health"
ARGOCD_CM = GITOPS / "argocd" / "argocd-cm.yaml"
GROUP = "driftline.dev"
KINDS = ("TrainingJob", "ModelVersion", "InferenceService")

ARGOCD_HEALTH = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
KSTATUS = ("InProgress", "Failed", "Current", "Terminating", "NotFound", "Unknown")


def fixtures() -> list[Path]:
    """Every fixture, as a path relative to STATUS_DIR (e.g. inferenceservice/ready.yaml)."""
    return sorted(p.relative_to(STATUS_DIR) for p in STATUS_DIR.glob("*/*.yaml"))


def load(rel: Path | str) -> dict[str, Any]:
    document = yaml.safe_load((STATUS_DIR / rel).read_text())
    assert isinstance(document, dict), f"{rel}: not one YAML mapping"
    return document


def expectations() -> dict[str, dict[str, str]]:
    """fixture -> {argocd, message, kstatus}: Argo CD's health status and exact message, and kstatus's status."""
    document = yaml.safe_load(EXPECTED.read_text())
    assert isinstance(document, dict)
    return document


def health_script(kind: str) -> Path:
    """Where the Argo CD health check of a kind lives: the argocd-cm key's suffix names the directory."""
    return HEALTH_DIR / f"{GROUP}_{kind}" / "health.lua"


def cm_key(kind: str) -> str:
    return f"resource.customizations.health.{GROUP}_{kind}"


def _lua_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch):03d}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_lua(value: Any) -> str:
    """A JSON-like value as a Lua table constructor, the way Argo CD hands an object to a health check (util/lua's
    decodeValue): objects and arrays become tables (arrays from 1), numbers are numbers, and null is nil, so a key
    whose value is null is simply absent."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} has no JSON form")
        return repr(value)
    if isinstance(value, str):
        return _lua_string(value)
    if isinstance(value, list):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    if isinstance(value, dict):
        items = [f"[{_lua_string(str(k))}] = {to_lua(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"{type(value).__name__} has no JSON form")
