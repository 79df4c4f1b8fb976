"""Model pods are configurable like any workload, on the real control plane: with the operator run as the chart runs it
with podDefaults, a training pod and the serving pods carry their spec's scheduling settings over the defaults, and
the real scheduler places them accordingly (a nodeSelector on the second node)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from driftline.devcluster.controlplane import NODE_NAMES
from tests.conftest import Cluster
from tests.e2e.conftest import pvc, run_operator
from tests.e2e.test_serving import DIS, MODEL, inferenceservice, ready_at
from tests.e2e.test_training import TJ, finished, trainingjob
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

SECOND = NODE_NAMES[1]
DEFAULTS = {
    "labels": {"team": "platform", "cost-center": "ml"},
    "annotations": {"example.com/owner": "platform"},
    "imagePullSecrets": [{"name": "regcred"}],
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "models", "effect": "NoSchedule"}],
}


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crds: None) -> Iterator[OperatorProcess]:
    """The operator with the chart's podDefaults."""
    proc = run_operator(cluster, "operator-pod-settings.log", {"DRIFTLINE_POD_DEFAULTS": json.dumps(DEFAULTS)})
    yield proc
    proc.stop()


def pods(cluster: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    items = cluster.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def test_training_and_serving_pods_carry_their_settings_over_the_charts_defaults(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    pvc(cluster, ns)
    on_second = {"kubernetes.io/hostname": SECOND}
    tj = trainingjob("placed", "sklearn.linear_model.LogisticRegression", {"max_iter": 200})
    tj["spec"]["pod"] = {"nodeSelector": on_second, "labels": {"team": "fraud"}}
    cluster.api.create(TJ.format(ns=ns), tj)
    st = cluster.wait_for("the placed training finished", lambda: finished(cluster, ns, "placed"), timeout=240)
    assert st["phase"] == "Succeeded", st
    (trainer,) = pods(cluster, ns, "driftline.dev/trainingjob=placed")
    assert trainer["spec"]["nodeName"] == SECOND and trainer["spec"]["nodeSelector"] == on_second
    labels, annotations = trainer["metadata"]["labels"], trainer["metadata"]["annotations"]
    assert (labels["team"], labels["cost-center"]) == ("fraud", "ml")  # its own over the defaults, key by key
    assert annotations["example.com/owner"] == "platform"
    assert trainer["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert trainer["spec"]["tolerations"][0]["key"] == "dedicated"

    service = inferenceservice("placed", replicas=2, pod={"nodeSelector": on_second, "priorityClassName": "models"})
    cluster.api.create(
        "/apis/scheduling.k8s.io/v1/priorityclasses",
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "models"}, "value": 1000},
    )
    try:
        cluster.api.create(DIS.format(ns=ns), service)
        cluster.wait_for("placed Ready on two pods", ready_at(cluster, ns, "placed", 1, replicas=2), timeout=180)
        served = pods(cluster, ns, "driftline.dev/inferenceservice=placed")
        assert len(served) == 2 and {p["spec"]["nodeName"] for p in served} == {SECOND}
        for p in served:
            assert p["spec"]["priorityClassName"] == "models" and p["spec"]["priority"] == 1000
            assert (
                p["metadata"]["labels"]["team"] == "platform"
                and p["metadata"]["labels"]["driftline.dev/model"] == MODEL
            )
            assert p["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
        # Two replicas: a budget lets a drain take one serving pod at a time; it outlives a rollout (its selector names
        # no version), and goes once the service is down to one replica.
        budget_path = f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/placed"
        budget = cluster.api.get(budget_path)
        assert budget["spec"]["maxUnavailable"] == 1
        assert budget["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
        assert budget["spec"]["selector"]["matchLabels"]["driftline.dev/track"] == "stable"
        cluster.wait_for("the budget counts both pods", lambda: cluster.api.get(budget_path).get("status", {}).get(
            "expectedPods") == 2, timeout=60)  # fmt: skip
        annotated = {"pod": {**service["spec"]["pod"], "annotations": {"example.com/rolled": "1"}}}
        cluster.api.patch(f"{DIS.format(ns=ns)}/placed", {"spec": annotated}, "merge")

        def rolled() -> bool:
            served = pods(cluster, ns, "driftline.dev/inferenceservice=placed")
            fresh = [p for p in served if (p["metadata"].get("annotations") or {}).get("example.com/rolled") == "1"]
            return len(fresh) == 2 and ready_at(cluster, ns, "placed", 1, replicas=2)() is not None

        cluster.wait_for("the pods rolled", rolled, timeout=180)
        assert cluster.api.get(budget_path)["metadata"]["uid"] == budget["metadata"]["uid"]
        cluster.api.patch(f"{DIS.format(ns=ns)}/placed", {"spec": {"replicas": 1}}, "merge")
        cluster.wait_for("the budget gone at one replica", lambda: cluster.api.get_or_none(budget_path) is None)
    finally:
        cluster.api.delete("/apis/scheduling.k8s.io/v1/priorityclasses/models")
