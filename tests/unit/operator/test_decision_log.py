"""Every decision is one log line naming the object, the Event type and reason: as text, and with --log-format json
as one JSON object that a log collector can index (kopf's own formatter, so kopf's lines and ours look alike)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from driftline.k8s import events

pytestmark = pytest.mark.unit

MV = {
    "apiVersion": "driftline.dev/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "churn-v3", "namespace": "ml", "uid": "u-3"},
}


@pytest.fixture
def posted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The Events kopf was asked to post (outside a running operator kopf has no queue to post them to), with the
    root logger restored afterwards (kopf.configure replaces its handler)."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "event", lambda body, **kw: sent.append({"body": body, **kw}))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield sent
    root.handlers[:], root.level = handlers, level


@pytest.mark.parametrize("fmt", [kopf.LogFormat.PLAIN, kopf.LogFormat.FULL])
def test_a_decision_is_one_line_naming_the_object(
    posted: list[dict[str, Any]], capsys: pytest.CaptureFixture[str], fmt: kopf.LogFormat
) -> None:
    kopf.configure(log_format=fmt)
    events.warning(MV, "RolledBack", "churn-v3 rolled back: error-rate 0.31 above 0.05")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(
        "ModelVersion ml/churn-v3: Warning RolledBack: churn-v3 rolled back: error-rate 0.31 above 0.05"
    )
    assert posted == [
        {
            "body": MV,
            "type": "Warning",
            "reason": "RolledBack",
            "message": "churn-v3 rolled back: error-rate 0.31 above 0.05",
        }
    ]


def test_with_json_each_decision_is_an_object_with_its_object_and_decision(
    posted: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    kopf.configure(log_format=kopf.LogFormat.JSON)
    events.normal(MV, "Restored", "churn-v3 is now Production (serving again since churn-v4 was rolled back)")
    (line,) = capsys.readouterr().err.splitlines()
    doc = json.loads(line)
    assert doc["object"] == {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "ModelVersion",
        "name": "churn-v3",
        "uid": "u-3",
        "namespace": "ml",
    }
    assert doc["decision"] == {"type": "Normal", "reason": "Restored"}
    assert doc["severity"] == "info" and "churn-v3 is now Production" in doc["message"]
    assert len(posted) == 1


def test_a_decision_is_counted_per_object(posted: list[dict[str, Any]]) -> None:
    from driftline.telemetry import DECISIONS

    labels = {"kind": "ModelVersion", "namespace": "ml", "name": "churn-v3", "type": "Normal", "reason": "Promoted"}
    before = DECISIONS.labels(**labels)._value.get()
    events.normal(MV, "Promoted", "churn-v3 is now Production")
    assert DECISIONS.labels(**labels)._value.get() == before + 1


def test_a_service_has_one_info_series_whatever_its_phase_was() -> None:
    from driftline import telemetry

    def series() -> list[dict[str, str]]:
        (family,) = telemetry.SERVICE_INFO.collect()
        return [dict(x.labels) for x in family.samples if x.labels["inferenceservice"] == "churn" and x.value == 1]

    telemetry.set_info(telemetry.SERVICE_INFO, "ml", "churn", ("Progressing", "2"))
    telemetry.set_info(telemetry.SERVICE_INFO, "ml", "churn", ("Ready", "2"))
    assert series() == [{"namespace": "ml", "inferenceservice": "churn", "phase": "Ready", "version": "2"}]
    telemetry.forget("ml", "churn")
    assert series() == []
