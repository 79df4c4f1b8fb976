"""The status fixtures are what the operator writes: each parses with the API models without losing a field, uses
only the operator's condition types and reasons, says where it came from, and has an expectation for both judges."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from driftline.api.base import StatusModel
from driftline.api.constants import ConditionType, Reason
from driftline.api.inferenceservice import InferenceServiceSpec, InferenceServiceStatus
from driftline.api.modelversion import ModelVersionSpec, ModelVersionStatus
from driftline.api.trainingjob import TrainingJobSpec, TrainingJobStatus
from tests.unit.gitops._status import (
    ARGOCD_HEALTH,
    KSTATUS,
    STATUS_DIR,
    expectations,
    fixtures,
    load,
    to_lua,
)

pytestmark = pytest.mark.unit

FIXTURES = [str(p) for p in fixtures()]
STATUS_MODELS: dict[str, type[StatusModel]] = {
    "TrainingJob": TrainingJobStatus,
    "ModelVersion": ModelVersionStatus,
    "InferenceService": InferenceServiceStatus,
}
SPEC_MODELS: dict[str, Any] = {
    "TrainingJob": TrainingJobSpec,
    "ModelVersion": ModelVersionSpec,
    "InferenceService": InferenceServiceSpec,
}
CONDITION_TYPES = {
    "TrainingJob": {"Ready", "Reconciling", "Stalled"},
    "ModelVersion": {"Ready", "Reconciling", "Stalled"},
    "InferenceService": {"Ready", "Reconciling", "Stalled", "Progressing", "Degraded", "Drifted"},
}
INVALID_SPEC = {"inferenceservice/failed-invalid-spec.yaml"}
"""Fixtures whose spec the models refuse on purpose: what an object stored under an older CRD could hold."""


def _contains(whole: Any, part: Any) -> bool:
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _contains(whole[k], v) for k, v in part.items())
    if isinstance(part, list):
        return isinstance(whole, list) and len(whole) == len(part) and all(map(_contains, whole, part))
    if isinstance(part, str) and isinstance(whole, str) and whole != part:
        return _instant(whole) is not None and _instant(whole) == _instant(part)  # 'Z' and '+00:00' are one time
    return bool(whole == part)


def _instant(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _json_only(value: Any, where: str = "") -> None:
    assert not isinstance(value, dt.date), f"{where}: a YAML timestamp; quote it, as kubectl prints it"
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{where}: key {k!r}"
            _json_only(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _json_only(v, f"{where}[{i}]")
    else:
        assert value is None or isinstance(value, str | int | float | bool), f"{where}: {type(value).__name__}"


def test_every_kind_has_fixtures_and_every_fixture_an_expectation() -> None:
    assert {load(rel)["kind"] for rel in FIXTURES} == set(STATUS_MODELS)
    assert set(expectations()) == set(FIXTURES)
    for rel, want in expectations().items():
        assert want["argocd"] in ARGOCD_HEALTH, rel
        assert want["kstatus"] in KSTATUS, rel
        assert isinstance(want["message"], str) and want["message"], rel


@pytest.mark.parametrize("rel", FIXTURES)
def test_fixture_is_an_object_the_operator_writes(rel: str) -> None:
    first = (STATUS_DIR / rel).read_text().splitlines()[0]
    assert first.startswith(("# Captured with", "# No e2e test reaches")), f"{rel}: say where it comes from"
    obj = load(rel)
    _json_only(obj)
    to_lua(obj)  # what the Argo CD harness hands to Lua
    kind = obj["kind"]
    assert obj["apiVersion"] == "driftline.dev/v1alpha1"
    meta = obj["metadata"]
    assert meta["name"] and meta["namespace"] and isinstance(meta["generation"], int)
    if rel in INVALID_SPEC:
        with pytest.raises(ValueError):
            SPEC_MODELS[kind].model_validate(obj["spec"])
    else:
        SPEC_MODELS[kind].model_validate(obj["spec"])
    status = obj.get("status")
    if status is None:
        assert rel.endswith("/new.yaml"), f"{rel}: only a new object has no status"
        return
    # Nothing the status model does not know (it would be pruned by the API server) and nothing lost in a round trip.
    model = STATUS_MODELS[kind].model_validate(status)
    assert _contains(model.model_dump(mode="json", by_alias=True, exclude_none=True), status)
    types = [c["type"] for c in status["conditions"]]
    assert len(types) == len(set(types)), f"{rel}: one condition per type"
    assert {"Ready", "Reconciling", "Stalled"} <= set(types) <= CONDITION_TYPES[kind]
    reasons = {str(r) for r in Reason}
    for c in status["conditions"]:
        assert c["type"] in {str(t) for t in ConditionType}
        assert c["reason"] in reasons, f"{rel}: {c['type']} reason {c['reason']!r} is not a Reason"
        assert c["observedGeneration"] <= meta["generation"]
    by_type = {c["type"]: c["status"] for c in status["conditions"]}
    assert not (by_type["Reconciling"] == "True" and by_type["Stalled"] == "True"), f"{rel}: kstatus' pair exclusive"
    assert status["observedGeneration"] <= meta["generation"]
