"""The retrain TrainingJob: the service's template, owned by the service, named by a never-reused sequence number."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.render.retrain import sequence, trainingjob

pytestmark = pytest.mark.unit

TEMPLATE = {"model": "m", "dataset": {"uri": "configmap://shifted/data.csv"}, "estimator": "sklearn.svm.SVC"}
ISVC: dict[str, Any] = {
    "apiVersion": "driftline.dev/v1alpha1",
    "kind": "InferenceService",
    "metadata": {"name": "svc", "namespace": "ns", "uid": "u-1"},
    "spec": {"model": "m", "retrain": {"template": TEMPLATE}},
}


def job(seq: str | None) -> dict[str, Any]:
    return {"metadata": {"labels": {} if seq is None else {"driftline.dev/retrain": seq}}}


def test_sequence_is_one_past_the_highest_even_with_gaps() -> None:
    assert sequence([]) == 1
    assert sequence([job("1"), job("4"), job(None), job("x")]) == 5


def test_trainingjob_is_the_template_owned_by_the_service() -> None:
    tj = trainingjob(ISVC, 3)
    assert tj["metadata"]["name"] == "svc-retrain-3" and tj["metadata"]["namespace"] == "ns"
    assert tj["metadata"]["labels"]["driftline.dev/inferenceservice"] == "svc"
    assert tj["metadata"]["labels"]["driftline.dev/retrain"] == "3"
    (owner,) = tj["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("InferenceService", "svc", "u-1", True)
    assert tj["spec"] == TEMPLATE and tj["spec"] is not TEMPLATE  # a copy: rendering never mutates the input


def test_trainingjob_carries_its_history_entry_and_who_started_it_in_annotations() -> None:
    notes = trainingjob(ISVC, 1, 2, "psi drift score 0.9 above threshold 0.25")["metadata"]["annotations"]
    assert notes == {
        "driftline.dev/retrain-served-version": "2",
        "driftline.dev/retrain-reason": "psi drift score 0.9 above threshold 0.25",
        "driftline.dev/retrain-trigger": "Drift",
    }
    by_performance = trainingjob(ISVC, 2, 2, "live accuracy 0.6 below threshold 0.8", "Performance")
    assert by_performance["metadata"]["annotations"]["driftline.dev/retrain-trigger"] == "Performance"


def test_trainingjob_is_checked_as_the_services_author() -> None:
    author = {"driftline.dev/author": "alice", "driftline.dev/author-groups": "team-a\nsystem:authenticated"}
    isvc = {**ISVC, "metadata": {**ISVC["metadata"], "annotations": {**author, "other": "x"}}}
    notes = trainingjob(isvc, 1)["metadata"]["annotations"]
    assert notes == {**author, "driftline.dev/retrain-trigger": "Drift"}
