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
        assert (REPO / path).exists(), path
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
