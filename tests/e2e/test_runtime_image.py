"""No fleet restarts by accident, on the real control plane: each version serves with the runtime image that trained
it, so an operator upgraded to a new default runtime image (a chart upgrade) leaves the pods serving older versions
running as they are (the same pods); a version trained after the upgrade rolls out with the new image, and a
rollback returns to the old version with its own image."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import pvc
from tests.e2e.test_serving import DIS, MODEL, inferenceservice, ready_at, train
from tests.e2e.test_training import versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

OLD, NEW = "driftline/runtime:0.1.0", "driftline/runtime:0.2.0"


def run_operator(cluster: Cluster, image: str, name: str) -> OperatorProcess:
    log = cluster.dir / "logs" / f"operator-{name}.log"
    return OperatorProcess(cluster.kubeconfig, log, env={"DRIFTLINE_RUNTIME_IMAGE": image}).start()


def serving(cluster: Cluster, ns: str) -> dict[str, Any]:
    """The stable Deployment's image and its pods' uids."""
    dep = cluster.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/bc-stable")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    items = cluster.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector="driftline.dev/inferenceservice=bc")
    uids = sorted(p["metadata"]["uid"] for p in items["items"] if not p["metadata"].get("deletionTimestamp"))
    return {"image": container["image"], "pods": uids, "generation": dep["metadata"]["generation"]}


def test_a_new_default_runtime_image_moves_only_versions_trained_with_it(
    cluster: Cluster, crds: None, namespace: str
) -> None:
    ns = namespace
    pvc(cluster, ns)
    before = run_operator(cluster, OLD, "old-image")
    try:
        assert train(cluster, ns, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 500}) == 1
        assert versions(cluster, ns)[f"{MODEL}-v1"]["spec"]["servingImage"] == OLD
        cluster.api.create(DIS.format(ns=ns), inferenceservice("bc", replicas=2))
        cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1, replicas=2), timeout=180)
        first = serving(cluster, ns)
        assert first["image"] == OLD and len(first["pods"]) == 2
    finally:
        before.stop()

    # The upgrade: a new default runtime image. Every service is reconciled again at the start, and nothing moves.
    after = run_operator(cluster, NEW, "new-image")
    try:
        time.sleep(10)  # the new operator's start reconciles every service within a few seconds
        cluster.wait_for("bc still Ready on v1", ready_at(cluster, ns, "bc", 1, replicas=2), timeout=60)
        assert serving(cluster, ns) == first  # the same image, the same pods, no new rollout

        # A version trained now is trained, and served, with the new image: that rollout is the image's move.
        assert train(cluster, ns, "lr2", "sklearn.linear_model.LogisticRegression", {"max_iter": 600}) == 2
        assert versions(cluster, ns)[f"{MODEL}-v2"]["spec"]["servingImage"] == NEW
        cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2, replicas=2), timeout=180)
        assert serving(cluster, ns)["image"] == NEW

        # Back to v1: with v1's own image.
        cluster.api.patch(
            f"{DIS.format(ns=ns)}/bc", {"metadata": {"annotations": {"driftline.dev/rollback": "r1"}}}, "merge"
        )
        cluster.wait_for("bc Ready on v1 again", ready_at(cluster, ns, "bc", 1, replicas=2), timeout=180)
        assert serving(cluster, ns)["image"] == OLD
    finally:
        after.stop()
