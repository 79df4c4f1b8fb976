"""Which Job watch events make their TrainingJob reconcile: the ADDED event of the Job a reconcile is creating waits
for that reconcile and is then no news (it used to overtake it, and read the TrainingJob again for nothing)."""

from __future__ import annotations

import threading
import time
from typing import Any

import kopf
import pytest

from driftline.api import constants as c
from driftline.decide import training
from driftline.handlers import trainingjob as handler
from driftline.handlers.locks import lock

pytestmark = pytest.mark.unit


@pytest.fixture
def reconciled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(handler, "_seen_jobs", {})
    monkeypatch.setattr(handler, "reconcile", lambda ns, name, **_: calls.append(name))
    return calls


def _job(suspended: bool = True) -> dict[str, Any]:
    labels = {c.LABEL_TRAINING_JOB: "t1", c.LABEL_COMPONENT: c.COMPONENT_TRAINER}
    return {
        "metadata": {"name": "t1-train", "namespace": "ml", "uid": "j1", "labels": labels},
        "spec": {"suspend": suspended},
    }


def _event(job: dict[str, Any], type: str | None) -> None:
    body = kopf.Body(job)
    handler.on_job(labels=body.metadata.labels, namespace="ml", type=type, body=body)


def test_the_added_event_of_the_job_a_reconcile_is_creating_waits_for_it_and_is_no_news(
    reconciled: list[str],
) -> None:
    job = _job()
    reconciling = lock(("trainingjob", "ml", "t1"))
    with reconciling:  # the reconcile creating the Job: its ADDED event arrives before the status is written
        event = threading.Thread(target=_event, args=(job, "ADDED"))
        event.start()
        time.sleep(0.2)
        handler._seen_jobs["j1"] = training.job_facts(job)  # as the reconcile records before it lets go
    event.join(timeout=10)
    assert not event.is_alive()
    assert reconciled == []


def test_news_about_the_job_reconciles_its_trainingjob(reconciled: list[str]) -> None:
    handler._seen_jobs["j1"] = training.job_facts(_job())
    _event(_job(suspended=False), "MODIFIED")
    _event(_job(), "DELETED")
    _event(_job(), None)
    assert reconciled == ["t1", "t1"], "a resumed Job and a deletion are news; kopf's first listing is not"
