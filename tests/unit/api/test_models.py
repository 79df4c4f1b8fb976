"""The pydantic models: wire names, defaults, strictness, cross-field rules and status models."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from driftline.api.base import StatusModel, unknown_fields
from driftline.api.common import Condition, MetricSource, PrometheusSource
from driftline.api.constants import API_VERSION, GROUP, HISTORY_CAP, VERSION, ConditionStatus, ConditionType, Reason
from driftline.api.drift import DriftMetric, DriftSpec, DriftStatus
from driftline.api.fields import parse_duration
from driftline.api.inferenceservice import (
    HistoryAction,
    HistoryEntry,
    InferenceService,
    InferenceServiceSpec,
    InferenceServiceStatus,
)
from driftline.api.modelversion import ModelVersion, ModelVersionSpec, ModelVersionStatus, Stage, model_version_name
from driftline.api.monitor import MonitorAction
from driftline.api.promotion import ComparisonOp
from driftline.api.rollout import AnalysisStatus, CanarySpec, RolloutStrategy
from driftline.api.trainingjob import TrainingJobSpec, TrainingJobStatus

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
TRAINING: dict[str, Any] = {
    "model": "iris",
    "dataset": {"uri": "sklearn://iris"},
    "estimator": "sklearn.linear_model.LogisticRegression",
    "output": {"storageUri": "pvc://models/iris"},
}


def test_api_version_literal_matches_group_and_version() -> None:
    assert f"{GROUP}/{VERSION}" == API_VERSION


def test_spec_takes_camel_case_and_gives_it_back() -> None:
    spec = InferenceServiceSpec.model_validate(
        {"model": "iris", "rollout": {"strategy": "Canary", "progressDeadlineSeconds": 120}}
    )
    assert spec.rollout.progress_deadline_seconds == 120
    dumped = spec.model_dump(mode="json", exclude_none=True)
    assert dumped["rollout"]["progressDeadlineSeconds"] == 120
    assert "progress_deadline_seconds" not in str(dumped)


def test_python_code_can_use_snake_case() -> None:
    spec = DriftSpec(scrape_interval="10s", min_samples=50)
    assert spec.model_dump()["scrapeInterval"] == "10s"


def test_training_job_defaults() -> None:
    spec = TrainingJobSpec.model_validate(TRAINING)
    assert spec.dataset.validation_split == 0.2
    assert spec.dataset.seed == 42
    assert spec.dataset.target == "target"
    assert spec.backoff_limit == 1
    assert spec.suspend is False
    assert spec.promotion.auto is False
    assert spec.promotion.gates == []
    assert spec.promotion.must_beat is None


def test_inference_service_defaults() -> None:
    spec = InferenceServiceSpec.model_validate({"model": "iris"})
    assert spec.replicas == 1
    assert spec.port == 8080
    assert spec.protocol == "v2"
    assert spec.rollout.strategy is RolloutStrategy.ROLLING
    assert spec.rollout.progress_deadline_seconds == 600
    assert spec.drift is None
    canary = spec.rollout.canary_or_default()
    assert [s.weight for s in canary.steps] == [20, 50]
    assert canary.analysis.consecutive_error_limit == 4  # Argo Rollouts' default
    assert canary.analysis.metrics[0].name == "error-rate"
    assert canary.analysis.metrics[0].provider.pods is not None


def test_drift_defaults() -> None:
    drift = DriftSpec()
    assert drift.enabled
    assert drift.metric is DriftMetric.PSI
    assert drift.threshold == 0.25
    assert drift.window.size == 1000 and drift.window.seconds is None
    assert drift.action is MonitorAction.ALERT
    assert drift.source.pods is not None and drift.source.prometheus is None
    assert parse_duration(drift.scrape_interval) == 30


def test_defaults_are_not_shared_between_instances() -> None:
    a, b = CanarySpec(), CanarySpec()
    a.steps.append(a.steps[0])
    assert len(b.steps) == 2


@pytest.mark.parametrize(
    "status_model", [TrainingJobStatus, ModelVersionStatus, InferenceServiceStatus, DriftStatus, AnalysisStatus]
)
def test_status_models_build_from_nothing(status_model: type[StatusModel]) -> None:
    status = status_model.model_validate({})
    assert status.model_dump(mode="json", exclude_none=True) == status_model().model_dump(
        mode="json", exclude_none=True
    )


def test_status_tolerates_fields_it_does_not_know() -> None:
    status = ModelVersionStatus.model_validate({"stage": "Production", "fromANewerOperator": 1})
    assert status.stage is Stage.PRODUCTION


def test_status_round_trip_writes_kubernetes_timestamps() -> None:
    when = datetime(2024, 6, 1, 12, 30, 5, 123456, tzinfo=UTC)
    status = InferenceServiceStatus(
        active_version=2,
        history=[HistoryEntry(time=when, action=HistoryAction.ROLLBACK, from_version=3, to_version=2)],
        conditions=[
            Condition(
                type=ConditionType.READY,
                status=ConditionStatus.TRUE,
                reason=Reason.AVAILABLE,
                last_transition_time=when,
            )
        ],
    )
    dumped = status.model_dump(mode="json", exclude_none=True)
    assert dumped["history"][0] == {
        "time": "2024-06-01T12:30:05Z",
        "action": "Rollback",
        "fromVersion": 3,
        "toVersion": 2,
    }
    assert dumped["conditions"][0]["lastTransitionTime"] == "2024-06-01T12:30:05Z"
    assert dumped["conditions"][0]["status"] == "True"
    assert InferenceServiceStatus.model_validate(dumped).model_dump(mode="json", exclude_none=True) == dumped


def test_history_is_bounded() -> None:
    entry = {"time": "2024-06-01T12:30:05Z", "action": "RollForward"}
    InferenceServiceStatus.model_validate({"history": [entry] * HISTORY_CAP})
    with pytest.raises(ValidationError):
        InferenceServiceStatus.model_validate({"history": [entry] * (HISTORY_CAP + 1)})


@pytest.mark.parametrize(
    ("field", "value"),
    [("replicas", "3"), ("replicas", True), ("replicas", 2.5), ("port", "8080")],
)
def test_scalars_are_strict_like_the_api_server(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        InferenceServiceSpec.model_validate({"model": "iris", field: value})


def test_exactly_one_trainer() -> None:
    template = {"spec": {"containers": [{"name": "t", "image": "example.com/t:1"}]}}
    TrainingJobSpec.model_validate({**TRAINING, "estimator": None, "template": template})
    with pytest.raises(ValidationError, match="mutually exclusive"):
        TrainingJobSpec.model_validate({**TRAINING, "template": template})
    with pytest.raises(ValidationError, match="set one of estimator"):
        TrainingJobSpec.model_validate({k: v for k, v in TRAINING.items() if k != "estimator"})


def test_custom_template_keeps_fields_driftline_does_not_check() -> None:
    template = {
        "metadata": {"labels": {"team": "a"}},
        "spec": {
            "nodeSelector": {"gpu": "true"},
            "containers": [{"name": "t", "image": "example.com/t:1", "args": ["--x"]}],
        },
    }
    spec = TrainingJobSpec.model_validate({**TRAINING, "estimator": None, "template": template})
    assert spec.model_dump(mode="json", exclude_none=True)["template"] == template


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("sklearn://breast_cancer", True),
        ("https://example.com/d.csv", True),
        ("pvc://data/sets/d.csv", True),
        ("configmap://my-data/iris.csv", True),
        ("s3://bucket/d.csv", True),
        ("s3://my.data-bucket/2026/12/d.parquet", True),
        ("pvc://data", False),
        ("pvc://data/../etc/passwd", False),
        ("http://example.com/d.csv", False),
        ("s3://bucket", False),
        ("s3://bucket/", False),
        ("s3://ab/d.csv", False),
        ("s3://bucket/../d.csv", False),
        ("gs://bucket/d.csv", False),
        ("sklearn://Iris", False),
        ("sklearn://iris\n", False),
    ],
)
def test_dataset_uri_schemes(uri: str, ok: bool) -> None:
    """s3:// needs a bucket S3 accepts (3-63 characters) and an object key; no scheme lets a path climb with '..'."""
    document = {**TRAINING, "dataset": {"uri": uri}}
    if ok:
        TrainingJobSpec.model_validate(document)
    else:
        with pytest.raises(ValidationError, match="must be https://"):
            TrainingJobSpec.model_validate(document)


