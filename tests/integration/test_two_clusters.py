"""Two local control planes run side by side without clashing, and `down` leaves no process behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.devcluster import procs
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import KubeApi
from tests.conftest import Cluster

pytestmark = pytest.mark.integration


def test_second_cluster_runs_beside_the_first_and_stops_cleanly(cluster: Cluster, tmp_path: Path) -> None:
    second = LocalCluster(tmp_path / "second")
    state = second.start(timeout=120, progress=False)
    try:
        assert state.server != cluster.api.server
        nodes = KubeApi(second.kubeconfig).get("/api/v1/nodes")["items"]
        assert [n["metadata"]["name"] for n in nodes] == ["driftline-local-1", "driftline-local-2"]
        # Separate etcds: a namespace made in one cluster does not exist in the other.
        KubeApi(second.kubeconfig).create("/api/v1/namespaces", {"metadata": {"name": "only-in-second"}})
        assert cluster.api.get_or_none("/api/v1/namespaces/only-in-second") is None
        assert len(procs.marked_pids(second.dir)) >= 5
    finally:
        second.stop()
    assert procs.marked_pids(second.dir) == []
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"  # the first cluster is untouched
