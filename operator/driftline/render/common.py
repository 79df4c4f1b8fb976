"""Pieces every child manifest shares: owner references, labels, the restricted security contexts, names."""

from __future__ import annotations

import hashlib
from typing import Any

from driftline.api import constants as c

RUNTIME_UID = 65532  # the runtime image's non-root user (serving-image/Dockerfile)


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", c.API_VERSION),
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_name(parent: str, suffix: str, uid: str, limit: int = 63) -> str:
    """A deterministic DNS-label name: `<parent>-<suffix>`, shortened with a hash of the parent's uid if too long.

    Deterministic, so a restarted operator finds the child it made instead of making a second one.
    """
    name = f"{parent}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(uid.encode()).hexdigest()[:6]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{parent[:keep].rstrip('-')}-{digest}-{suffix}"


def common_labels(model: str, component: str, instance: str) -> dict[str, str]:
    return {
        c.LABEL_MODEL: model,
        c.LABEL_COMPONENT: component,
        c.LABEL_APP_NAME: model,
        c.LABEL_APP_INSTANCE: instance,
        c.LABEL_APP_COMPONENT: component,
        c.LABEL_APP_PART_OF: c.PART_OF,
        c.LABEL_APP_MANAGED_BY: c.MANAGED_BY,
    }


def pod_security_context() -> dict[str, Any]:
    """The restricted Pod Security Standard, at pod level."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "runAsGroup": RUNTIME_UID,
        "fsGroup": RUNTIME_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def split_pvc_uri(uri: str) -> tuple[str, str]:
    """`pvc://claim/a/b` -> (`claim`, `a/b`)."""
    rest = uri.removeprefix("pvc://")
    claim, _, path = rest.partition("/")
    return claim, path.strip("/")
