"""The loop in real containers (the local cluster's container mode): a TrainingJob trains in the runtime image as a
restricted non-root container, the version is served by the runtime image as one, a serving pod over its memory
limit is OOMKilled and reported on its InferenceService while the old pod keeps serving, a model too big for its
pods' limit is rolled back with v1 serving throughout, and a trainer over its limit fails its TrainingJob with the
limit named. The operator runs as a process beside the cluster (the Helm e2e runs it in its image)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import joblib
import pytest
import requests

from driftline.devcluster.podrunner import oci
from tests.conftest import Cluster, create_restricted_namespace
from tests.e2e.conftest import REPO, host_path_of, pvc
from tests.e2e.test_serving import (
    DIS,
    FRAME,
    PORT,
    ROWS,
    condition,
    dis,
    inferenceservice,
    ready_at,
    serving_pods,
    train,
    v2_body,
)
from tests.e2e.test_training import TJ, finished, trainingjob, versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e
NS = "ml-containers"


@pytest.fixture(scope="module")
def loop(containers: Cluster) -> Iterator[Cluster]:
    """The CRDs, a restricted namespace with a claim, and the operator on the container-mode cluster."""
    containers.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    containers.wait_established(REPO / "crds")
    create_restricted_namespace(containers, NS)
    pvc(containers, NS)
    log = containers.dir / "logs" / "operator-containers.log"
    op = OperatorProcess(containers.kubeconfig, log).start()
    try:
        yield containers
    finally:
        op.stop()


def pods(cluster: Cluster, name: str) -> dict[str, dict[str, Any]]:
    """The service's pods that are not terminating, by uid."""
    items = cluster.api.get(f"/api/v1/namespaces/{NS}/pods", labelSelector=f"driftline.dev/inferenceservice={name}")
    return {p["metadata"]["uid"]: p for p in items["items"] if not p["metadata"].get("deletionTimestamp")}


def is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or []
    )


