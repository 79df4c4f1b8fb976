"""kopf's diff base in the operator's memory: kopf still tells a create or a spec change from a status change, and
writes nothing to the object for it."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import kopf
import pytest

from driftline.api import constants as c
from driftline.handlers import diffbase

pytestmark = pytest.mark.unit


def _tj(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": "t1", "namespace": "ml", "uid": "u1", "resourceVersion": "1", "labels": {"team": "a"}},
        "spec": {"model": "iris", "suspend": True, **spec},
    }


def _handled(store: diffbase.InMemoryDiffBase, obj: dict[str, Any]) -> kopf.Patch:
    """What kopf does once its handlers are done with an object: store what it handled."""
    body, patch = kopf.Body(obj), kopf.Patch()
    store.store(body=body, patch=patch, essence=store.build(body=body))
    return patch


def _changed(store: diffbase.InMemoryDiffBase, obj: dict[str, Any]) -> bool | None:
    """What kopf's diff of the stored essence and the object's says: None when it has no diff base (a create)."""
    body = kopf.Body(obj)
    old = store.fetch(body=body)
    return None if old is None else old != store.build(body=body)


def test_a_new_object_has_no_diff_base_and_storing_one_writes_nothing_to_it() -> None:
    store = diffbase.InMemoryDiffBase()
    assert store.fetch(body=kopf.Body(_tj())) is None, "kopf treats it as created: the handlers run"
    assert _handled(store, _tj()) == {}, "kopf's annotation patch is the write this storage saves"


def test_status_and_bookkeeping_changes_are_no_diff_but_spec_labels_and_annotations_are() -> None:
    store = diffbase.InMemoryDiffBase()
    _handled(store, _tj())
    echoed = copy.deepcopy(_tj())
    echoed["metadata"]["resourceVersion"] = "2"
    echoed["status"] = {"phase": "Pending", "jobName": "t1-train"}
    assert _changed(store, echoed) is False

    assert _changed(store, _tj(suspend=False)) is True
    annotated = _tj()
    annotated["metadata"]["annotations"] = {c.ANNOTATION_PROMOTE: "true"}
    assert _changed(store, annotated) is True, "a user's request annotation is a change the handlers must see"


def test_each_object_has_its_own_diff_base_and_a_deleted_one_is_forgotten() -> None:
    store = diffbase.InMemoryDiffBase()
    other = _tj(suspend=False)
    other["metadata"]["uid"] = "u2"
    _handled(store, _tj())
    _handled(store, other)
    assert _changed(store, _tj()) is False and _changed(store, other) is False

    store.forget("u1")
    assert store.fetch(body=kopf.Body(_tj())) is None and len(store) == 1


@pytest.mark.parametrize("plural", [c.TRAINING_JOB.plural, c.INFERENCE_SERVICE.plural])
def test_kopf_calls_the_forgetting_handler_for_deletions_only(plural: str) -> None:
    """Through kopf's own registry and filters (kopf internals: breaks if kopf changes how it matches handlers)."""
    from kopf._cogs.structs import references
    from kopf._core.intents import causes

    registry = kopf.get_default_registry()
    resource = references.Resource(c.GROUP, c.VERSION, plural)
    body = kopf.Body(_tj())

    def matched(type: str) -> list[str]:
        cause = causes.WatchingCause(
            resource=resource,
            indices={},  # type: ignore[arg-type]
            logger=logging.getLogger(__name__),
            patch=kopf.Patch(),
            body=body,
            memo=kopf.Memo(),
            type=type,  # type: ignore[arg-type]
            event={"type": type, "object": dict(body)},  # type: ignore[typeddict-item]
        )
        return [h.id for h in registry._watching.get_handlers(cause)]

    assert "forget_deleted" in matched("DELETED")
    assert "forget_deleted" not in matched("MODIFIED") and "forget_deleted" not in matched("ADDED")


def test_the_deletion_handler_forgets_the_object(monkeypatch: pytest.MonkeyPatch) -> None:
    store = diffbase.InMemoryDiffBase()
    monkeypatch.setattr(diffbase, "STORE", store)
    _handled(store, _tj())
    asyncio.run(diffbase.forget_deleted(uid="u1"))
    assert len(store) == 0
