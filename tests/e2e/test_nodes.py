"""Two nodes, as a real cluster has more than one: pods land on both, each pod keeps its own emptyDir, and claims
attach as the real attach/detach controller lets them (a ReadWriteOnce claim to one node at a time). What a user of
EKS, GKE or AKS meets with the default storage class, and what Driftline reports about it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cluster, ObjectStore
from tests.e2e.conftest import host_path_of, pvc
from tests.e2e.test_object_storage import credentials_secret, not_ready_because, storage_spec, train_to_s3
from tests.e2e.test_serving import DIS, MODEL, dis, inferenceservice, ready_at
from tests.e2e.test_training import TJ, finished
from tests.operator_proc import OperatorProcess
from tests.pods import python_container

pytestmark = pytest.mark.e2e

NODES = ("driftline-local-1", "driftline-local-2")


def nodes_of(cluster: Cluster, ns: str, selector: str) -> list[str]:
    items = cluster.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]
    return [p["spec"].get("nodeName") for p in items if not p["metadata"].get("deletionTimestamp")]


@contextlib.contextmanager
def cordoned(cluster: Cluster, node: str) -> Iterator[None]:
    """`kubectl cordon node`: nothing new is scheduled there until the block ends."""
    cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": True}}, "merge")
    try:
        yield
    finally:
        cluster.api.patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": False}}, "merge")


def holder(ns: str, claim: str, node: str) -> dict[str, Any]:
    """A pod on `node` that mounts `claim` and stays: the claim is attached to that node while it runs."""
    container = python_container("hold", "import time; time.sleep(3600)")
    container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"holds-{claim}", "namespace": ns, "labels": {"app": "holder"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def running(cluster: Cluster, ns: str, name: str) -> bool:
    pod = cluster.api.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    return bool((pod.get("status") or {}).get("phase") == "Running")


def production(cluster: Cluster, ns: str, model: str, version: int = 1) -> Any:
    path = f"/apis/driftline.dev/v1alpha1/namespaces/{ns}/modelversions/{model}-v{version}"

    def check() -> bool:
        mv = cluster.api.get_or_none(path) or {}
        return (mv.get("status") or {}).get("stage") == "Production"

    return check


def test_three_replicas_from_object_storage_spread_over_both_nodes(
    cluster: Cluster, namespace: str, operator: OperatorProcess, s3: ObjectStore
) -> None:
    credentials_secret(cluster, namespace, s3.admin)
    credentials_secret(cluster, namespace, s3.reader, "s3-reader")
    mv = train_to_s3(cluster, namespace, s3)
    assert mv["spec"]["artifact"]["storageUri"].startswith("s3://")
    cluster.wait_for("v1 Production", production(cluster, namespace, MODEL))
    service = inferenceservice("bc", replicas=3, storage=storage_spec(s3, "s3-reader"))
    cluster.api.create(DIS.format(ns=namespace), service)
    cluster.wait_for("bc Ready with 3 pods", ready_at(cluster, namespace, "bc", 1, replicas=3), timeout=180)
    placed = nodes_of(cluster, namespace, "driftline.dev/inferenceservice=bc")
    assert len(placed) == 3 and set(placed) == set(NODES), placed


def train_onto(cluster: Cluster, ns: str, model: str, claim: str) -> None:
    """Version 1 of `model`, trained onto `claim` (the training pod mounts it, writes, ends, and lets it go)."""
    tj = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": model},
        "spec": {
            "model": model,
            "dataset": {"uri": "sklearn://breast_cancer"},
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"max_iter": 5000},
            "output": {"storageUri": f"pvc://{claim}/registry"},
            "promotion": {"auto": True},
        },
    }
    cluster.api.create(TJ.format(ns=ns), tj)
    st = cluster.wait_for(f"TrainingJob {model} finished", lambda: finished(cluster, ns, model), timeout=240)
    assert st["phase"] == "Succeeded", st
    cluster.wait_for(f"{model} v1 Production", production(cluster, ns, model))


def test_a_readwriteonce_claim_cannot_follow_a_pod_to_another_node_and_readwritemany_can(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    pvc(cluster, namespace, "once", access="ReadWriteOnce")
    pvc(cluster, namespace, "many", access="ReadWriteMany")
    train_onto(cluster, namespace, "rwo", "once")
    train_onto(cluster, namespace, "rwx", "many")
    # Each claim in use on node 1 by a pod that stays; then node 1 takes no new pods.
    for claim in ("once", "many"):
        cluster.api.create(f"/api/v1/namespaces/{namespace}/pods", holder(namespace, claim, NODES[0]))
    for claim in ("once", "many"):
        cluster.wait_for(f"the holder of {claim} running", lambda c=claim: running(cluster, namespace, f"holds-{c}"))
    with cordoned(cluster, NODES[0]):
        for name, model in (("bc-once", "rwo"), ("bc-many", "rwx")):
            body = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": name}}
            cluster.api.create(DIS.format(ns=namespace), {**body, "spec": {"model": model}})
        # A training onto the held ReadWriteOnce claim meets the same refusal.
        again = {
            "apiVersion": "driftline.dev/v1alpha1",
            "kind": "TrainingJob",
            "metadata": {"name": "rwo-again"},
            "spec": {
                "model": "rwo",
                "dataset": {"uri": "sklearn://breast_cancer"},
                "estimator": "sklearn.linear_model.LogisticRegression",
                "output": {"storageUri": "pvc://once/registry"},
            },
        }
        cluster.api.create(TJ.format(ns=namespace), again)
        # ReadWriteMany: attached to node 2 as well, served there.
        cluster.wait_for("bc-many Ready on node 2", ready_at(cluster, namespace, "bc-many", 1), timeout=120)
        assert nodes_of(cluster, namespace, "driftline.dev/inferenceservice=bc-many") == [NODES[1]]
        # ReadWriteOnce: refused to node 2 by the attach/detach controller; the service says so, naming the claim and
        # what to do, while its pod waits in ContainerCreating.
        try:
            ready = cluster.wait_for(
                "bc-once reports the Multi-Attach",
                not_ready_because(cluster, namespace, "bc-once", "FailedAttachVolume", "Multi-Attach", "(claim once)"),
                timeout=180,
            )
        except AssertionError as e:
            raise AssertionError(f"{e}\n{what_is_seen(cluster, namespace, 'bc-once')}") from None
        assert "ReadWriteMany" in ready["message"] and "s3://" in ready["message"]
        assert nodes_of(cluster, namespace, "driftline.dev/inferenceservice=bc-once") == [NODES[1]]
        assert (dis(cluster, namespace, "bc-once").get("status") or {}).get("readyReplicas") == 0
        training = cluster.wait_for(
            "rwo-again reports the Multi-Attach", lambda: attach_refused(cluster, namespace, "rwo-again"), timeout=120
        )
        assert "(claim once)" in training["message"] and training["status"] == "False"
    # Node 1 takes pods again, and the holder lets go: the claim moves to node 2 and the service starts there.
    cluster.api.delete(f"/api/v1/namespaces/{namespace}/pods/holds-once")
    cluster.wait_for("bc-once Ready once the claim is free", ready_at(cluster, namespace, "bc-once", 1), timeout=240)
    st = cluster.wait_for("rwo-again trained", lambda: finished(cluster, namespace, "rwo-again"), timeout=240)
    assert st["phase"] == "Succeeded" and st["version"] == 2, st


def what_is_seen(cluster: Cluster, ns: str, service: str) -> str:
    """The service's conditions, its pods' phases and nodes, and the namespace's Events: for a failure message."""
    status = dis(cluster, ns, service).get("status") or {}
    pods = cluster.api.get(f"/api/v1/namespaces/{ns}/pods")["items"]
    events = cluster.api.get(f"/api/v1/namespaces/{ns}/events")["items"]
    lines = [f"{c['type']}={c['status']} {c.get('reason')}: {c.get('message')}" for c in status.get("conditions", [])]
    lines += [f"pod {p['metadata']['name']} {p['status'].get('phase')} on {p['spec'].get('nodeName')}" for p in pods]
    lines += [f"event {e['involvedObject']['name']} {e['reason']}: {e.get('message')}" for e in events]
    return "\n".join(lines)


