"""Events for every decision, on the object it concerns (kopf posts them as core/v1 Events), each also counted and
written to the operator's log as one line naming the object, the Event type and reason (with `--log-format json`, a
JSON object with `object` and `decision` fields)."""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from driftline.telemetry import DECISIONS

log = logging.getLogger("driftline.decisions")


def normal(obj: dict[str, Any], reason: str, message: str) -> None:
    _announce(obj, "Normal", reason, message)


def warning(obj: dict[str, Any], reason: str, message: str) -> None:
    _announce(obj, "Warning", reason, message)


def object_ref(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as kopf's own log lines name it (their `object` field in JSON, the [namespace/name] prefix)."""
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name")}
    return {**ref, "uid": meta.get("uid"), "namespace": meta.get("namespace")}


def _announce(obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    meta = obj.get("metadata") or {}
    DECISIONS.labels(obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""), type_, reason).inc()
    text = message[:1024]
    extra = {"k8s_ref": object_ref(obj), "decision": {"type": type_, "reason": reason}}
    ref = extra["k8s_ref"]
    where = f"{ref['kind']} {ref['namespace']}/{ref['name']}"
    level = logging.WARNING if type_ == "Warning" else logging.INFO
    log.log(level, "%s: %s %s: %s", where, type_, reason, text, extra=extra)
    kopf.event(cast(kopf.Body, obj), type=type_, reason=reason, message=text)
