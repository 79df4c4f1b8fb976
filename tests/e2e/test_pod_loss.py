"""Serving pods killed right after a roll forward, under live traffic and drift action Rollback: the missing metrics
are read as Error or InsufficientSamples, never as a breach, so nothing is rolled back; the Deployment brings the
pods back and the new version keeps serving, its drift judged Ok once its windows fill again."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Cluster
from tests.e2e.test_drift import drift_of, drift_spec, traffic, v1_served, wait_ok_reading
from tests.e2e.test_serving import DIS, MODEL, dis, ready_at, train
from tests.e2e.test_training import versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e
__all__ = ["v1_served"]  # the fixture, shared with the drift tests


def test_serving_pods_killed_after_a_roll_forward_cause_no_rollback(
    cluster: Cluster, v1_served: str, operator: OperatorProcess
) -> None:
    ns = v1_served
    svc = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "bc"},
        "spec": {"model": MODEL, "drift": drift_spec("Rollback", rollbackWindowSeconds=600)},
    }
    cluster.api.create(DIS.format(ns=ns), svc)
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)

    with traffic(cluster, ns, "bc"):
        assert train(cluster, ns, "v2", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000, "C": 0.5}) == 2
        cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2), timeout=120)
        seen: set[str] = set()
        for _ in range(3):  # every v2 pod, three times over, each time the drift window starts from nothing
            pods = cluster.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector="driftline.dev/version=2")["items"]
            for pod in pods:
                cluster.api.delete(f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}", {"gracePeriodSeconds": 0})
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                seen.add(str(drift_of(cluster, ns, "bc").get("assessment")))
                time.sleep(0.5)
        cluster.wait_for("bc Ready on v2 again", ready_at(cluster, ns, "bc", 2), timeout=180)
        ok = wait_ok_reading(cluster, ns, "bc")

    assert seen & {"Error", "InsufficientSamples"}, seen  # the pods' loss was read, and read as unknown
    assert "Breach" not in seen and ok.get("lastAction") is None
    st = dis(cluster, ns, "bc")["status"]
    assert [h["action"] for h in st["history"]] == ["RollForward", "RollForward"], st["history"]
    assert versions(cluster, ns)[f"{MODEL}-v2"]["status"]["stage"] == "Production"
