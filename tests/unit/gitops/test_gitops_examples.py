"""examples/gitops: the argocd-cm snippet carries exactly the health checks in health/, the checks use only what
Argo CD gives a custom check, the Driftline manifests validate against the models, and the third-party CRDs the
dry-run test installs are the files their provenance note names."""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.unit.api._manifests import MODELS
from tests.unit.gitops._status import (
    ARGOCD_CM,
    GITOPS,
    HEALTH_DIR,
    KINDS,
    REPO,
    cm_key,
    expectations,
    health_script,
)

pytestmark = pytest.mark.unit

CRDS = REPO / "tests" / "data" / "crds"


def _renderer() -> ModuleType:
    path = GITOPS / "argocd" / "render_argocd_cm.py"
    spec = importlib.util.spec_from_file_location("render_argocd_cm", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_argocd_cm_is_rendered_from_the_scripts() -> None:
    assert ARGOCD_CM.read_text() == _renderer().render(), "run examples/gitops/argocd/render_argocd_cm.py"
    [cm] = _documents(ARGOCD_CM)
    assert (cm["kind"], cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("ConfigMap", "argocd-cm", "argocd")
    assert cm["data"] == {cm_key(kind): health_script(kind).read_text() for kind in KINDS}


def test_one_script_per_kind_named_after_its_argocd_cm_key() -> None:
    assert sorted(p.name for p in HEALTH_DIR.iterdir()) == sorted(f"driftline.dev_{k}" for k in KINDS)
    for kind in KINDS:
        assert sorted(p.name for p in health_script(kind).parent.iterdir()) == ["health.lua"]


@pytest.mark.parametrize("kind", KINDS)
def test_script_uses_only_what_argo_cd_opens(kind: str) -> None:
    """Argo CD opens base, table and a safe os (time, date) for custom checks: no string, math, io or debug library,
    no string methods. The integration tests run the scripts in a sandbox that enforces it; this catches a use on a
    line no fixture reaches. Lua 5.1 also has no goto, // or bitwise operators (gopher-lua is 5.1)."""
    code = "\n".join(line.split("--", 1)[0] for line in health_script(kind).read_text().splitlines())
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', code)  # string literals may say anything
    for forbidden in (r"\bstring\.", r"\bmath\.", r"\bio\.", r"\bdebug\.", r"\bos\.(?!time\b|date\b)", r"\brequire\b"):
        assert not re.search(forbidden, code), f"{kind}: {forbidden}"
    assert not re.search(r"[\w\])\"']:\w+\s*\(", code), f"{kind}: a method call (strings have no methods in Argo CD)"
    assert not re.search(r"\bgoto\b|//|~(?!=)|<<|>>", code), f"{kind}: Lua 5.2+ syntax"
    assert re.search(r"^return hs$", code, re.M), f"{kind}: returns hs"


GITOPS_YAML = sorted(p for p in GITOPS.rglob("*.yaml") if p != ARGOCD_CM)


@pytest.mark.parametrize("path", GITOPS_YAML, ids=lambda p: str(p.relative_to(GITOPS)))
def test_manifest_parses_and_driftline_objects_validate(path: Path) -> None:
    docs = _documents(path)
    assert docs, f"{path}: empty"
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion and kind"
        if doc["apiVersion"] == "driftline.dev/v1alpha1":
            MODELS[doc["kind"]].model_validate(doc)
            assert "namespace" not in doc["metadata"], f"{path}: the Application or Kustomization picks the namespace"


def test_kustomization_lists_every_manifest_of_its_directory() -> None:
    for kustomization in GITOPS.rglob("kustomization.yaml"):
        [doc] = _documents(kustomization)
        siblings = sorted(p.name for p in kustomization.parent.glob("*.yaml") if p != kustomization)
        assert sorted(doc["resources"]) == siblings, kustomization


def test_argo_cd_and_flux_point_at_paths_that_exist_or_are_the_chart() -> None:
    """Every path an Application, a Kustomization or a HelmRelease names is in this repository (the chart's may be
    added later: charts/driftline)."""
    paths = []
    for path in GITOPS_YAML:
        for doc in _documents(path):
            spec = doc.get("spec") or {}
            if doc["kind"] == "Application":
                paths.append(spec["source"]["path"])
            elif doc["kind"] == "Kustomization" and "sourceRef" in spec:
                paths.append(spec["path"])
            elif doc["kind"] == "HelmRelease":
                paths.append(spec["chart"]["spec"]["chart"])
    assert paths
    for p in paths:
        rel = p.removeprefix("./")
        assert rel == "charts/driftline" or (REPO / rel).is_dir(), p


def test_third_party_crds_match_their_provenance_note() -> None:
    note = (CRDS / "README.md").read_text()
    listed = dict(re.findall(r"`([0-9a-f]{64})`\s*\|\s*`([^`]+)`", note)) or {}
    files = {str(p.relative_to(CRDS)): hashlib.sha256(p.read_bytes()).hexdigest() for p in CRDS.rglob("*.yaml")}
    assert {v: k for k, v in listed.items()} == files


def test_docs_mapping_tables_match_the_expectations() -> None:
    """docs/gitops.md lists every fixture once, with the health and kstatus status the tests hold it to."""
    doc = (REPO / "docs" / "gitops.md").read_text()
    link = r"\[[^\]]+\]\(\.\./tests/data/status/([^)]+)\)"
    rows = re.findall(rf"^\|[^\n]*\| ([^|\n]+) \| ([^|\n]+) \| {link} \|$", doc, re.M)
    listed = {rel: (argo, ks) for argo, ks, rel in rows}
    assert len(rows) == len(listed), "a fixture is listed twice"
    want = expectations()
    assert set(listed) == set(want)
    word = re.compile(r"[A-Za-z]+")
    for rel, (argo, ks) in listed.items():
        got = (word.findall(argo)[0], word.findall(ks)[0])
        assert got == (want[rel]["argocd"], want[rel]["kstatus"]), rel
