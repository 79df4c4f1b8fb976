"""kopf's diff base (the spec, labels and annotations an object was last handled at) kept in this process, not in an
annotation on the object.

kopf compares each event's object with its diff base to tell a create or a spec change (handlers run) from a status
change (nothing to do). Its own storages write the diff base back to the object after every create and spec change:
one more API write per object than the work itself, one more watch event, and an annotation the operator owns on
objects that users keep in Git. The handlers here are level-based, so the diff base need not survive a restart: after
one, every object is new to kopf and handled once again, exactly as kopf's resume handlers would."""

from __future__ import annotations

import json
from typing import Any

import kopf

from driftline.api import constants as c


class InMemoryDiffBase(kopf.DiffBaseStorage):
    """The essence kopf last handled, per object uid, as compact JSON (a tenth of the memory of the dicts)."""

    def __init__(self) -> None:
        super().__init__()
        self._essences: dict[str, str] = {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        encoded = self._essences.get(body.metadata.uid or "")
        return None if encoded is None else json.loads(encoded)

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if body.metadata.uid:
            self._essences[body.metadata.uid] = json.dumps(essence, separators=(",", ":"))

    def forget(self, uid: str | None) -> None:
        self._essences.pop(uid or "", None)

    def __len__(self) -> int:
        return len(self._essences)


STORE = InMemoryDiffBase()


def _deleted(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


# Every kind with create/update handlers: kopf keeps no diff base of a deleted object, nor may we.
@kopf.on.event(c.GROUP, c.VERSION, c.TRAINING_JOB.plural, when=_deleted)
@kopf.on.event(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural, when=_deleted)
async def forget_deleted(uid: str | None, **_: Any) -> None:
    STORE.forget(uid)
