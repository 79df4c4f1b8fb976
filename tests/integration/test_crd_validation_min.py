"""The CRDs on the API server of the oldest Kubernetes Driftline supports (KUBERNETES_MIN_VERSION in
hack/versions.env, built from its Go module by hack/build-k8s.sh): they install, every CEL rule compiles there, the
invalid corpus is rejected naming the field and the examples pass, as on the pinned version
(test_crd_validation.py). A rule or a schema feature newer than the minimum fails here first."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.api.constants import KINDS
from driftline.devcluster import binaries
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import KubeApi
from tests.conftest import Cluster
from tests.unit.api._manifests import EXAMPLES, INVALID, REPO, expectation

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def oldest() -> Iterator[Cluster]:
    """etcd and the oldest supported kube-apiserver, nothing else: validation needs no controller."""
    apiserver, version = binaries.min_apiserver()
    directory = Path(tempfile.mkdtemp(prefix="driftline-min-apiserver-"))
    local = LocalCluster(directory, pod_runner=False, controllers=False, apiserver=(apiserver, version))
    local.start(timeout=120)
    try:
        cluster = Cluster(
            local=local, bin=binaries.bin_dir(), api=KubeApi(local.kubeconfig, user_agent="driftline-tests")
        )
        served = cluster.api.get("/version")["gitVersion"]
        assert served == version, f"the API server says {served}, not {version}"
        cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        # Every CRD established: its schema and CEL rules accepted by this API server.
        cluster.wait_established(*[k.crd_name for k in KINDS])
        short = ",".join(k.short_names[0] for k in KINDS)
        cluster.wait_for(
            "the kinds in discovery", lambda: cluster.kubectl("get", short, "-A", check=False).returncode == 0
        )
        yield cluster
    finally:
        local.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _dry_run(cluster: Cluster, path: Path) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-n", "default", "-f", str(path), check=False
    )


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_naming_the_field(oldest: Cluster, path: Path) -> None:
    result = _dry_run(oldest, path)
    assert result.returncode != 0, f"{path.name} was accepted"
    assert expectation(path) in result.stderr, f"{path.name}: expected {expectation(path)!r} in: {result.stderr}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_passes_server_dry_run(oldest: Cluster, path: Path) -> None:
    result = _dry_run(oldest, path)
    assert result.returncode == 0, result.stderr
