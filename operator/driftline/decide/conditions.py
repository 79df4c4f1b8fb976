"""metav1.Condition bookkeeping, kstatus-style: Ready always present, Reconciling/Stalled True only when abnormal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cond:
    type: str
    status: bool | None  # None -> Unknown
    reason: str
    message: str = ""


def _status(value: bool | None) -> str:
    return "Unknown" if value is None else ("True" if value else "False")


def merge(
    existing: Sequence[dict[str, Any]] | None, updates: Sequence[Cond], generation: int | None, now: str
) -> list[dict[str, Any]]:
    """Apply `updates` over `existing`; lastTransitionTime moves only when a condition's status changes."""
    by_type = {c["type"]: dict(c) for c in existing or []}
    for u in updates:
        old = by_type.get(u.type)
        status = _status(u.status)
        changed = old is None or old.get("status") != status
        cond: dict[str, Any] = {
            "type": u.type,
            "status": status,
            "reason": u.reason,
            "message": u.message[:32768],
            "lastTransitionTime": now
            if changed or not old or not old.get("lastTransitionTime")
            else old["lastTransitionTime"],
        }
        if generation is not None:
            cond["observedGeneration"] = generation
        by_type[u.type] = cond
    order = ["Ready", "Reconciling", "Stalled"]
    return sorted(by_type.values(), key=lambda c: (order.index(c["type"]) if c["type"] in order else 9, c["type"]))


def lifecycle(ready: bool | None, reason: str, message: str, *, reconciling: bool, stalled: bool) -> list[Cond]:
    """Ready plus kstatus's abnormal-true pair, which together tell Argo CD and Flux healthy from progressing from
    failed without custom configuration."""
    return [
        Cond("Ready", ready, reason, message),
        Cond("Reconciling", reconciling, reason if reconciling else "Reconciled", message if reconciling else ""),
        Cond("Stalled", stalled, reason if stalled else "Reconciled", message if stalled else ""),
    ]


def same(a: Sequence[dict[str, Any]] | None, b: Sequence[dict[str, Any]] | None) -> bool:
    """Equal ignoring times: used to skip status writes that would change nothing."""

    def key(cs: Sequence[dict[str, Any]] | None) -> list[tuple[Any, ...]]:
        return sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
            for c in cs or []
        )

    return key(a) == key(b)


def status_patch(
    old: Mapping[str, Any],
    phase: str,
    conditions: list[dict[str, Any]],
    generation: int | None,
    fields: Mapping[str, Any],
    clear: Sequence[str] = (),
) -> dict[str, Any] | None:
    """The status merge patch to write, or None when a reader would see nothing new (nothing is written at steady
    state). A None field is left as it is, except those named in `clear`, which are removed (null in a merge
    patch)."""
    patch: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": generation,
        **{k: v for k, v in fields.items() if v is not None or (k in clear and k in old)},
    }
    if same(old.get("conditions"), conditions) and all(old.get(k) == v for k, v in patch.items()):
        return None
    return {**patch, "conditions": conditions}


def warn_on_failure(old_phase: str | None, warn: tuple[str, str] | None) -> bool:
    """Whether a failure is news: announced once, when the object was not already Failed (a retry of the same
    hopeless spec is not a new Event)."""
    return bool(warn and warn[1]) and old_phase != "Failed"
