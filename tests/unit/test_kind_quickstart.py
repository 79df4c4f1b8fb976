"""The kind quick start (no Docker here, so these are the checks that keep it honest): kind-config.yaml publishes the
NodePort the quick start's Service uses, that Service selects the pods the operator labels, and `make kind-up` names
files and chart values that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from driftline.api import constants as c

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]


def kind_up() -> str:
    text = (REPO / "Makefile").read_text()
    return text[text.index("kind-up:") : text.index("cluster-up:")]


def test_kind_config_publishes_the_quick_start_node_port() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    (node,) = config["nodes"]
    (mapping,) = node["extraPortMappings"]
    svc = yaml.safe_load((REPO / "examples/kind/breast-cancer-nodeport.yaml").read_text())
    (port,) = svc["spec"]["ports"]
    assert mapping["containerPort"] == port["nodePort"] and svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["selector"] == {c.LABEL_INFERENCE_SERVICE: "breast-cancer"}
    isvc = yaml.safe_load((REPO / "examples/gitops/models/breast-cancer/inferenceservice.yaml").read_text())
    assert isvc["metadata"]["name"] == "breast-cancer" and port["targetPort"] == isvc["spec"].get("port", 8080)


def test_make_kind_up_uses_files_and_values_that_exist() -> None:
    recipe = kind_up()
    for path in re.findall(r"(?:-f|-k|--config) ([\w./-]+)", recipe):
        assert path == "-" or (REPO / path).exists(), path  # "-": the manifest piped in
    schema = json.loads((REPO / "charts/driftline/values.schema.json").read_text())
    for key in re.findall(r"--set ([\w.]+)=", recipe):
        node = schema
        for part in key.split("."):
            node = node["properties"][part]
    for dockerfile, image in (
        ("operator/Dockerfile", "driftline/operator"),
        ("serving-image/Dockerfile", "driftline/runtime"),
    ):
        assert f"docker build -f {dockerfile} -t {image}:" in recipe
        assert f"{image}:$(KIND_TAG)" in recipe.split("kind load", 1)[1]
    # Again is an update, not an error: the cluster is made only if absent, the chart upgraded or installed.
    assert "grep -qx driftline || kind create cluster" in recipe and "helm upgrade --install driftline" in recipe
    assert " create secret generic" not in recipe or "--dry-run=client -o yaml" in recipe  # applied, not created


def test_the_quick_start_stores_models_in_the_kind_clusters_seaweedfs_with_the_keys_kind_up_creates() -> None:
    """The quick start's objects name an endpoint the kind SeaweedFS Service answers on, a bucket it makes, and a
    Secret whose keys `make kind-up` creates and the server knows, with rights on that bucket."""
    docs = list(yaml.safe_load_all((REPO / "examples/kind/seaweedfs.yaml").read_text()))
    service = next(d for d in docs if d["kind"] == "Service")
    (port,) = service["spec"]["ports"]
    endpoint = f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port['port']}"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    script = deployment["spec"]["template"]["spec"]["containers"][0]["args"][0]
    identities = json.loads(next(d for d in docs if d["kind"] == "Secret")["stringData"]["s3.json"])["identities"]
    recipe = kind_up()
    created = dict(re.findall(r"--from-literal=(AWS_\w+)=(\S+)", recipe))
    user = next(i for i in identities if i["credentials"][0]["accessKey"] == created["AWS_ACCESS_KEY_ID"])
    assert user["credentials"][0]["secretKey"] == created["AWS_SECRET_ACCESS_KEY"]
    secret = re.search(r"-n ml create secret generic ([\w-]+)", recipe)
    assert secret is not None
    model = REPO / "examples/gitops/models/breast-cancer"
    for name in ("trainingjob.yaml", "inferenceservice.yaml"):
        spec = yaml.safe_load((model / name).read_text())["spec"]
        s3 = spec["storage"]["s3"]
        assert s3["endpoint"] == endpoint and s3["pathStyle"] is True, name
        refs = s3["credentials"].values()
        assert {r["name"] for r in refs} == {secret.group(1)} and {r["key"] for r in refs} <= set(created), name
    bucket = yaml.safe_load((model / "trainingjob.yaml").read_text())["spec"]["output"]["storageUri"].split("/")[2]
    assert f"s3.bucket.create -name {bucket}" in script
    assert {f"{a}:{bucket}" for a in ("Read", "Write", "List")} <= set(user["actions"])
    assert recipe.index("seaweedfs.yaml") < recipe.index("apply -k examples/gitops/models/breast-cancer")
