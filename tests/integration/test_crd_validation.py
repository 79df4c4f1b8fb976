"""The CRDs on the real API server: the invalid corpus is rejected naming the field, the examples pass, defaults
and printer columns work, and a ModelVersion's spec cannot change."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.api.constants import KINDS
from driftline.api.inferenceservice import InferenceServiceSpec
from tests.conftest import Cluster
from tests.unit.api._manifests import EXAMPLES, INVALID, REPO, expectation, load

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> Cluster:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    names = [f"crd/{k.crd_name}" for k in KINDS]
    cluster.wait_established(*names)
    # Established is not yet discoverable: wait until kubectl resolves every kind by its short name.
    short = ",".join(k.short_names[0] for k in KINDS)
    cluster.wait_for(
        "the Driftline kinds in discovery", lambda: cluster.kubectl("get", short, "-A", check=False).returncode == 0
    )
    return cluster


@pytest.fixture(scope="module")
def shared_namespace(crds: Cluster) -> Iterator[str]:
    """One namespace for the dry runs, which create nothing in it."""
    name = f"crd-validation-{uuid.uuid4().hex[:6]}"
    crds.kubectl("create", "namespace", name)
    yield name
    crds.kubectl("delete", "namespace", name, "--wait=false", check=False)


def dry_run(cluster: Cluster, namespace: str, path: Path) -> Any:
    return cluster.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(path), check=False
    )


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_naming_the_field(crds: Cluster, shared_namespace: str, path: Path) -> None:
    result = dry_run(crds, shared_namespace, path)
    assert result.returncode != 0, f"{path.name} was accepted"
    assert expectation(path) in result.stderr, f"{path.name}: expected {expectation(path)!r} in: {result.stderr}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_passes_server_dry_run(crds: Cluster, shared_namespace: str, path: Path) -> None:
    result = dry_run(crds, shared_namespace, path)
    assert result.returncode == 0, result.stderr


def test_get_driftline_shows_printer_columns(crds: Cluster, namespace: str) -> None:
    for path in EXAMPLES:
        crds.kubectl("apply", "--validate=strict", "-n", namespace, "-f", str(path))
    mv_status = {"stage": "Production", "headlineMetric": "accuracy=0.981", "promotedBy": "annotation"}
    crds.kubectl(
        "patch", "mv", "fraud-v1", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": mv_status}),
    )  # fmt: skip
    crds.kubectl(
        "patch", "dis", "fraud", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Ready", "activeVersion": 1, "readyReplicas": 3}}),
    )  # fmt: skip

    out = crds.kubectl("get", "driftline", "-n", namespace).stdout
    for header in ("MODEL", "PHASE", "VERSION", "STAGE", "METRIC", "ACTIVE", "AGE"):
        assert header in out, out
    lines = out.splitlines()
    assert any("fraud-v1" in line and "Production" in line and "accuracy=0.981" in line for line in lines), out
    assert any(line.startswith("inferenceservice.driftline.dev/fraud ") and "Ready" in line for line in lines), out
    assert any("trainingjob.driftline.dev/breast-cancer-logreg" in line for line in lines), out

    wide = crds.kubectl("get", "driftline", "-n", namespace, "-o", "wide").stdout
    for header in ("ESTIMATOR", "DATASET", "PROMOTED", "PREDICTOR", "PIN", "CANARY", "DRIFT", "URL"):
        assert header in wide, wide


def test_server_defaults_match_the_models(crds: Cluster, namespace: str) -> None:
    manifest = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "minimal"},
        "spec": {"model": "iris", "rollout": {"strategy": "Canary", "canary": {}}, "drift": {}},
    }
    crds.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    stored = json.loads(crds.kubectl("get", "dis", "minimal", "-n", namespace, "-o", "json").stdout)["spec"]
    assert stored["replicas"] == 1
    assert stored["rollout"]["canary"]["steps"] == [{"weight": 20}, {"weight": 50}]
    assert stored["rollout"]["canary"]["analysis"]["metrics"][0]["provider"] == {"pods": {}}
    assert stored["drift"]["window"] == {"size": 1000}
    # A handler parses what the server stored and writes back exactly that.
    parsed = InferenceServiceSpec.model_validate(stored)
    assert parsed.model_dump(mode="json", exclude_none=True) == stored


def test_model_version_spec_is_immutable(crds: Cluster, namespace: str) -> None:
    crds.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "modelversion-external.yaml"))
    patch = json.dumps({"spec": {"metrics": {"accuracy": 0.5}}})
    result = crds.kubectl("patch", "mv", "fraud-v1", "-n", namespace, "--type=merge", "-p", patch, check=False)
    assert result.returncode != 0
    assert "spec is immutable" in result.stderr
    # Requests go through metadata, which stays writable.
    crds.kubectl("annotate", "mv", "fraud-v1", "-n", namespace, "driftline.dev/promote=again", "--overwrite")


def test_inference_service_scales(crds: Cluster, namespace: str) -> None:
    document = load(REPO / "examples" / "inferenceservice-rolling.yaml")
    crds.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(document))
    crds.kubectl("scale", "dis", document["metadata"]["name"], "-n", namespace, "--replicas=5")
    stored = json.loads(crds.kubectl("get", "dis", document["metadata"]["name"], "-n", namespace, "-o", "json").stdout)
    assert stored["spec"]["replicas"] == 5
