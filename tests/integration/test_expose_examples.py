"""The examples that expose a model outside the cluster (examples/expose/): valid on the real API server (the
HTTPRoute with the Gateway API's own CRD, from its Go module), and pointing at the Service the operator makes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from driftline.render.serving import PORT_NAME, SERVICE_PORT
from tests.conftest import Cluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXPOSE = sorted((REPO / "examples" / "expose").glob("*.yaml"))
HTTPROUTE_CRD = REPO / "tests" / "data" / "crds" / "gateway-api" / "gateway.networking.k8s.io_httproutes.yaml"
SERVED = yaml.safe_load((REPO / "examples" / "inferenceservice-rolling.yaml").read_text())


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> Iterator[str]:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(HTTPROUTE_CRD))

    cluster.wait_established(HTTPROUTE_CRD)
    name = f"expose-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("path", EXPOSE, ids=lambda p: p.stem)
def test_example_passes_server_dry_run(cluster: Cluster, namespace: str, path: Path) -> None:
    out = cluster.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(path), check=False
    )
    assert out.returncode == 0, out.stderr
    assert "(server dry run)" in out.stdout


def test_the_routes_point_at_the_service_the_operator_makes() -> None:
    """render.serving names the Service after the InferenceService, port SERVICE_PORT named PORT_NAME."""
    docs = {yaml.safe_load(p.read_text())["kind"]: yaml.safe_load(p.read_text()) for p in EXPOSE}
    assert set(docs) == {"Ingress", "HTTPRoute"}
    service = SERVED["metadata"]["name"]
    (path,) = docs["Ingress"]["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": service, "port": {"name": PORT_NAME}}
    for rule in docs["HTTPRoute"]["spec"]["rules"]:
        assert rule["backendRefs"] == [{"name": service, "port": SERVICE_PORT}]
        assert all(f"/models/{SERVED['spec']['model']}" in m["path"]["value"] for m in rule["matches"])
