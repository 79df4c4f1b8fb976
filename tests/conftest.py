"""Shared fixtures: one real local control plane per test session, a fresh namespace per test.

The cluster starts lazily, only when a test asks for it, so `pytest -m unit` never builds or starts anything.
Set DRIFTLINE_TEST_CLUSTER_DIR to keep the cluster's directory (logs, pod dirs) after the run for a post-mortem.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.devcluster import binaries, kubeapi
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import ApiError, KubeApi
from driftline.devcluster.s3 import Identity, S3Server


@dataclass
class Cluster:
    local: LocalCluster
    bin: Path
    api: KubeApi

    @property
    def kubeconfig(self) -> str:
        return str(self.local.kubeconfig)

    @property
    def dir(self) -> Path:
        return self.local.dir

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / "kubectl"), "--kubeconfig", self.kubeconfig, *args]
        out = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120, check=False)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({out.returncode}): {out.stderr}")
        return out

    def wait_established(self, *crds: str | Path, timeout: float = 60.0) -> None:
        """Every CRD named (by name, or by its file, or a directory of them) Established and its resource served,
        polled: `kubectl wait --for=condition=Established` fails at once on a CRD whose status has no conditions yet,
        and the API server may answer 503 "Resource kind ... not found" for a moment after Established (both seen in
        CI), so a list of the resource must succeed too."""
        names: list[str] = []
        for crd in crds:
            if isinstance(crd, str):
                names.append(crd.removeprefix("crd/"))
                continue
            for path in sorted(crd.glob("*.yaml")) if crd.is_dir() else [crd]:
                names += [d["metadata"]["name"] for d in yaml.safe_load_all(path.read_text()) if d]
        for name in names:

            def established(name: str = name) -> bool:
                crd = self.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
                conditions = (crd.get("status") or {}).get("conditions") or []
                if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    return False
                spec = crd["spec"]
                version = next(v["name"] for v in spec["versions"] if v.get("served"))
                try:
                    self.api.get(f"/apis/{spec['group']}/{version}/{spec['names']['plural']}", limit="1")
                except ApiError:
                    return False
                return True

            self.wait_for(f"CRD {name} established and served", established, timeout=timeout)

    def wait_for(self, what: str, predicate: Any, timeout: float = 60.0, interval: float = 0.3) -> Any:
        """Poll `predicate()` until it returns something truthy; fail naming `what` and the last value seen."""
        return kubeapi.wait_for(what, predicate, timeout, interval, error=AssertionError)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    keep = os.environ.get("DRIFTLINE_TEST_CLUSTER_DIR")
    directory = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="driftline-test-cluster-"))
    local = LocalCluster(directory)
    local.start(timeout=240)
    try:
        yield Cluster(local=local, bin=binaries.bin_dir(), api=KubeApi(local.kubeconfig, user_agent="driftline-tests"))
    finally:
        local.stop()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def built_images() -> dict[str, Any]:
    """Both images, built from their Dockerfiles by hack/images.sh (cached by content), as dist/images.json records
    them: reference -> id, engine, base."""
    script = Path(__file__).resolve().parents[1] / "hack" / "images.sh"
    out = subprocess.run(["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True, timeout=1800)
    recorded: dict[str, Any] = json.loads(Path(out.stdout.strip().splitlines()[-1]).read_text())
    return recorded


@pytest.fixture(scope="session")
def containers(built_images: dict[str, Any]) -> Iterator[Cluster]:
    """A one-node local cluster in container mode: the project's images run as real OCI containers (podman)."""
    keep = os.environ.get("DRIFTLINE_TEST_CONTAINER_CLUSTER_DIR")  # kept for a post-mortem, as the other's
    directory = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="driftline-container-cluster-"))
    local = LocalCluster(directory, nodes=1, containers=True)
    local.start(timeout=240, progress=False)
    try:
        yield Cluster(local=local, bin=binaries.bin_dir(), api=KubeApi(local.kubeconfig, user_agent="driftline-tests"))
    finally:
        local.stop()
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)


def create_restricted_namespace(cluster: Cluster, name: str) -> None:
    """A namespace enforcing the restricted Pod Security Standard, ready for pods."""
    kubeapi.restricted_namespace(cluster.api, name, error=AssertionError)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing the restricted Pod Security Standard, deleted after the test."""
    name = f"t-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    name = "".join(ch for ch in name if ch.isalnum() or ch == "-")
    create_restricted_namespace(cluster, name)
    yield name
    with contextlib.suppress(ApiError):
        cluster.api.delete(f"/api/v1/namespaces/{name}")


@dataclass
class ObjectStore:
    """The session's S3 server and who may do what there: `admin` everything, `reader` only read and list bucket
    `models`, `stranger` keys the server does not know."""

    server: S3Server
    admin: Identity
    reader: Identity
    stranger: Identity
    buckets: tuple[str, ...] = ("models", "datasets")

    def env(self, identity: Identity | None = None) -> dict[str, str]:
        return self.server.env(identity)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """A real SeaweedFS with S3 authentication on (built and cached by hack/build-seaweedfs.sh), started lazily."""
    admin = Identity("admin")
    reader = Identity("reader", actions=("Read:models", "List:models"))
    server = S3Server(tmp_path_factory.mktemp("s3"), [admin, reader]).start()
    try:
        store = ObjectStore(server, admin, reader, Identity("stranger"))
        for bucket in store.buckets:
            server.create_bucket(bucket)
        yield store
    finally:
        server.stop()
