"""A ModelVersion's reconcile runs from watch events, which kopf never retries: a failure (the API server restarting)
is retried with back-off by the operator itself, one retry under way per version however many events arrive."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
import pytest

from driftline.handlers import modelversion as handler

pytestmark = pytest.mark.unit


def _body(stage: str | None = None) -> kopf.Body:
    return kopf.Body(
        {
            "metadata": {"name": "iris-v3", "namespace": "ml", "uid": "u"},
            "spec": {"model": "iris", "version": 3},
            "status": {"stage": stage} if stage else {},
        }
    )


def test_a_failed_reconcile_is_retried_until_it_succeeds_once(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[tuple[str, str, str]] = []

    def flaky(namespace: str, name: str, model: str, pending: object = None) -> None:
        attempts.append((namespace, name, model))
        if len(attempts) < 3:
            raise kopf.TemporaryError("API server: 503 Service Unavailable")

    monkeypatch.setattr(handler, "_reconcile_named", flaky)
    monkeypatch.setattr(handler, "RETRY_DELAYS", (0.01,))

    async def scenario() -> None:
        log: Any = logging.getLogger("test")
        await handler.on_modelversion(body=_body(), type="ADDED", namespace="ml", name="iris-v3", logger=log)
        await handler.on_modelversion(body=_body(), type="MODIFIED", namespace="ml", name="iris-v3", logger=log)
        assert len(attempts) == 1, "a second event while a retry is under way adds no attempt of its own"
        while handler._tasks:
            await asyncio.gather(*handler._tasks)

    asyncio.run(scenario())
    assert attempts == [("ml", "iris-v3", "iris")] * 3
    assert not handler._retrying


def test_a_settled_version_costs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler, "_reconcile_named", lambda *a: pytest.fail("no request for a settled version"))
    for stage in ("Candidate", "Archived", "Rejected"):
        asyncio.run(
            handler.on_modelversion(
                body=_body(stage), type=None, namespace="ml", name="iris-v3", logger=logging.getLogger("t")
            )
        )