def test_canary_rules() -> None:
    CanarySpec.model_validate({"steps": [{"weight": 1}, {"weight": 99}]})
    for steps in ([0], [100], [50, 20], [20, 20]):
        with pytest.raises(ValidationError):
            CanarySpec.model_validate({"steps": [{"weight": w} for w in steps]})
    with pytest.raises(ValidationError, match="need strategy: Canary"):
        InferenceServiceSpec.model_validate({"model": "iris", "rollout": {"canary": {}}})


def test_drift_threshold_range_depends_on_metric() -> None:
    DriftSpec(metric=DriftMetric.PSI, threshold=3.0)
    DriftSpec(metric=DriftMetric.KS, threshold=1.0)
    with pytest.raises(ValidationError, match="only psi goes above 1"):
        DriftSpec(metric=DriftMetric.WASSERSTEIN, threshold=1.5)
    with pytest.raises(ValidationError):
        DriftSpec(metric=DriftMetric.PSI, threshold=11.0)


def test_metric_source_is_exactly_one() -> None:
    MetricSource(prometheus=PrometheusSource(url="http://p:9090", query="up"))
    with pytest.raises(ValidationError, match="exactly one of pods or prometheus"):
        MetricSource()


def test_retrain_rules() -> None:
    base = {"model": "iris", "drift": {"action": "Retrain"}}
    with pytest.raises(ValidationError, match=r"needs spec\.retrain\.template"):
        InferenceServiceSpec.model_validate(base)
    InferenceServiceSpec.model_validate({**base, "retrain": {"template": TRAINING}})
    with pytest.raises(ValidationError, match=r"must equal spec\.model"):
        InferenceServiceSpec.model_validate({**base, "retrain": {"template": {**TRAINING, "model": "other"}}})


