"""The local cluster's container mode: pods of the project's images run as real OCI containers (podman with runc,
the images `make images` built), under their securityContext and resource limits, reported in the pod's status as a
kubelet reports them."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.devcluster import kubeapi
from tests.conftest import Cluster

pytestmark = pytest.mark.integration

RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                  "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
RESTRICTED_CONTAINER = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]}}  # fmt: skip
TRAIN = ["train", "--dataset", "sklearn://breast_cancer", "--estimator", "sklearn.linear_model.LogisticRegression",
         "--params", '{"max_iter": 5000}', "--output-dir", "/models/v1"]  # fmt: skip


def pod(name: str, args: list[str], memory: str = "1Gi", **security: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": RESTRICTED_POD,
            "containers": [
                {
                    "name": "trainer",
                    "image": "driftline/runtime:0.1.0",
                    "args": args,
                    "securityContext": {**RESTRICTED_CONTAINER, **security},
                    "resources": {"limits": {"memory": memory, "cpu": "1"}, "requests": {"memory": "16Mi"}},
                    "volumeMounts": [{"name": "models", "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"}],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }
            ],
            "volumes": [{"name": "models", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        },
    }


def finished(cluster: Cluster, name: str) -> Any:
    def check() -> dict[str, Any] | None:
        st = cluster.api.get(f"/api/v1/namespaces/ml/pods/{name}").get("status") or {}
        return st if st.get("phase") in ("Succeeded", "Failed") else None

    return check


@pytest.fixture(scope="module")
def ml(containers: Cluster) -> Cluster:
    kubeapi.restricted_namespace(containers.api, "ml", error=AssertionError)
    return containers


def test_a_restricted_pod_of_the_runtime_image_trains_in_a_real_container(ml: Cluster) -> None:
    containers = ml
    containers.api.create("/api/v1/namespaces/ml/pods", pod("train", TRAIN))
    st = containers.wait_for("the training pod finished", finished(containers, "train"), timeout=240)
    (cs,) = st["containerStatuses"]
    assert st["phase"] == "Succeeded", cs
    assert cs["containerID"].startswith("podman://") and cs["state"]["terminated"]["exitCode"] == 0
    assert '"sha256"' in cs["state"]["terminated"].get("message", ""), cs  # the trainer's summary, its last words


def test_a_container_over_its_memory_limit_is_oomkilled_with_exit_code_137(ml: Cluster) -> None:
    containers = ml
    containers.api.create("/api/v1/namespaces/ml/pods", pod("small", TRAIN, memory="40Mi"))
    st = containers.wait_for("the small pod finished", finished(containers, "small"), timeout=240)
    (cs,) = st["containerStatuses"]
    terminated = cs["state"]["terminated"]
    assert st["phase"] == "Failed" and (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137), cs


def test_run_as_non_root_with_uid_0_is_refused_before_it_starts(containers: Cluster) -> None:
    """Where Pod Security admission would not refuse it first (a namespace with no enforced level), the node does."""
    containers.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "open"}})
    spec = pod("root", TRAIN)
    spec["spec"]["securityContext"] = {**RESTRICTED_POD, "runAsUser": 0}
    containers.wait_for("the namespace takes pods", lambda: containers.api.get_or_none(
        "/api/v1/namespaces/open/serviceaccounts/default"))  # fmt: skip
    containers.api.create("/api/v1/namespaces/open/pods", spec)

    def refused() -> dict[str, Any] | None:
        st = containers.api.get("/api/v1/namespaces/open/pods/root").get("status") or {}
        waiting = ((st.get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting") or {}
        return waiting if waiting.get("reason") == "CreateContainerConfigError" else None

    waiting = containers.wait_for("the root pod refused", refused, timeout=60)
    assert "runAsNonRoot" in waiting["message"], waiting


SLEEPER = """
import pathlib, signal, sys, time
def bye(*_):
    print("got SIGTERM, leaving", flush=True)
    pathlib.Path("/dev/termination-log").write_text("left on SIGTERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
time.sleep(1)
pathlib.Path("/tmp/ready-in-the-container").write_text("yes")
print("ready", flush=True)
while True:
    time.sleep(0.2)
"""


def test_exec_probes_run_inside_the_container_and_deletion_is_a_graceful_sigterm(ml: Cluster) -> None:
    spec = pod("sleeper", [])
    container = spec["spec"]["containers"][0]
    container.pop("args")
    container["command"] = ["python", "-c", SLEEPER]
    # The file exists only in the container's own /tmp: a probe run on the host would never find it.
    container["readinessProbe"] = {"exec": {"command": ["cat", "/tmp/ready-in-the-container"]}, "periodSeconds": 1}
    spec["spec"]["restartPolicy"] = "Always"
    spec["spec"]["terminationGracePeriodSeconds"] = 20
    ml.api.create("/api/v1/namespaces/ml/pods", spec)

    def ready() -> dict[str, Any] | None:
        st = ml.api.get("/api/v1/namespaces/ml/pods/sleeper").get("status") or {}
        conds = {c["type"]: c["status"] for c in st.get("conditions") or []}
        return st if conds.get("Ready") == "True" else None

    ml.wait_for("the sleeper ready by its exec probe", ready, timeout=60)
    uid = ml.api.get("/api/v1/namespaces/ml/pods/sleeper")["metadata"]["uid"]
    log = ml.dir / "runner" / "pods" / f"ml_sleeper_{uid}" / "logs" / "trainer.log"
    ml.api.delete("/api/v1/namespaces/ml/pods/sleeper")
    ml.wait_for(
        "the sleeper gone", lambda: ml.api.get_or_none("/api/v1/namespaces/ml/pods/sleeper") is None, timeout=60
    )
    said = log.read_text()
    assert "ready" in said and "got SIGTERM, leaving" in said, said[-2000:]  # SIGTERM reached it inside the container
