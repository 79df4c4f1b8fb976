"""What the decide modules put in status is held by the API's status models as given: a misspelt or unknown key
would be pruned by the API server without a word, and a reader would never see it."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.api.drift import DriftSpec
from driftline.api.inferenceservice import InferenceServiceSpec, InferenceServiceStatus
from driftline.api.modelversion import ModelVersionStatus, Stage
from driftline.api.rollout import AnalysisMetric
from driftline.api.trainingjob import TrainingJobStatus
from driftline.decide import analysis, canary, drift
from driftline.decide.conditions import Cond
from driftline.decide.serving import Rollout, Version
from driftline.handlers import registry
from driftline.handlers import status as status_writer

pytestmark = pytest.mark.unit

NOW = "2026-12-07T10:00:00Z"
SERVED = drift.Served(active_version=2, previous_version=1, previous_good=True, rolled_forward_at=NOW)
RETRAIN = InferenceServiceSpec.model_validate(
    {
        "model": "m",
        "retrain": {
            "template": {
                "model": "m",
                "dataset": {"uri": "sklearn://iris"},
                "estimator": "sklearn.tree.DecisionTreeClassifier",
                "output": {"storageUri": "pvc://models/m"},
            }
        },
    }
).retrain


@pytest.mark.parametrize("action", ["None", "Alert", "Rollback", "Retrain"])
@pytest.mark.parametrize(
    "reading",
    [
        drift.Reading(features={"a": 0.9, "b": 0.1}, samples=500),  # a breach, with per-feature values
        drift.Reading(features={"a": 0.05}, samples=500),
        drift.Reading(features={"a": 0.9}, samples=3),  # too few samples
        drift.Reading(error="connection refused"),
        drift.Reading(score=0.5),  # from Prometheus: a score alone
    ],
)
def test_every_drift_status_and_history_a_reading_writes_is_held_as_given(action: str, reading: drift.Reading) -> None:
    spec = DriftSpec.model_validate({"threshold": 0.25, "minSamples": 100, "consecutive": 2, "action": action})
    last: dict[str, Any] = {}
    for i in range(3):  # the third reading confirms a breach and acts
        plan = drift.decide(spec, RETRAIN, reading, last, SERVED, drift.Retrains(), f"2026-12-07T10:00:{i:02d}Z")
        status_writer.checked(InferenceServiceStatus, {"drift": plan.status, "history": plan.history})
        last = plan.status


@pytest.mark.parametrize("action", ["None", "Alert", "Rollback", "Retrain"])
@pytest.mark.parametrize(
    ("bound", "reading"),
    [
        ({"maxDegradation": 0.05}, drift.Reading(features={"accuracy": 0.5}, samples=500)),  # a breach
        ({"threshold": 0.8}, drift.Reading(features={"accuracy": 0.9}, samples=500)),
        ({"threshold": 0.8}, drift.Reading(features={"accuracy": 0.9}, samples=3)),  # too few labels
        ({"threshold": 0.8}, drift.Reading(features={"f1_macro": 0.9}, samples=500)),  # not the metric asked for
        ({"threshold": 0.8}, drift.Reading(error="connection refused")),
        ({"threshold": 0.8}, drift.Reading(score=0.5)),  # from Prometheus
    ],
)
def test_every_performance_status_and_history_a_reading_writes_is_held_as_given(
    action: str, bound: dict[str, Any], reading: drift.Reading
) -> None:
    from driftline.api.performance import PerformanceSpec
    from driftline.decide import performance

    spec = PerformanceSpec.model_validate({**bound, "minSamples": 100, "consecutive": 2, "action": action})
    last: dict[str, Any] = {}
    for i in range(3):
        when = f"2026-12-07T10:00:{i:02d}Z"
        plan = performance.decide(spec, RETRAIN, reading, 0.96, last, SERVED, drift.Retrains(), when)
        status_writer.checked(InferenceServiceStatus, {"performance": plan.status, "history": plan.history})
        last = plan.status


def test_every_analysis_a_canary_writes_is_held_as_given() -> None:
    spec = InferenceServiceSpec.model_validate(
        {
            "model": "m",
            "replicas": 4,
            "rollout": {
                "strategy": "Canary",
                "canary": {"steps": [{"weight": 25}], "analysis": {"count": 1, "minSamples": 10}},
            },
        }
    )
    v2 = Version(2, "Production", "c" * 64, "pvc://models/m/2", "m-v2", NOW)
    up = Rollout(2, None, 1, 1, 1, total=1, updated=1, ready=1, available=1, rolled_out=True)
    metric = AnalysisMetric.model_validate({"name": "error-rate", "threshold": {"max": 0.05}})
    bad = [canary.measurement(metric, analysis.Reading(0.5, 100, 0.0), 10, 0, NOW)]
    started = canary.advance(spec, 1, v2, None, None, [], NOW)
    failed = canary.advance(spec, 1, v2, up, started.analysis, bad, NOW)
    for plan in (started, failed):
        status_writer.checked(InferenceServiceStatus, {"analysis": plan.analysis, "history": plan.history})
    ended = canary.abandoned(started.analysis, "the service no longer moves to it")
    assert ended is not None
    status_writer.checked(InferenceServiceStatus, {"analysis": ended, "canaryVersion": None, "canaryWeight": None})


@pytest.mark.parametrize(
    "fields",
    [
        {"activeVerison": 2},  # misspelt at the top
        {"drift": {"score": 0.3, "scroe": 0.3}},  # misspelt inside
        {"drift": {"assessment": "Breached"}},  # not one of the enum's values
    ],
)
def test_a_key_the_model_does_not_hold_is_an_error_before_any_write(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="InferenceServiceStatus"):
        status_writer.checked(InferenceServiceStatus, fields)


def test_clearing_a_field_the_model_does_not_have_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[dict[str, Any]] = []
    monkeypatch.setattr(status_writer.objects, "patch_status", lambda *a, **_: written.append(a[3]))
    tj = {"metadata": {"namespace": "ns", "name": "t", "generation": 1}, "status": {"phase": "Running"}}
    ready = [Cond("Ready", "False", "Running", "training")]
    status_writer.write("TrainingJob", tj, "Running", ready, TrainingJobStatus(job_name="t-1"), clear=("message",))
    assert written and written[0]["jobName"] == "t-1" and "message" not in written[0]
    with pytest.raises(ValueError, match="no field mesage to clear"):
        status_writer.write("TrainingJob", tj, "Running", ready, TrainingJobStatus(), clear=("mesage",))


def test_a_stage_patch_carries_the_typed_fields_by_their_api_names() -> None:
    mv = {"metadata": {"name": "m-v2", "generation": 1}, "status": {}}
    also = ModelVersionStatus(promoted_by="policy/t", headline_metric=None)
    patch = registry.stage_status(mv, Stage.PRODUCTION, "Promoted", "gates passed", also)
    assert {k: patch[k] for k in ("stage", "reason", "observedGeneration", "promotedBy")} == {
        "stage": "Production",
        "reason": "gates passed",
        "observedGeneration": 1,
        "promotedBy": "policy/t",
    }
    assert patch["headlineMetric"] is None  # set to None: removed by the merge patch
    assert [c["type"] for c in patch["conditions"]] == ["Ready", "Reconciling", "Stalled"]
