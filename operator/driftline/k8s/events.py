"""Events for every decision, on the object it concerns (kopf posts them as core/v1 Events)."""

from __future__ import annotations

from typing import Any, cast

import kopf

from driftline.telemetry import DECISIONS


def normal(obj: dict[str, Any], reason: str, message: str) -> None:
    DECISIONS.labels(obj.get("kind", ""), "Normal", reason).inc()
    kopf.event(cast(kopf.Body, obj), type="Normal", reason=reason, message=message[:1024])


def warning(obj: dict[str, Any], reason: str, message: str) -> None:
    DECISIONS.labels(obj.get("kind", ""), "Warning", reason).inc()
    kopf.event(cast(kopf.Body, obj), type="Warning", reason=reason, message=message[:1024])
