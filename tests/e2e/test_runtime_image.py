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
from tests.e2e.test_serving import DIS, MODEL, condition, dis, inferenceservice, ready_at, train
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


BROKEN = "registry.invalid/no-such/runtime:9.9.9"  # an image no node has: its pods never start (ErrImageNeverPull)


def test_moving_a_service_to_a_new_image_and_back_from_a_broken_one(
    cluster: Cluster, crds: None, namespace: str
) -> None:
    """spec.image moves the served version to another runtime image as a rolling update; an image whose pods do not
    become available within the progress deadline is undone (the old pods never stop serving), reported until the
    spec names another image, and never blamed on the version."""
    ns, isvc = namespace, f"{DIS.format(ns=namespace)}/bc"
    pvc(cluster, ns)
    op = run_operator(cluster, OLD, "image-move")
    try:
        assert train(cluster, ns, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 500}) == 1
        cluster.api.create(DIS.format(ns=ns), inferenceservice("bc", rollout={"progressDeadlineSeconds": 30}))
        cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=180)
        first = serving(cluster, ns)
        assert first["image"] == OLD and dis(cluster, ns, "bc")["status"]["image"] == OLD

        # A new image: the same version, new pods.
        cluster.api.patch(isvc, {"spec": {"image": NEW}}, "merge")
        moved = cluster.wait_for(
            "bc Ready on v1 with the new image",
            lambda: (st := ready_at(cluster, ns, "bc", 1)()) and st.get("image") == NEW and st,
            timeout=180,
        )
        second = serving(cluster, ns)
        assert second["image"] == NEW and not set(second["pods"]) & set(first["pods"])
        assert (moved["history"][-1]["action"], moved["history"][-1]["toVersion"]) == ("ImageMove", 1)

        # A broken image: undone at the progress deadline, with why; the pods of the image before kept serving.
        cluster.api.patch(isvc, {"spec": {"image": BROKEN}}, "merge")
        st = cluster.wait_for(
            "the broken image undone",
            lambda: (s := dis(cluster, ns, "bc")["status"]).get("failedImage") and s,
            timeout=150,
        )
        assert st["failedImage"]["image"] == BROKEN and st["failedImage"]["version"] == 1
        assert "ErrImageNeverPull" in st["failedImage"]["message"], st["failedImage"]
        assert st["phase"] == "Degraded" and condition(st, "Degraded")["reason"] == "ImageRolledBack"
        assert f"serving it with {NEW} again" in condition(st, "Ready")["message"]
        assert st["history"][-1]["action"] == "ImageRollback" and st["activeVersion"] == 1
        back = cluster.wait_for(
            "the Deployment back on the image before", lambda: (s := serving(cluster, ns))["image"] == NEW and s
        )
        assert back["pods"] == second["pods"]  # the same pod served all along
        assert versions(cluster, ns)[f"{MODEL}-v1"]["status"]["stage"] == "Production"  # not the version's fault
        said = [e["message"] for e in cluster.api.get(f"/api/v1/namespaces/{ns}/events")["items"]
                if e["reason"] == "ImageRolledBack" and e["type"] == "Warning"]  # fmt: skip
        assert said and BROKEN in said[0], said
        time.sleep(6)  # a few reconciles later the service has not tried the broken image again
        assert serving(cluster, ns)["pods"] == second["pods"]

        # The spec no longer names an image: the version's own image again, the failure forgotten.
        cluster.api.patch(isvc, {"spec": {"image": None}}, "merge")
        st = cluster.wait_for(
            "bc Ready on v1 with its own image",
            lambda: (s := ready_at(cluster, ns, "bc", 1)()) and s.get("image") == OLD and s,
            timeout=180,
        )
        assert "failedImage" not in st and condition(st, "Degraded")["status"] == "False"
    finally:
        op.stop()