def test_model_version_name_is_its_identity() -> None:
    spec = {"model": "fraud", "version": 12, "artifact": {"storageUri": "pvc://m/fraud", "sha256": SHA}}
    assert model_version_name("fraud", 12) == "fraud-v12"
    ModelVersion.model_validate({"metadata": {"name": "fraud-v12"}, "spec": spec})
    ModelVersion.model_validate({"metadata": {"generateName": "fraud-"}, "spec": spec})
    with pytest.raises(ValidationError, match=r"metadata\.name must be"):
        ModelVersion.model_validate({"metadata": {"name": "fraud-v1"}, "spec": spec})
    assert ModelVersionSpec.model_validate(spec).metrics == {}


def test_inference_service_name_must_name_a_service() -> None:
    with pytest.raises(ValidationError, match="DNS-1035"):
        InferenceService.model_validate({"metadata": {"name": "9fraud"}, "spec": {"model": "fraud"}})


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("1.5h", 5400)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "-5s", "1d", "5 m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_comparison_ops() -> None:
    assert ComparisonOp(">=").holds(0.9, 0.9)
    assert not ComparisonOp(">").holds(0.9, 0.9)
    assert ComparisonOp("<=").holds(0.1, 0.2)
    assert not ComparisonOp("<").holds(0.2, 0.2)


def test_a_misspelt_status_key_is_found_at_any_depth() -> None:
    status = {
        "phase": "Ready",
        "activeVersoin": 3,
        "drift": {"score": 0.1, "scroe": 0.2, "features": [{"name": "a", "value": 1.0, "vaule": 2}]},
        "conditions": [{"type": "Ready", "status": "True", "lastTransitonTime": "2026-01-01T00:00:00Z"}],
        "analysis": None,
    }
    assert unknown_fields(InferenceServiceStatus, status, "status") == [
        "status.activeVersoin",
        "status.drift.scroe",
        "status.drift.features[0].vaule",
        "status.conditions[0].lastTransitonTime",
    ]


@pytest.mark.parametrize(
    "path", sorted((REPO / "tests" / "data" / "status").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_every_status_the_operator_was_seen_writing_has_only_known_fields(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    model = {
        "InferenceService": InferenceServiceStatus,
        "ModelVersion": ModelVersionStatus,
        "TrainingJob": TrainingJobStatus,
    }[document["kind"]]
    assert unknown_fields(model, document.get("status") or {}, "status") == []
