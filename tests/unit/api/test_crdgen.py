"""The generated CRDs and reference doc: committed and current, structural, documented, CEL-ready."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.api import crdgen
from driftline.api.constants import CATEGORY, KINDS
from driftline.api.crd import KIND_DEFINITIONS, build_crd, openapi_schema
from driftline.api.schema import SchemaError, structural, walk
from tests.unit.api._manifests import REPO

pytestmark = pytest.mark.unit

SCHEMAS = {kind.names.kind: openapi_schema(kind.model) for kind in KIND_DEFINITIONS}


def _free_form(path: str) -> bool:
    """Nodes whose content the API server owns (metadata) or that are free-form by design (params, pod metadata, and
    core/v1 scheduling objects passed through to the pod as they are: tolerations, affinity, topology spread)."""
    scheduling = (".pod.tolerations[]", ".pod.affinity", ".pod.topologySpreadConstraints[]")
    return path == ".metadata" or path.endswith((".params", ".template.metadata", *scheduling))


def _nodes() -> list[tuple[str, str, dict[str, Any]]]:
    return [(kind, path, node) for kind, schema in SCHEMAS.items() for path, node in walk(schema)]


def test_committed_files_are_current() -> None:
    files = crdgen.render(REPO / "crds", REPO / "docs" / "crd-reference.md")
    assert crdgen.check(files, REPO / "crds") == [], "run: python -m driftline.api.crdgen"


def test_generation_is_deterministic() -> None:
    first = crdgen.render(Path("crds"), Path("docs/ref.md"))
    second = crdgen.render(Path("crds"), Path("docs/ref.md"))
    assert first == second


def test_check_reports_a_drifted_file_and_a_stale_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(REPO / "crds", tmp_path / "crds")
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "docs" / "crd-reference.md", tmp_path / "docs" / "crd-reference.md")
    args = ["--check", "--out", str(tmp_path / "crds"), "--docs", str(tmp_path / "docs" / "crd-reference.md")]
    assert crdgen.main(args) == 0

    target = tmp_path / "crds" / "driftline.dev_modelversions.yaml"
    target.write_text(target.read_text().replace("shortNames:\n    - mv", "shortNames:\n    - mvv"))
    (tmp_path / "crds" / "driftline.dev_oldkinds.yaml").write_text("{}\n")
    assert crdgen.main(args) == 1
    out = capsys.readouterr().out
    assert "-    - mvv" in out and "+    - mv" in out
    assert "driftline.dev_oldkinds.yaml: stale" in out

    assert crdgen.main(args[1:]) == 0  # writing repairs the drifted file; the stale one is left for a person
    assert "- mv\n" in target.read_text()


def test_crd_files_are_plain_yaml_without_aliases() -> None:
    for path in (REPO / "crds").glob("*.yaml"):
        text = path.read_text()
        assert "&id" not in text and "*id" not in text
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"


@pytest.mark.parametrize("definition", KIND_DEFINITIONS, ids=lambda k: k.names.kind)
def test_names_subresources_and_columns(definition: Any) -> None:
    crd = build_crd(definition)
    names = crd["spec"]["names"]
    assert names["categories"] == [CATEGORY]
    assert crd["spec"]["scope"] == "Namespaced"
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["status"] == {}
    columns = version["additionalPrinterColumns"]
    wide = [c for c in columns if c.get("priority")]
    default = [c["name"] for c in columns if not c.get("priority")]
    assert default[0] == "Model" and default[-1] == "Age"
    assert wide, "extra details belong at priority 1"
    for column in columns:
        assert column["jsonPath"].startswith((".spec.", ".status.", ".metadata."))


def test_short_names_are_unique_and_avoid_kserve() -> None:
    taken = {"isvc", "inferenceservice", "trainjob", "tj"}
    short = [s for k in KINDS for s in k.short_names]
    assert len(short) == len(set(short))
    assert not taken & set(short)


def test_printer_columns_point_at_fields_that_exist() -> None:
    for definition in KIND_DEFINITIONS:
        paths = {path for path, _ in walk(SCHEMAS[definition.names.kind])}
        for column in definition.columns:
            if column.json_path.startswith(".metadata."):
                continue
            assert column.json_path in paths, f"{definition.names.kind}: column {column.name}"


def test_every_node_is_structural() -> None:
    for kind, path, node in _nodes():
        where = f"{kind}{path}"
        assert "$ref" not in node and "allOf" not in node and "oneOf" not in node, where
        assert "type" in node or node.get("x-kubernetes-int-or-string"), where
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), where
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], where
        assert not ("properties" in node and "additionalProperties" in node), where
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert _free_form(path) or "properties" in node, f"{where}: free-form only where meant"
        assert {"title", "const", "$defs"}.isdisjoint(node), where


def test_every_field_is_documented() -> None:
    for kind, path, node in _nodes():
        for name, sub in node.get("properties", {}).items():
            if f"{path}.{name}" in (".metadata", ".metadata.name"):
                continue  # the API server documents metadata
            assert sub.get("description"), f"{kind}{path}.{name} has no description"


def test_cel_cost_is_bounded() -> None:
    # Every list and string has a bound wherever CEL could iterate or match it, so the API server's cost
    # estimate stays under budget.
    for kind, path, node in _nodes():
        if not path.startswith(".spec") or _free_form(path):
            continue
        if node.get("type") == "array":
            assert "maxItems" in node, f"{kind}{path}"
        if node.get("type") == "string" and "enum" not in node and "format" not in node:
            assert "maxLength" in node, f"{kind}{path}"
        for rule in node.get("x-kubernetes-validations", []):
            assert rule.get("message"), f"{kind}{path}: {rule['rule']}"


def test_cross_field_rules_are_in_the_crds() -> None:
    def rules_at(kind: str, at: str) -> list[str]:
        node = dict(walk(SCHEMAS[kind]))[at]
        return [r["rule"] for r in node.get("x-kubernetes-validations", [])]

    assert "has(self.estimator) || has(self.template)" in rules_at("TrainingJob", ".spec")
    assert "self == oldSelf" in rules_at("ModelVersion", ".spec")
    assert any("self.metadata.name" in r for r in rules_at("ModelVersion", ""))
    assert any("isSorted" in r for r in rules_at("InferenceService", ".spec.rollout.canary"))
    assert "has(self.pods) != has(self.prometheus)" in rules_at("InferenceService", ".spec.drift.source")
    assert any("Retrain" in r for r in rules_at("InferenceService", ".spec"))
    # The retrain template is a whole TrainingJob spec, rules included.
    assert "has(self.estimator) || has(self.template)" in rules_at("InferenceService", ".spec.retrain.template")


def test_defaults_live_in_spec_only() -> None:
    for kind, path, node in _nodes():
        if path.startswith(".status"):
            assert "default" not in node, f"{kind}{path}"
    spec = dict(walk(SCHEMAS["InferenceService"]))
    assert spec[".spec.replicas"]["default"] == 1
    assert spec[".spec.rollout"]["default"] == {"progressDeadlineSeconds": 600, "strategy": "Rolling"}
    assert spec[".spec.drift.source"]["default"] == {"pods": {}}


def test_quantities_are_int_or_string() -> None:
    node = dict(walk(SCHEMAS["InferenceService"]))[".spec.resources.limits{}"]
    assert node["x-kubernetes-int-or-string"] is True
    assert "pattern" in node


def test_required_fields() -> None:
    assert SCHEMAS["TrainingJob"]["properties"]["spec"]["required"] == ["dataset", "model", "output"]
    assert SCHEMAS["ModelVersion"]["properties"]["spec"]["required"] == ["artifact", "model", "version"]
    assert SCHEMAS["InferenceService"]["properties"]["spec"]["required"] == ["model"]
    assert all(schema["required"] == ["spec"] for schema in SCHEMAS.values())


def test_structural_conversion_refuses_what_kubernetes_cannot_express() -> None:
    with pytest.raises(SchemaError):
        structural({"anyOf": [{"type": "integer"}, {"type": "boolean"}]})
    with pytest.raises(SchemaError):
        structural({"type": "object", "properties": {"x": {"not": {"type": "string"}}}})
    assert structural({"type": "number", "exclusiveMinimum": 0}) == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
    }


def test_reference_doc_covers_every_field() -> None:
    text = (REPO / "docs" / "crd-reference.md").read_text()
    for kind, path, node in _nodes():
        for name in node.get("properties", {}):
            if path.startswith(".metadata") or path == "":
                continue
            assert f"`{name}`" in text, f"{kind}{path}.{name} missing from the reference"
    for annotation in ("driftline.dev/promote", "driftline.dev/reject", "driftline.dev/rollback"):
        assert annotation in text