def test_train_and_serve_in_containers_and_an_oom_killed_pod_is_reported_while_the_old_one_serves(
    loop: Cluster,
) -> None:
    cluster = loop
    assert train(cluster, NS, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    job_pods = cluster.api.get(f"/api/v1/namespaces/{NS}/pods", labelSelector="job-name")["items"]
    assert job_pods and all(
        cs["containerID"].startswith("podman://") for p in job_pods for cs in p["status"]["containerStatuses"]
    )
    # The version records the image that trained it by the id podman gave it, as a kubelet reports an image no
    # registry gave it; not pullable by that id, so the version still serves by its tag.
    mv = versions(cluster, NS)["breast-cancer-v1"]["spec"]
    built = subprocess.run(
        [*oci.ENGINE, "image", "inspect", "--format", "{{.Id}}", mv["trainingImage"]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert mv["trainingImageID"] == f"sha256:{built.stdout.strip()}" and mv["servingImage"] == mv["trainingImage"]

    cluster.api.create(DIS.format(ns=NS), inferenceservice("bc"))
    cluster.wait_for("bc Ready on v1", ready_at(cluster, NS, "bc", 1), timeout=180)
    (before,) = pods(cluster, "bc").values()
    assert all(cs["containerID"].startswith("podman://") for cs in before["status"]["containerStatuses"])

    # Too little memory for the server: its new pod is killed by the kernel, again and again; the service says so.
    limits = {"limits": {"memory": "40Mi", "cpu": "1"}, "requests": {"memory": "16Mi", "cpu": "100m"}}
    cluster.api.patch(f"{DIS.format(ns=NS)}/bc", {"spec": {"resources": limits}}, "merge")

    def oom_reported() -> dict[str, Any] | None:
        st = dis(cluster, NS, "bc").get("status") or {}
        return st if condition(st, "Ready").get("reason") == "OOMKilled" else None

    st = cluster.wait_for("the OOM kill reported", oom_reported, timeout=120)
    ready = condition(st, "Ready")
    assert "over its memory limit 40Mi" in ready["message"] and "resources.limits.memory" in ready["message"], ready
    said = [e["message"] for e in cluster.api.get(f"/api/v1/namespaces/{NS}/events")["items"]
            if e["reason"] == "OOMKilled" and e["involvedObject"]["name"] == "bc"]  # fmt: skip
    assert said, "a Warning Event on the InferenceService"
    # The old pod never stopped: maxUnavailable 0, and the new one never became ready.
    now = pods(cluster, "bc")
    assert is_ready(now[before["metadata"]["uid"]]) and len(now) == 2, list(now)
    assert st["activeVersion"] == 1


def test_a_trainer_over_its_memory_limit_fails_its_trainingjob_with_the_limit_named(loop: Cluster) -> None:
    cluster = loop
    tj = trainingjob("small", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
    tj["spec"]["resources"] = {"limits": {"memory": "40Mi", "cpu": "1"}, "requests": {"memory": "16Mi"}}
    cluster.api.create(TJ.format(ns=NS), tj)
    st = cluster.wait_for("the small TrainingJob finished", lambda: finished(cluster, NS, "small"), timeout=300)
    assert st["phase"] == "Failed", st
    assert "OOMKilled (exit code 137)" in st["message"] and "40Mi" in st["message"], st["message"]


def test_a_forest_trained_in_its_container_is_served_by_its_compiled_trees(loop: Cluster) -> None:
    """The runtime image carries Treelite: the trainer keeps the forest's compiled trees, the version records it,
    and the serving container answers with them, the estimator's own labels."""
    cluster = loop
    tj = trainingjob("forest", "sklearn.ensemble.RandomForestClassifier", {"n_estimators": 50})
    tj["spec"]["model"] = "forest"
    cluster.api.create(TJ.format(ns=NS), tj)
    st = cluster.wait_for("the forest TrainingJob finished", lambda: finished(cluster, NS, "forest"), timeout=300)
    assert st["phase"] == "Succeeded", st
    mv = versions(cluster, NS)["forest-v1"]["spec"]
    assert mv["artifact"]["predictor"] == "treelite" and "predictorReason" not in mv["artifact"], mv["artifact"]
    service = inferenceservice("forest")
    service["spec"]["model"] = "forest"
    cluster.api.create(DIS.format(ns=NS), service)
    cluster.wait_for("forest Ready on v1", ready_at(cluster, NS, "forest", 1), timeout=180)
    (pod,) = [p for p in serving_pods(cluster.api, NS, "forest") if p["ready"]]
    http = requests.Session()
    http.trust_env = False
    info = [line for line in http.get(f"http://{pod['ip']}:{PORT}/metrics", timeout=10).text.splitlines()
            if line.startswith("driftline_model_info{")]  # fmt: skip
    assert len(info) == 1 and 'predictor="treelite"' in info[0], info
    model = joblib.load(host_path_of(cluster, NS, mv["artifact"]["storageUri"]) / "model.joblib")
    answer = http.post(f"http://{pod['ip']}:{PORT}/v2/models/forest/infer", json=v2_body(ROWS), timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0]["data"] == [int(x) for x in model.predict(FRAME)]


def test_a_model_too_big_for_its_pods_memory_limit_is_oomkilled_and_the_old_version_keeps_serving(
    loop: Cluster,
) -> None:
    """v1 (LogisticRegression) serves in ~140 MB; v2, an MLP of two 2048-wide layers, is a 136 MB pickle that needs
    ~265 MB to load: under a 200Mi limit its pods are killed by the kernel while loading, the service says so, v1's pod
    never stops, and past the progress deadline the service returns to v1 and v2 is RolledBack."""
    cluster = loop
    mlp = trainingjob("mlp", "sklearn.neural_network.MLPClassifier", {"hidden_layer_sizes": [2048, 2048],
                      "max_iter": 2}, auto=False)  # fmt: skip
    cluster.api.create(TJ.format(ns=NS), mlp)
    st = cluster.wait_for("the MLP trained", lambda: finished(cluster, NS, "mlp"), timeout=300)
    assert st["phase"] == "Succeeded", st
    big = int(st["version"])
    limits = {"limits": {"memory": "200Mi", "cpu": "1"}, "requests": {"memory": "64Mi", "cpu": "100m"}}
    body = inferenceservice("big", version=1, resources=limits, rollout={"progressDeadlineSeconds": 30})
    cluster.api.create(DIS.format(ns=NS), body)
    cluster.wait_for("big Ready on v1", ready_at(cluster, NS, "big", 1), timeout=180)
    (before,) = pods(cluster, "big").values()

    cluster.api.patch(f"{DIS.format(ns=NS)}/big", {"spec": {"version": big}}, "merge")

    def oom_reported() -> dict[str, Any] | None:
        st = dis(cluster, NS, "big").get("status") or {}
        return st if condition(st, "Ready").get("reason") == "OOMKilled" else None

    st = cluster.wait_for("the big model's OOM kill reported", oom_reported, timeout=120)
    assert "over its memory limit 200Mi" in condition(st, "Ready")["message"], condition(st, "Ready")
    assert is_ready(pods(cluster, "big")[before["metadata"]["uid"]])  # v1 serves on

    def back_on_v1() -> dict[str, Any] | None:
        st = dis(cluster, NS, "big").get("status") or {}
        return st if st.get("history") and st["history"][-1]["action"] == "Rollback" else None

    st = cluster.wait_for("the rollback past the deadline", back_on_v1, timeout=120)
    assert (st["activeVersion"], st["history"][-1]["fromVersion"]) == (1, big), st["history"][-1]
    assert "OOMKilled" in st["history"][-1]["message"], st["history"][-1]  # the pod's own words, quoted
    stage = cluster.api.get(f"/apis/driftline.dev/v1alpha1/namespaces/{NS}/modelversions/breast-cancer-v{big}")
    assert stage["status"]["stage"] == "RolledBack"
    cluster.wait_for("only v1's pod left", lambda: list(pods(cluster, "big")) == [before["metadata"]["uid"]])