def attach_refused(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    st = cluster.api.get(f"{TJ.format(ns=ns)}/{name}").get("status") or {}
    ready = next((c for c in st.get("conditions") or [] if c["type"] == "Ready"), {})
    return ready if ready.get("reason") == "FailedAttachVolume" and "Multi-Attach" in ready["message"] else None


READS_AND_WRITES = """
import json, os
out = {}
# Container paths come in through env, as the pod runner maps paths only in argv and env (docs/dev-cluster.md).
for name, d in zip(os.environ["NAMES"].split(","), os.environ["DIRS"].split(",")):
    try:
        out[name + " read"] = sorted(os.listdir(d))
        with open(os.path.join(d, "written"), "w") as f:
            f.write("x")
        out[name + " write"] = "ok"
    except OSError as e:
        out[name + " write"] = e.strerror
open(os.environ["OUT"], "w").write(json.dumps(out))
"""


def test_read_only_mounts_refuse_writes_as_a_kubelets_ro_mounts_do(cluster: Cluster, namespace: str) -> None:
    """A ReadOnlyMany claim, a claim mounted `readOnly: true` and a ConfigMap volume are mounted `ro`; an emptyDir
    is not."""
    pvc(cluster, namespace, "reference", access="ReadOnlyMany")
    pvc(cluster, namespace, "shared", access="ReadWriteMany")
    cluster.wait_for(
        "claims bound",
        lambda: all(
            cluster.api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{c}")["status"].get("phase")
            == "Bound"
            for c in ("reference", "shared")
        ),
    )
    # Pre-populated, as a read-only dataset volume is (restored from a snapshot, copied in by an admin).
    (host_path_of(cluster, namespace, "pvc://reference/") / "data.csv").write_text("a,b\n1,2\n")
    cluster.api.create(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"k": "v"}},
    )
    container = python_container("probe", READS_AND_WRITES)
    dirs = ["/reference", "/claim-ro", "/config", "/scratch"]
    container["env"] = [
        {"name": "NAMES", "value": ",".join(d.strip("/") for d in dirs)},  # untranslated: no leading /
        {"name": "DIRS", "value": ",".join(dirs)},
        {"name": "OUT", "value": "/dev/termination-log"},
    ]
    container["volumeMounts"] = [
        {"name": "reference", "mountPath": "/reference"},
        {"name": "shared", "mountPath": "/claim-ro", "readOnly": True},
        {"name": "config", "mountPath": "/config"},
        {"name": "scratch", "mountPath": "/scratch"},
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "mounts"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [container],
            "volumes": [
                {"name": "reference", "persistentVolumeClaim": {"claimName": "reference"}},
                {"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}},
                {"name": "config", "configMap": {"name": "settings"}},
                {"name": "scratch", "emptyDir": {}},
            ],
        },
    }
    cluster.api.create(f"/api/v1/namespaces/{namespace}/pods", pod)

    def terminated() -> dict[str, Any] | None:
        st = cluster.api.get(f"/api/v1/namespaces/{namespace}/pods/mounts").get("status") or {}
        states = [c.get("state", {}).get("terminated") for c in st.get("containerStatuses") or []]
        return states[0] if states and states[0] else None

    done = cluster.wait_for("the probe pod ended", terminated, timeout=120)
    assert done["exitCode"] == 0, done
    seen = json.loads(done["message"])
    assert seen["reference read"] == ["data.csv"], seen
    assert seen["config read"] == ["k"], seen
    for ro in ("reference", "claim-ro", "config"):
        assert seen[f"{ro} write"] == "Read-only file system", seen
    assert seen["scratch write"] == "ok", seen
