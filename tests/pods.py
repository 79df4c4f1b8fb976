"""Manifest snippets for tests: containers that pass the restricted Pod Security Standard."""

from __future__ import annotations

from typing import Any

RUNTIME_IMAGE = "driftline/runtime:0.1.0"

RESTRICTED_CONTAINER: dict[str, Any] = {
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
}


def python_container(name: str, code: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": RUNTIME_IMAGE, "command": ["python", "-c", code], **RESTRICTED_CONTAINER, **extra}
