"""The README's first command: `driftline demo` brings up its own cluster and shows the loop, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from driftline.devcluster import procs
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import KubeApi

pytestmark = pytest.mark.e2e


def test_demo_runs_the_loop_and_leaves_the_cluster_up(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    try:
        out = subprocess.run(
            [sys.executable, "-m", "driftline.cli", "demo", "--dir", str(directory)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "breast-cancer-v1  Production" in out.stdout
        assert "GatesFailed" in out.stdout  # the stump is rejected, with the numbers
        assert f"export KUBECONFIG={directory / 'kubeconfig'}" in out.stdout
        api = KubeApi(directory / "kubeconfig")
        mvs = api.get("/apis/driftline.dev/v1alpha1/namespaces/driftline-demo/modelversions")["items"]
        stages = [mv["status"]["stage"] for mv in mvs]
        assert stages.count("Production") == 1 and len(mvs) == 3
    finally:
        LocalCluster(directory).stop()
    assert procs.marked_pids(directory) == []
