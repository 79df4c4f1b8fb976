"""A TrainingJob's phase from its Job, and the termination summary parser."""

from __future__ import annotations

import json
from typing import Any

import pytest

from driftline.decide.training import Step, failure_text, observe, parse_summary

pytestmark = pytest.mark.unit


def job(**status: Any) -> dict[str, Any]:
    return {"spec": {}, "status": status}


def cond(ctype: str, **kw: str) -> dict[str, Any]:
    return {"type": ctype, "status": "True", **kw}


def ready(obs_conditions: list[Any]) -> Any:
    return next(c for c in obs_conditions if c.type == "Ready")


@pytest.mark.parametrize(
    ("the_job", "mv", "phase", "step", "stalled"),
    [
        (None, None, "Pending", Step.CREATE_JOB, False),
        (job(), None, "Pending", Step.WAIT, False),
        (job(active=1, startTime="t"), None, "Running", Step.WAIT, False),
        (job(conditions=[cond("Complete")], startTime="t"), None, "Running", Step.REGISTER, False),
        (job(conditions=[cond("Complete")], startTime="t", completionTime="u"), "m-v1", "Succeeded", Step.DONE, False),
        (job(conditions=[cond("Failed", reason="BackoffLimitExceeded")]), None, "Failed", Step.FAIL, True),
        ({"spec": {"suspend": True}, "status": {}}, None, "Pending", Step.WAIT, False),
    ],
)
def test_observe(the_job: dict[str, Any] | None, mv: str | None, phase: str, step: Step, stalled: bool) -> None:
    obs = observe(the_job, None, mv)
    assert (obs.phase, obs.step) == (phase, step)
    assert ready(obs.conditions).status is (phase == "Succeeded")
    assert next(c for c in obs.conditions if c.type == "Stalled").status is stalled


def test_failed_job_carries_the_trainers_message() -> None:
    msg = json.dumps({"ok": False, "reason": "MissingTargetColumn", "message": "column 'label' not found"})
    obs = observe(job(conditions=[cond("Failed")]), failure_text(msg), None)
    assert obs.message == "MissingTargetColumn: column 'label' not found"
    assert ready(obs.conditions).message == obs.message


@pytest.mark.parametrize(
    ("message", "ok", "reason"),
    [
        (None, False, "SummaryUnreadable"),
        ("Traceback (most recent call last): ...", False, "SummaryUnreadable"),
        ("[1, 2]", False, "SummaryUnreadable"),
        ('{"ok": false, "reason": "EmptyDataset", "message": "no rows"}', False, "EmptyDataset"),
        ('{"ok": true, "artifact": {"storageUri": "pvc://m/x"}}', False, "SummaryUnreadable"),
        (
            '{"ok": true, "artifact": {"storageUri": "pvc://m/x", "sha256": "ab"}, "metrics": {"a": "x"}}',
            False,
            "SummaryUnreadable",
        ),
        ('{"ok": true, "artifact": {"storageUri": "pvc://m/x", "sha256": "ab"}, "metrics": {"a": 0.9}}', True, ""),
    ],
)
def test_parse_summary_never_trusts_the_message(message: str | None, ok: bool, reason: str) -> None:
    s = parse_summary(message)
    assert s.ok is ok and s.reason == reason
