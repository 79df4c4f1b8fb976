"""Writing an object's status: only when something a reader would see changed, so nothing is written at steady
state, and a Warning Event for a failure the object was not already reporting."""

from __future__ import annotations

from typing import Any

from driftline.api.constants import KindNames
from driftline.decide import conditions as conds
from driftline.handlers import registry
from driftline.k8s import events, objects


def write(
    kind: KindNames,
    obj: dict[str, Any],
    phase: str,
    cond_updates: list[conds.Cond],
    *,
    warn: tuple[str, str] | None = None,
    clear: tuple[str, ...] = (),
    **fields: Any,
) -> None:
    """`fields` use the API's camelCase names: the API server prunes unknown keys silently. A None field is left as
    it is, except those named in `clear`, which are removed."""
    meta, old = obj["metadata"], obj.get("status") or {}
    new_conds = conds.merge(old.get("conditions"), cond_updates, meta.get("generation"), registry.now())
    patch = conds.status_patch(old, phase, new_conds, meta.get("generation"), fields, clear)
    if patch is None:
        return
    objects.patch_status(kind, meta["namespace"], meta["name"], patch)
    if warn is not None and conds.warn_on_failure(old.get("phase"), warn):
        events.warning(obj, warn[0], warn[1])
