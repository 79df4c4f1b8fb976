"""The README's first command: `driftline demo` brings up its own cluster, installs the chart and runs the whole loop
(train, serve, drift, retrain, roll forward, a bad release rolled back), leaves the cluster up, and runs again on it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from driftline.devcluster import procs
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import KubeApi
from driftline.devcluster.s3 import S3Server

pytestmark = pytest.mark.e2e
NS = "driftline-demo"


def demo(directory: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "driftline.cli", "demo", "--dir", str(directory), "--containers"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    return out.stdout


def check_the_loop(api: KubeApi) -> None:
    mvs = {
        mv["spec"]["version"]: mv
        for mv in api.get(f"/apis/driftline.dev/v1alpha1/namespaces/{NS}/modelversions")["items"]
    }
    assert sorted(mvs) == [1, 2, 3]
    assert mvs[2]["spec"]["trainingJobRef"]["name"] == "breast-cancer-retrain-1"
    assert mvs[2]["spec"]["dataset"]["uri"] == "configmap://live-data/data.csv"
    assert mvs[3]["status"]["stage"] == "RolledBack" and "drift began after version 3" in mvs[3]["status"]["reason"]
    svc: dict[str, Any] = api.get(f"/apis/driftline.dev/v1alpha1/namespaces/{NS}/inferenceservices/breast-cancer")
    st = svc["status"]
    assert st["activeVersion"] == 2 and st["phase"] == "Ready"
    steps = [(h["action"], h.get("fromVersion"), h["toVersion"]) for h in st["history"]]
    assert steps == [
        ("RollForward", None, 1),
        ("Retrain", 1, 1),
        ("RollForward", 1, 2),
        ("RollForward", 2, 3),
        ("Rollback", 3, 2),
    ], steps
    # Every version stored in the demo's SeaweedFS, and served from there by pods on both nodes.
    assert all(mv["spec"]["artifact"]["storageUri"].startswith("s3://models/breast-cancer/") for mv in mvs.values())
    pods = api.get(f"/api/v1/namespaces/{NS}/pods", labelSelector="driftline.dev/inferenceservice=breast-cancer")
    live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 3 and len({p["spec"]["nodeName"] for p in live}) == 2, [p["spec"]["nodeName"] for p in live]
    # The operator that did all this is the chart's pod, not a process of the demo, and a real container.
    deployment = api.get("/apis/apps/v1/namespaces/driftline-system/deployments/driftline")
    assert deployment["status"].get("availableReplicas") == 1
    (operator,) = api.get("/api/v1/namespaces/driftline-system/pods", labelSelector="app.kubernetes.io/name=driftline")[
        "items"
    ]
    assert operator["status"]["containerStatuses"][0]["containerID"].startswith("podman://")
    assert all(cs["containerID"].startswith("podman://") for p in live for cs in p["status"]["containerStatuses"])


def test_demo_runs_the_whole_loop_through_the_chart_and_again_on_the_same_cluster(
    tmp_path: Path, built_images: dict[str, Any]
) -> None:
    """In container mode: the operator, the trainers, the fetches and the model servers all real OCI containers of the
    images `make images` built."""
    directory = tmp_path / "demo"
    try:
        out = demo(directory)
        assert '{"predictions": [' in out  # a real prediction, shown
        assert "DriftDetected" in out and "RetrainStarted" in out
        assert f"export KUBECONFIG={directory / 'kubeconfig'}" in out
        assert re.search(r"\b[1-9]\d* predictions served to the live traffic, 0 failed requests", out), out[-2000:]
        assert S3Server.running_at(directory / "s3") is not None  # kept with the cluster
        api = KubeApi(directory / "kubeconfig")
        check_the_loop(api)
        report = (directory / "demo-report.html").read_text()
        assert "<svg" in report and "Rollback v2" in report and "Retrain v1" in report

        # Run again on the running cluster: the chart is upgraded in place, the demo namespace starts afresh.
        again = demo(directory)
        assert f"reusing the local control plane in {directory}" in again
        assert "deleting the previous run's namespace" in again
        check_the_loop(api)
    finally:
        LocalCluster(directory).stop()
    assert procs.marked_pids(directory) == []
