"""Which Deployment watch events make their InferenceService reconcile: only news about what a reconcile reads of the
Deployment, so the Deployment a reconcile just applied does not come back as a second reconcile (starting into 1,000
services, 1,000 of them, each holding a handler thread)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import kopf
import pytest

from driftline.api import constants as c
from driftline.handlers import inferenceservice as handler

pytestmark = pytest.mark.unit


@pytest.fixture
def reconciled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(handler, "_seen_deployments", {})
    monkeypatch.setattr(handler, "reconcile", lambda ns, name, **_: calls.append((ns, name)))
    return calls


def _dep(ready: int = 0) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "iris-stable",
            "namespace": "ml",
            "uid": "d1",
            "generation": 1,
            "labels": {c.LABEL_INFERENCE_SERVICE: "iris", c.LABEL_VERSION: "1"},
            "ownerReferences": [{"uid": "isvc-1", "controller": True}],
        },
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {c.LABEL_VERSION: "1"}}}},
        "status": {"observedGeneration": 1, "readyReplicas": ready},
    }


def _event(dep: dict[str, Any], type: str | None) -> None:
    body = kopf.Body(copy.deepcopy(dep))
    asyncio.run(handler.on_deployment(body=body, labels=body.metadata.labels, uid="d1", namespace="ml", type=type))


def test_the_deployment_a_reconcile_acted_on_is_no_news(reconciled: list[tuple[str, str]]) -> None:
    handler._seen_deployments["d1"] = handler._facts(_dep())  # as the reconcile that applied it records
    _event(_dep(), "ADDED")
    assert reconciled == []
    _event(_dep(ready=1), "MODIFIED")
    assert reconciled == [("ml", "iris")], "rollout progress is news: status follows it"


def test_without_a_record_every_event_reconciles_and_a_deletion_always_does(
    reconciled: list[tuple[str, str]],
) -> None:
    _event(_dep(), None)
    assert reconciled == [], "kopf's first listing: the service's resume handler covers it"
    _event(_dep(), "MODIFIED")
    assert reconciled == [("ml", "iris")], "after a restart nothing is recorded: the event is news"
    handler._seen_deployments["d1"] = handler._facts(_dep())
    _event(_dep(), "DELETED")
    assert reconciled == [("ml", "iris")] * 2 and "d1" not in handler._seen_deployments
