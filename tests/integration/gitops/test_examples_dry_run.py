"""Every manifest under examples/gitops is valid on the real API server, with Argo CD's and Flux's CRDs installed
next to Driftline's (tests/data/crds, copied from their Go modules): `kubectl apply --dry-run=server
--validate=strict`, kustomize directories with -k, and the argocd-cm snippet as the patch the docs tell people to
apply to an installed Argo CD."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cluster
from tests.unit.gitops._status import ARGOCD_CM, GITOPS, KINDS, REPO, cm_key, health_script

pytestmark = pytest.mark.integration

THIRD_PARTY = REPO / "tests" / "data" / "crds"
KUSTOMIZE_DIRS = sorted(p.parent for p in GITOPS.rglob("kustomization.yaml"))
FILES = sorted(p for p in GITOPS.rglob("*.yaml") if p != ARGOCD_CM and not any(d in p.parents for d in KUSTOMIZE_DIRS))


def _namespaces() -> set[str]:
    """The namespaces the examples put objects in: they must exist for a dry run (an install makes them)."""
    found = set()
    for path in [*FILES, *(d / "kustomization.yaml" for d in KUSTOMIZE_DIRS)]:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "Kustomization" and "namespace" in doc and "apiVersion" in doc:
                found.add(doc["namespace"])
            elif doc:
                found.add((doc.get("metadata") or {}).get("namespace") or "")
    return found - {""}


def _crd_files() -> list[Path]:
    return [*sorted((REPO / "crds").glob("*.yaml")), *sorted(THIRD_PARTY.rglob("*.yaml"))]


@pytest.fixture(scope="module")
def gitops_cluster(cluster: Cluster) -> Iterator[Cluster]:
    crds = _crd_files()
    args = [a for path in crds for a in ("-f", str(path))]
    # Server-side: Argo CD's Application CRD is larger than the last-applied annotation allows.
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *args)
    cluster.wait_established(*crds)
    resources = "applications.argoproj.io,gitrepositories.source.toolkit.fluxcd.io,"
    resources += "kustomizations.kustomize.toolkit.fluxcd.io,helmreleases.helm.toolkit.fluxcd.io,"
    resources += ",".join(f"{k.lower()}s.driftline.dev" for k in KINDS)
    cluster.wait_for(
        "the GitOps kinds in discovery", lambda: cluster.kubectl("get", resources, "-A", check=False).returncode == 0
    )
    made = []
    for ns in sorted(_namespaces()):
        if cluster.kubectl("get", "namespace", ns, check=False).returncode != 0:
            cluster.kubectl("create", "namespace", ns)
            made.append(ns)
    yield cluster
    for ns in made:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
    for path in sorted(THIRD_PARTY.rglob("*.yaml")):
        cluster.kubectl("delete", "-f", str(path), "--wait=false", "--ignore-not-found", check=False)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(GITOPS)))
def test_manifest_passes_server_dry_run(gitops_cluster: Cluster, path: Path) -> None:
    out = gitops_cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", str(path), check=False)
    assert out.returncode == 0, f"{path.relative_to(REPO)}: {out.stderr}"
    assert "(server dry run)" in out.stdout


@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS, ids=lambda p: str(p.relative_to(GITOPS)))
def test_kustomization_passes_server_dry_run(gitops_cluster: Cluster, directory: Path) -> None:
    out = gitops_cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-k", str(directory), check=False)
    assert out.returncode == 0, f"{directory.relative_to(REPO)}: {out.stderr}"
    kinds = {line.split("/", 1)[0] for line in out.stdout.splitlines()}
    assert {"trainingjob.driftline.dev", "inferenceservice.driftline.dev"} <= kinds, out.stdout


def test_argocd_cm_merges_into_an_installed_argo_cd(gitops_cluster: Cluster) -> None:
    """Applied as the docs say, the snippet adds the three health checks and keeps the settings already there."""
    existing = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": "argocd"},
        "data": {"url": "https://argocd.example.com", "timeout.reconciliation": "180s"},
    }
    gitops_cluster.kubectl("apply", "-f", "-", input=json.dumps(existing))
    patch = ["patch", "configmap", "argocd-cm", "--patch-file", str(ARGOCD_CM), "--dry-run=server", "-o", "json"]
    out = gitops_cluster.kubectl("-n", "argocd", *patch)
    data = json.loads(out.stdout)["data"]
    assert data["url"] == "https://argocd.example.com" and data["timeout.reconciliation"] == "180s"
    for kind in KINDS:
        assert data[cm_key(kind)] == health_script(kind).read_text()
    applied = gitops_cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", str(ARGOCD_CM))
    assert "(server dry run)" in applied.stdout


def test_the_dry_run_would_catch_a_mistake(gitops_cluster: Cluster) -> None:
    """The third-party schemas are really in force: a misspelt field in each kind of example is refused."""
    for path in FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or "spec" not in doc or doc["kind"] == "PersistentVolumeClaim":
                continue
            broken = {**doc, "spec": {**doc["spec"], "intervall": "5m"}}
            out = gitops_cluster.kubectl(
                "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=json.dumps(broken), check=False
            )
            assert out.returncode != 0 and "intervall" in out.stderr, f"{doc['kind']} in {path.name}: {out.stderr}"
