"""Which ModelVersion watch events make the model's InferenceServices re-resolve what they serve: only news about what
serving reads of a version, so an operator starting into thousands of versions does not reconcile every service once
per kopf annotation (the resume storm bench/memory.py measured)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import kopf
import pytest

from driftline.handlers import inferenceservice as handler

pytestmark = pytest.mark.unit


@pytest.fixture
def reconciled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(handler, "_seen_versions", {})
    monkeypatch.setattr(handler, "following", lambda ns, model: [f"{model}-svc"])
    monkeypatch.setattr(handler, "reconcile", lambda ns, name, **_: calls.append((ns, name)))
    return calls


def _mv(uid: str = "u1", stage: str | None = "Candidate", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "iris-v1", "namespace": "ml", "uid": uid, **meta},
        "spec": {"model": "iris", "version": 1, "artifact": {"storageUri": "pvc://m/iris/v1", "sha256": "ab"}},
        "status": {"stage": stage} if stage else {},
    }


def _event(body: dict[str, Any], type: str | None) -> None:
    asyncio.run(
        handler.on_modelversion_event(
            body=kopf.Body(copy.deepcopy(body)),
            spec=kopf.Spec(kopf.Body(copy.deepcopy(body))),
            uid=body["metadata"]["uid"],
            namespace="ml",
            type=type,
        )
    )


def test_the_first_listing_does_not_reconcile_but_is_remembered(reconciled: list[tuple[str, str]]) -> None:
    _event(_mv(), None)
    assert reconciled == []
    _event(_mv(annotations={"driftline.dev/last-handled-configuration": "{}"}), "MODIFIED")
    assert reconciled == [], "kopf's own annotation changes nothing serving reads"


def test_a_stage_change_reconciles_the_models_services(reconciled: list[tuple[str, str]]) -> None:
    _event(_mv(stage="Candidate"), None)
    _event(_mv(stage="Production"), "MODIFIED")
    assert reconciled == [("ml", "iris-svc")]
    _event(_mv(stage="Production"), "MODIFIED")
    assert reconciled == [("ml", "iris-svc")], "the same stage again is no news"


def test_a_version_added_or_deleted_reconciles(reconciled: list[tuple[str, str]]) -> None:
    _event(_mv(uid="new"), "ADDED")
    _event(_mv(uid="new"), "DELETED")
    _event(_mv(uid="never-seen"), "DELETED")
    assert reconciled == [("ml", "iris-svc")] * 3
    assert handler._seen_versions == {}, "a deleted version is forgotten"


def test_a_relisting_after_a_lost_watch_reconciles_what_changed_meanwhile(reconciled: list[tuple[str, str]]) -> None:
    _event(_mv(stage="Production"), None)
    _event(_mv(stage="RolledBack"), None)
    assert reconciled == [("ml", "iris-svc")]


def test_a_status_write_that_leaves_serving_alone_is_no_news(reconciled: list[tuple[str, str]]) -> None:
    _event(_mv(stage="Production"), "ADDED")
    changed = _mv(stage="Production")
    changed["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    _event(changed, "MODIFIED")
    assert reconciled == [("ml", "iris-svc")]
