"""Writing an object's status: only when something a reader would see changed, so nothing is written at steady
state, and a Warning Event for a failure the object was not already reporting.

Fields come as the API's own status models (api/), dumped by alias: a misspelt field is a mypy error or a
validation error here, never a key the API server prunes silently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from driftline.api.base import StatusModel
from driftline.api.constants import KindNames
from driftline.decide import conditions as conds
from driftline.handlers import registry
from driftline.k8s import events, objects

M = TypeVar("M", bound=StatusModel)
_MISSING = object()


def write(
    kind: KindNames,
    obj: dict[str, Any],
    phase: str,
    cond_updates: list[conds.Cond],
    *parts: StatusModel,
    warn: tuple[str, str] | None = None,
    clear: tuple[str, ...] = (),
) -> None:
    """`parts`: the fields this write sets, later parts winning. A field left unset or set to None is left as it is,
    except those named in `clear` (by their API name), which are removed."""
    meta, old = obj["metadata"], obj.get("status") or {}
    fields: dict[str, Any] = {}
    for part in parts:
        fields.update(part.api_fields())
        unknown = [name for name in clear if name not in _api_names(type(part))]
        if unknown:
            raise ValueError(f"{type(part).__name__} has no field {', '.join(unknown)} to clear")
    new_conds = conds.merge(old.get("conditions"), cond_updates, meta.get("generation"), registry.now())
    patch = conds.status_patch(old, phase, new_conds, meta.get("generation"), fields, clear)
    if patch is None:
        return
    objects.patch_status(kind, meta["namespace"], meta["name"], patch)
    if warn is not None and conds.warn_on_failure(old.get("phase"), warn):
        events.warning(obj, warn[0], warn[1])


def checked(model: type[M], fields: Mapping[str, Any]) -> M:
    """`fields` (API names, as a decide module builds them) as the status model: raises if the model drops or
    changes anything, which the API server would otherwise prune or reject without a word to the reader."""
    part = model.model_validate(fields)
    out = part.api_fields()
    if out != dict(fields):
        lost = {k: fields[k] for k in fields if out.get(k, _MISSING) != fields[k]}
        raise ValueError(f"{model.__name__} does not hold {lost!r} as given")
    return part


def _api_names(model: type[StatusModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}
