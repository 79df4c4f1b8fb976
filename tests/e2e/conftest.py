"""End-to-end fixtures: Driftline's CRDs installed and the operator running against the session's cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline.devcluster import procs
from driftline.devcluster.podrunner import provisioner
from tests.conftest import Cluster
from tests.operator_proc import OperatorProcess

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
    cluster.wait_established(REPO / "crds")


# Module scope: an operator runs only while e2e tests need one, never under the integration tests, which write
# statuses by hand to test the API server's view of them.
def run_operator(cluster: Cluster, log_name: str, env: dict[str, str] | None = None) -> OperatorProcess:
    """The operator as a process on the local control plane, its metrics on a free loopback port; `env` as the chart
    would set it (DRIFTLINE_*)."""
    port = procs.free_port()
    proc = OperatorProcess(
        cluster.kubeconfig,
        cluster.dir / "logs" / log_name,
        "--metrics-port",
        str(port),
        "--metrics-address",
        "127.0.0.1",
        env=env,
    ).start()
    proc.metrics_url = f"http://127.0.0.1:{port}/metrics"
    return proc


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crds: None) -> Iterator[OperatorProcess]:
    proc = run_operator(cluster, "operator.log")
    yield proc
    proc.stop()


def pvc(cluster: Cluster, namespace: str, name: str = "models", access: str = "ReadWriteMany") -> None:
    """A claim of the pod runner's class. ReadWriteMany by default: pods of one claim land on both nodes."""
    cluster.api.create(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {"accessModes": [access], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )


def host_path_of(cluster: Cluster, namespace: str, storage_uri: str) -> Path:
    """Where a pvc:// URI's files live on this machine (the pod runner's directory-backed volume)."""
    claim, _, rel = storage_uri.removeprefix("pvc://").partition("/")
    pvc_obj = cluster.api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}")
    pv = cluster.api.get(f"/api/v1/persistentvolumes/{pvc_obj['spec']['volumeName']}")
    return Path(provisioner.host_path(pv) or "/nonexistent") / rel


def audit_mark(cluster: Cluster) -> int:
    """Where the API server's audit log ends now: read only what comes after it."""
    with (cluster.dir / "logs" / "audit.log").open("rb") as log:
        return sum(1 for _ in log)


def operator_reads(cluster: Cluster, since: int, namespace: str, by: tuple[str, ...]) -> list[str]:
    """The reads (get and list, not watches) in `namespace` since the mark that the operator's reconciles of the kinds
    `by` made (its User-Agent names the reconcile), as "verb resource"."""
    agents = tuple(f"driftline-operator/0.1.0 ({kind})" for kind in by)
    out = []
    with (cluster.dir / "logs" / "audit.log").open() as log:
        for i, line in enumerate(log):
            if i < since:
                continue
            ev = json.loads(line)
            ref = ev.get("objectRef") or {}
            ours = ev.get("userAgent", "") in agents
            if ours and ev.get("verb") in ("get", "list") and ref.get("namespace") == namespace:
                out.append(f"{ev['verb']} {ref.get('resource')}")
    return out
