"""The periodic resync (handlers/resync.py): a service whose child or model version went unseen is reconciled; one
gone itself loses its metric series; the next resync is scheduled."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.api import constants as c
from driftline.handlers import resync
from driftline.k8s import cache

pytestmark = pytest.mark.unit


class _Listed:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items, self.resource_version = items, 0

    def __iter__(self) -> Any:
        self.resource_version = 100
        return iter(self.items)


def _obj(kind: str, name: str, rv: int, **spec: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": "ml", "uid": name, "resourceVersion": str(rv)}
    if kind != "InferenceService":
        meta["labels"] = {c.LABEL_INFERENCE_SERVICE: "svc"}
    return {"kind": kind, "metadata": meta, "spec": spec}


def test_a_service_whose_deployment_went_unseen_is_reconciled_and_a_gone_service_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = cache.Cache()
    view.services.put(_obj("InferenceService", "svc", 1, model="iris"))
    view.services.put(_obj("InferenceService", "gone", 2, model="iris"))
    view.deployments.put(_obj("Deployment", "svc-v1", 3))
    view.prime("ml", [])
    listed = {"svc": _obj("InferenceService", "svc", 1, model="iris")}
    monkeypatch.setattr(resync.watches, "VIEW", view)
    monkeypatch.setattr(
        resync.watches,
        "listings",
        lambda ns: [
            (view.services, lambda: _Listed(list(listed.values()))),
            (view.deployments, lambda: _Listed([])),
        ],
    )
    reconciled: list[tuple[str, str]] = []
    forgotten: list[tuple[str, str]] = []
    scheduled: list[tuple[Any, float]] = []
    monkeypatch.setattr(resync.inferenceservice, "reconcile", lambda ns, name: reconciled.append((ns, name)))
    monkeypatch.setattr(resync, "forget", lambda ns, name: forgotten.append((ns, name)))
    monkeypatch.setattr(resync.recheck, "after", lambda key, seconds, _: scheduled.append((key, seconds)))
    resync.run()
    assert reconciled == [("ml", "svc")] and forgotten == [("ml", "gone")]
    assert scheduled == [(("view-resync",), resync.RESYNC_SECONDS)]
    resync.run()  # nothing new is gone: nothing to reconcile
    assert reconciled == [("ml", "svc")]
