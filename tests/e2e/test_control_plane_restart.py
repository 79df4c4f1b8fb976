"""The control plane crashes under a running operator: kube-apiserver SIGKILLed and restarted, then etcd. The same
operator process reconnects by itself and the loop goes on (a new version trained, promoted and rolled out after each
restart). On a cluster of its own, so a restart can never disturb another test."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.devcluster import binaries, procs
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import KubeApi
from tests.conftest import Cluster, create_restricted_namespace
from tests.e2e.conftest import REPO, pvc
from tests.e2e.test_serving import DIS, MODEL, inferenceservice, ready_at
from tests.e2e.test_training import TJ, finished, trainingjob
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    directory = Path(tempfile.mkdtemp(prefix="driftline-restart-cluster-"))
    local = LocalCluster(directory)
    local.start(timeout=240, progress=False)
    try:
        c = Cluster(local=local, bin=binaries.bin_dir(), api=KubeApi(local.kubeconfig, user_agent="driftline-tests"))
        c.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        c.wait_established(REPO / "crds")
        yield c
    finally:
        local.stop()
    assert procs.marked_pids(directory) == []


def roll_out(cluster: Cluster, ns: str, version: int, params: dict[str, float]) -> None:
    name = f"v{version}"
    cluster.api.create(TJ.format(ns=ns), trainingjob(name, "sklearn.linear_model.LogisticRegression", params))
    st = cluster.wait_for(f"TrainingJob {name} finished", lambda: finished(cluster, ns, name), timeout=240)
    assert st["phase"] == "Succeeded" and st["version"] == version, st
    cluster.wait_for(f"bc Ready on v{version}", ready_at(cluster, ns, "bc", version), timeout=180)


@pytest.mark.parametrize("component", ["apiserver", "etcd"])
def test_the_operator_survives_a_control_plane_restart(own_cluster: Cluster, component: str) -> None:
    cluster = own_cluster
    ns = f"restart-{component}"
    create_restricted_namespace(cluster, ns)
    pvc(cluster, ns)
    op = OperatorProcess(cluster.kubeconfig, cluster.dir / "logs" / f"operator-{component}.log").start()
    try:
        cluster.api.create(DIS.format(ns=ns), inferenceservice("bc"))
        roll_out(cluster, ns, 1, {"max_iter": 5000})

        cluster.local.restart(component, down_for=5)
        cluster.wait_for("the API server answering again", lambda: cluster.api.get_or_none(f"/api/v1/namespaces/{ns}"))

        roll_out(cluster, ns, 2, {"max_iter": 5000, "C": 0.5})
        assert op.proc is not None and op.proc.poll() is None, op.log_tail()  # the same process, never restarted
        jobs = cluster.api.get(f"/apis/batch/v1/namespaces/{ns}/jobs")["items"]
        assert sorted(j["metadata"]["name"] for j in jobs) == ["v1-train", "v2-train"]
        mvs = cluster.api.get(f"/apis/driftline.dev/v1alpha1/namespaces/{ns}/modelversions")["items"]
        stages = {mv["spec"]["version"]: mv["status"]["stage"] for mv in mvs}
        assert stages == {1: "Archived", 2: "Production"} and all(mv["spec"]["model"] == MODEL for mv in mvs)
    finally:
        op.stop()
