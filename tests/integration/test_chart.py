"""The Helm chart (charts/driftline): lint-clean, its CRDs the generated ones, its renderings for each mode
(cluster-wide, namespaced, peering, ServiceMonitor), its schema refusing unknown and ill-typed values, and its output
accepted by the real API server (`kubectl apply --dry-run=server`, CRDs applied first)."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.api import crdgen
from driftline.api.constants import KINDS
from driftline.devcluster import binaries
from tests.conftest import Cluster

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "driftline"
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass
class Helm:
    """The pinned helm binary with its own config/cache/data directories (nothing from ~/.config/helm leaks in)."""

    bin: Path
    home: Path
    kubeconfig: str | None = None

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        cmd = [str(self.bin / "helm"), *args]
        if self.kubeconfig:
            cmd += ["--kubeconfig", self.kubeconfig]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if check and out.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({out.returncode}): {out.stderr}")
        return out

    def template(self, *values: str, namespace: str = "driftline-system", release: str = "driftline") -> str:
        return self.run("template", release, str(CHART), "--namespace", namespace, *sets(values)).stdout


def sets(values: tuple[str, ...] | list[str]) -> list[str]:
    """`key=value` pairs as helm --set flags."""
    return [arg for value in values for arg in ("--set", value)]


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def operator_cluster_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's own ClusterRoles: not the users' roles aggregated into view, edit and admin."""
    return [
        d
        for d in by_kind(docs, "ClusterRole")
        if not any(k.startswith(AGGREGATE) for k in d["metadata"]["labels"]) and d not in review_roles(docs)
    ]


REVIEW_ROLES = ("-metrics-auth", "-metrics-reader", "-author-checks")


def review_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ClusterRoles and ClusterRoleBindings of access reviews: secure metrics' (metrics-auth.yaml) and the author
    checks' (admission-author.yaml)."""
    kinds = ("ClusterRole", "ClusterRoleBinding")
    return [d for d in docs if d["kind"] in kinds and d["metadata"]["name"].endswith(REVIEW_ROLES)]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = by_kind(docs, "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return dict(c)


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def rules_of(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples of a Role or ClusterRole."""
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return Helm(binaries.bin_dir(), tmp_path_factory.mktemp("helm-home"))


# -- lint and CRDs --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        (),
        ("watchNamespaces={a,b}", "peering.enabled=true", "replicaCount=2"),
        ("peering.enabled=true", "replicaCount=3", "metrics.serviceMonitor.enabled=true"),
        ("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"),
        (
            "networkPolicy.enabled=true",
            "watchNamespaces={a}",
            "podMonitor.enabled=true",
            "grafana.dashboards.enabled=true",
        ),
    ],
    ids=["defaults", "namespaced-peering", "cluster-peering-servicemonitor", "alerts", "network"],
)
def test_lint_is_clean(helm: Helm, values: tuple[str, ...]) -> None:
    out = helm.run("lint", "--strict", str(CHART), *sets(values))
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


def test_chart_crds_are_generated_from_the_models() -> None:
    files = crdgen.render(REPO / "crds", REPO / "docs" / "crd-reference.md", CHART / "crds")
    assert crdgen.check(files, REPO / "crds", CHART / "crds") == [], "run: python -m driftline.api.crdgen"
    for crd in (REPO / "crds").glob("*.yaml"):
        assert (CHART / "crds" / crd.name).read_text() == crd.read_text()
    kinds = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in (CHART / "crds").glob("*.yaml")}
    assert kinds == {"TrainingJob", "ModelVersion", "InferenceService", "ClusterKopfPeering", "KopfPeering"}


# -- RBAC: exactly what the code calls ------------------------------------------------------------------------------

CRS = [k.plural for k in KINDS]
# Every API call of the operator goes through driftline.k8s.objects: the permission each function needs. A new
# function fails the test below until it is given its permission here and in the chart (templates/_helpers.tpl).
OBJECTS_NEEDS: dict[str, set[tuple[str, str, str]]] = {
    # InferenceServices are read from the operator's view of the cluster (k8s/cache.py), never by name.
    "get": {("driftline.dev", r, "get") for r in ("trainingjobs", "modelversions")},
    "list_": {("driftline.dev", r, "list") for r in CRS},
    "all_of": {("driftline.dev", r, "list") for r in CRS},
    "create": {("driftline.dev", "modelversions", "create"), ("driftline.dev", "trainingjobs", "create")},
    "patch_status": {("driftline.dev", f"{r}/status", "patch") for r in CRS},
    "get_job": {("batch", "jobs", "get")},
    "create_job": {("batch", "jobs", "create")},
    "patch_job": {("batch", "jobs", "patch")},
    "list_pods": {("", "pods", "list")},
    "list_pod_events": {("", "events", "list")},
    "all_deployments": {("apps", "deployments", "list")},
    "get_deployment": {("apps", "deployments", "get")},
    "apply_deployment": {("apps", "deployments", "patch"), ("apps", "deployments", "create")},  # apply may create
    "delete_deployment": {("apps", "deployments", "delete")},
    "all_services": {("", "services", "list")},
    "get_service": {("", "services", "get")},
    "apply_service": {("", "services", "patch"), ("", "services", "create")},
    "all_pdbs": {("policy", "poddisruptionbudgets", "list")},
    "get_pdb": {("policy", "poddisruptionbudgets", "get")},
    "apply_pdb": {("policy", "poddisruptionbudgets", "patch"), ("policy", "poddisruptionbudgets", "create")},
    "delete_pdb": {("policy", "poddisruptionbudgets", "delete")},
    "create_config_map": {("", "configmaps", "create")},  # a retrain's live labels; never read
}
# What the local cluster cannot show: blockOwnerDeletion on children needs update on the owner's finalizers where the
# OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift).
OWNER_FINALIZERS = {("driftline.dev", f"{r}/finalizers", "update") for r in ("trainingjobs", "inferenceservices")}
DISCOVERY = {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}


def needed_in_a_namespace() -> set[tuple[str, str, str]]:
    """The operator's needs in a served namespace, from driftline.k8s and from the kopf handlers it registers."""
    import kopf

    import driftline.handlers  # noqa: F401  (registers every handler)
    from driftline.k8s import events, objects

    functions = {
        name
        for name, fn in inspect.getmembers(objects, inspect.isfunction)
        if fn.__module__ == objects.__name__ and not name.startswith("_")
    }
    assert functions == set(OBJECTS_NEEDS), "driftline.k8s.objects changed: give each call its permission"
    needs: set[tuple[str, str, str]] = set().union(*OBJECTS_NEEDS.values())
    assert "kopf.event(" in inspect.getsource(events)  # kopf posts core/v1 Events
    needs.add(("", "events", "create"))
    # kopf's registry (the attributes kopf's own resource observer reads): every served resource is listed and
    # watched; the ones with changing handlers, timers or daemons are patched (finalizer, progress annotations).
    registry = kopf.get_default_registry()
    watched = registry._watching.get_all_handlers()
    patched = [*registry._changing.get_all_handlers(), *registry._spawning.get_all_handlers()]
    for handler in [*watched, *patched]:
        selector = handler.selector
        assert selector is not None and selector.group is not None
        resource = str(selector.any_name or selector.plural)
        needs |= {(selector.group, resource, "list"), (selector.group, resource, "watch")}
        if handler in patched:
            needs.add((selector.group, resource, "patch"))
    return needs


def test_rbac_is_exactly_what_the_code_calls(helm: Helm) -> None:
    needs = needed_in_a_namespace()
    (cluster_role,) = operator_cluster_roles(documents(helm.template()))
    assert rules_of(cluster_role) == needs | OWNER_FINALIZERS | DISCOVERY

    docs = documents(helm.template("watchNamespaces={team-a}"))
    (role,) = by_kind(docs, "Role")
    assert rules_of(role) == needs | OWNER_FINALIZERS
    (discovery,) = operator_cluster_roles(docs)
    assert rules_of(discovery) == DISCOVERY | {("", "namespaces", "list"), ("", "namespaces", "watch")}


# -- what each mode renders -----------------------------------------------------------------------------------------


def test_defaults_run_cluster_wide_restricted_with_probes_and_resources(helm: Helm) -> None:
    docs = documents(helm.template())
    assert sorted(d["kind"] for d in docs) == [
        *["ClusterRole"] * 7,  # the operator's, view, edit, admin; secure metrics' auth and reader; author checks
        *["ClusterRoleBinding"] * 3,  # the operator's, secure metrics' auth, author checks
        "Deployment",
        "MutatingAdmissionPolicy",  # records each spec's author
        "MutatingAdmissionPolicyBinding",
        "Service",
        "ServiceAccount",
        *["ValidatingAdmissionPolicy"] * 4,  # trainingjobs, inferenceservices, and who decides what is served
        *["ValidatingAdmissionPolicyBinding"] * 4,
    ]
    c = container(docs)
    assert c["image"] == "driftline/operator:0.1.0"
    assert c["args"] == [
        "run",
        "--all-namespaces",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--metrics-port=8081",
        "--metrics-secure",
    ]
    assert "command" not in c  # the image's ENTRYPOINT (driftline)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"health": 8080, "metrics": 8081}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}, probe
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    assert c["securityContext"] == RESTRICTED
    env = env_of(c)
    assert env["DRIFTLINE_RUNTIME_IMAGE"] == "driftline/runtime:0.1.0"
    assert env["DRIFTLINE_ALLOWED_ESTIMATOR_PREFIXES"] == "sklearn."
    assert env["DRIFTLINE_ALLOWED_PROMETHEUS_URLS"] == "http://prometheus-operated.monitoring.svc:9090"
    assert "DRIFTLINE_TRUSTED_KEYS" not in env  # unsigned artifacts are served unless the admin says otherwise
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]

    (dep,) = by_kind(docs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["serviceAccountName"] == "driftline"
    assert dep["spec"]["strategy"] == {"type": "Recreate"}  # two standalone operators must never overlap

    (svc,) = by_kind(docs, "Service")
    assert svc["metadata"]["name"] == "driftline-metrics"
    assert svc["spec"]["ports"] == [{"name": "metrics", "port": 8081, "targetPort": "metrics", "protocol": "TCP"}]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]

    (role,) = operator_cluster_roles(docs)
    rules = rules_of(role)
    assert ("apiextensions.k8s.io", "customresourcedefinitions", "watch") in rules
    assert ("apps", "deployments", "create") in rules and ("", "events", "create") in rules
    assert not any("*" in part for rule in rules for part in rule)
    assert not any(resource in ("secrets", "namespaces") for _, resource, _ in rules)
    assert {verb for _, resource, verb in rules if resource == "configmaps"} == {"create"}  # never read one
    (binding,) = [b for b in by_kind(docs, "ClusterRoleBinding") if b not in review_roles(docs)]
    assert binding["roleRef"]["name"] == role["metadata"]["name"] == "driftline-system-driftline"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "driftline", "namespace": "driftline-system"}]


def test_namespaced_mode_has_a_role_per_namespace_and_only_discovery_cluster_wide(helm: Helm) -> None:
    docs = documents(helm.template("watchNamespaces={team-a,team-b}"))
    c = container(docs)
    assert c["args"][:5] == ["run", "--namespace", "team-a", "--namespace", "team-b"]
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for b in bindings:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "driftline", "namespace": "driftline-system"}]
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "driftline"}
    (cluster_role,) = operator_cluster_roles(docs)
    assert rules_of(cluster_role) == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        ("", "namespaces", "list"),
        ("", "namespaces", "watch"),
    }
    assert rules_of(roles[0]) == rules_of(roles[1])
    assert ("batch", "jobs", "create") in rules_of(roles[0])

    without = documents(helm.template("watchNamespaces={team-a}", "rbac.discovery=false"))
    assert not operator_cluster_roles(without) and len(by_kind(without, "Role")) == 1
    # Cluster-wide only what secure metrics and the author checks need (TokenReview and SubjectAccessReview are
    # cluster-scoped), and without either nothing at all.
    assert by_kind(without, "ClusterRoleBinding") == by_kind(review_roles(without), "ClusterRoleBinding")
    plain = documents(helm.template("watchNamespaces={team-a}", "rbac.discovery=false", "metrics.secure=false",
                                    "admission.enabled=false"))  # fmt: skip
    assert operator_cluster_roles(plain) == review_roles(plain) == by_kind(plain, "ClusterRoleBinding") == []


def test_users_roles_aggregate_into_view_edit_and_admin_and_only_admin_writes_modelversions(helm: Helm) -> None:
    docs = documents(helm.template())
    operators = operator_cluster_roles(docs) + review_roles(docs)
    users = {d["metadata"]["name"]: d for d in by_kind(docs, "ClusterRole") if d not in operators}
    assert sorted(users) == ["driftline-admin", "driftline-edit", "driftline-view"]
    for name, role in users.items():
        assert role["metadata"]["labels"][AGGREGATE + name.rsplit("-", 1)[1]] == "true"
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    granted = {name: rules_of(role) for name, role in users.items()}
    assert {r for g, r, v in granted["driftline-view"] if v in writes} == set()
    assert {r for g, r, v in granted["driftline-edit"]} == {"trainingjobs", "inferenceservices"}
    assert {r for g, r, v in granted["driftline-admin"]} == {"modelversions", "modelversions/status", "serviceaccounts"}
    assert {v for g, r, v in granted["driftline-admin"] if r == "serviceaccounts"} == {"use"}  # no other right on them
    for values in (("rbac.aggregateToDefaultRoles=false",), ("rbac.create=false",)):
        docs = documents(helm.template(*values))
        operators = operator_cluster_roles(docs) + by_kind(review_roles(docs), "ClusterRole")
        assert len(by_kind(docs, "ClusterRole")) == len(operators), values


def test_no_rbac_and_an_existing_service_account(helm: Helm) -> None:
    docs = documents(helm.template("rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=ops"))
    assert sorted(d["kind"] for d in docs if "AdmissionPolicy" not in d["kind"]) == [
        "Deployment",
        "Service",
    ]
    (dep,) = by_kind(docs, "Deployment")
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    out = helm.run("template", "x", str(CHART), "--set", "serviceAccount.create=false", check=False)
    assert out.returncode != 0 and "serviceAccount.name is required" in out.stderr


def test_peering_cluster_wide(helm: Helm) -> None:
    docs = documents(helm.template("peering.enabled=true", "replicaCount=2"))
    (peering,) = by_kind(docs, "ClusterKopfPeering")
    name = peering["metadata"]["name"]
    assert name == "driftline-system-driftline"
    c = container(docs)
    assert f"--peering={name}" in c["args"]
    assert c["command"][:2] == ["/bin/sh", "-c"]
    assert env_of(c)["POD_UID"] == {"fieldRef": {"fieldPath": "metadata.uid"}}
    assert env_of(c)["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    (dep,) = by_kind(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"]["type"] == "RollingUpdate"
    (role,) = operator_cluster_roles(docs)
    assert {("kopf.dev", "clusterkopfpeerings", v) for v in ("list", "watch", "patch")} <= rules_of(role)


def test_peering_namespaced(helm: Helm) -> None:
    docs = documents(helm.template("peering.enabled=true", "watchNamespaces={team-a,team-b}", "peering.name=p"))
    peerings = by_kind(docs, "KopfPeering")
    assert sorted((p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings) == [
        ("team-a", "p"),
        ("team-b", "p"),
    ]
    for role in by_kind(docs, "Role"):
        assert {("kopf.dev", "kopfpeerings", v) for v in ("list", "watch", "patch")} <= rules_of(role)
    assert "--peering=p" in container(docs)["args"]
    no_objects = documents(helm.template("peering.enabled=true", "peering.create=false"))
    assert not by_kind(no_objects, "ClusterKopfPeering")


def test_trusted_signing_keys_reach_the_operator_as_one_text(helm: Helm, tmp_path: Path) -> None:
    keys = [f"-----BEGIN PUBLIC KEY-----\n{c * 8}\n-----END PUBLIC KEY-----\n" for c in "AB"]
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"trustedSigningKeys": keys}))
    out = helm.run("template", "driftline", str(CHART), "-f", str(values)).stdout
    assert env_of(container(documents(out)))["DRIFTLINE_TRUSTED_KEYS"] == "\n".join(keys)


def test_peering_priority_comes_from_the_pod_uid(helm: Helm, tmp_path: Path) -> None:
    """kopf pauses all peers of equal priority: the wrapper gives each replica its own, from 32 bits of its uid."""
    c = container(documents(helm.template("peering.enabled=true")))
    fake = tmp_path / "driftline"
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    # The kubelet's $(VAR) expansion turns `$$` into `$` before the shell sees the script.
    argv = [part.replace("$$", "$") for part in c["command"]] + c["args"]
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "POD_UID": "deadbeef-1111-2222-3333-444455556666"}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=10)
    assert out.stdout.split()[:2] == ["run", "--all-namespaces"]
    assert out.stdout.split()[-2:] == ["--priority", str(0xDEADBEEF)]


def test_metrics_off_and_service_monitor(helm: Helm) -> None:
    off = documents(helm.template("metrics.enabled=false"))
    assert not by_kind(off, "Service")
    assert not any(a.startswith("--metrics-port") for a in container(off)["args"])

    docs = documents(helm.template("metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"))
    (sm,) = by_kind(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prom"
    assert sm["spec"]["endpoints"] == [
        {
            "port": "metrics",
            "path": "/metrics",
            "interval": "30s",
            "scrapeTimeout": "10s",
            "scheme": "https",
            "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "tlsConfig": {"insecureSkipVerify": True},
        }
    ]
    plain = documents(helm.template("metrics.serviceMonitor.enabled=true", "metrics.secure=false"))
    (sm,) = by_kind(plain, "ServiceMonitor")
    assert "scheme" not in sm["spec"]["endpoints"][0]
    assert [r["metadata"]["name"] for r in review_roles(plain)] == ["driftline-system-driftline-author-checks"] * 2
    assert "--metrics-secure" not in container(plain)["args"]
    # The admission policies record authors, and the operator checks their rights only where they do.
    assert env_of(container(plain))["DRIFTLINE_CHECK_AUTHORS"] == "true"
    for off in ("admission.enabled=false", "admission.recordAuthors=false"):  # e.g. a cluster older than 1.36
        without = documents(helm.template(off))
        assert env_of(container(without))["DRIFTLINE_CHECK_AUTHORS"] == "false", off
        assert not by_kind(without, "MutatingAdmissionPolicy"), off
        assert not [d for d in review_roles(without) if d["metadata"]["name"].endswith("-author-checks")], off
    (svc,) = by_kind(docs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert not by_kind(documents(helm.template()), "ServiceMonitor")  # off by default


def test_network_policies_admit_the_operator_the_clients_and_the_scrapers_and_nothing_else(helm: Helm) -> None:
    assert not by_kind(documents(helm.template("watchNamespaces={a}")), "NetworkPolicy")  # off by default
    scraper = "networkPolicy.scrapers[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring"
    docs = documents(helm.template("networkPolicy.enabled=true", "watchNamespaces={a,b}", scraper))
    servers = {
        p["metadata"]["namespace"]: p
        for p in by_kind(docs, "NetworkPolicy")
        if "model-servers" in p["metadata"]["name"]
    }
    assert sorted(servers) == ["a", "b"]
    (dep,) = by_kind(docs, "Deployment")
    operator_pods = dep["spec"]["template"]["metadata"]["labels"]
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    http = [{"port": "http", "protocol": "TCP"}]  # render.serving.PORT_NAME: the serving container's port
    for policy in servers.values():
        spec = policy["spec"]
        assert spec["podSelector"] == {"matchLabels": {"driftline.dev/component": "server"}}
        assert spec["policyTypes"] == ["Ingress"]
        (operator_peer,) = spec["ingress"][0]["from"]
        assert operator_peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "driftline-system"}
        assert operator_peer["podSelector"]["matchLabels"].items() <= operator_pods.items()
        assert spec["ingress"][0]["ports"] == http
        assert spec["ingress"][1] == {"from": [{"podSelector": {}}, monitoring], "ports": http}
    (own,) = [p for p in by_kind(docs, "NetworkPolicy") if p["metadata"]["namespace"] == "driftline-system"]
    assert own["spec"]["podSelector"]["matchLabels"].items() <= operator_pods.items()
    assert own["spec"]["ingress"] == [{"from": [monitoring], "ports": [{"port": "metrics", "protocol": "TCP"}]}]
    # No scrapers named, or no metrics: nothing may reach the operator.
    quiet = documents(helm.template("networkPolicy.enabled=true", "networkPolicy.namespaces={ml}"))
    (own,) = [p for p in by_kind(quiet, "NetworkPolicy") if p["metadata"]["namespace"] == "driftline-system"]
    assert own["spec"]["ingress"] == []
    (ml,) = [p for p in by_kind(quiet, "NetworkPolicy") if p["metadata"]["namespace"] == "ml"]
    assert len(ml["spec"]["ingress"]) == 2  # a cluster-wide install names the namespaces itself


def test_pod_monitor_scrapes_every_model_server(helm: Helm) -> None:
    assert not by_kind(documents(helm.template()), "PodMonitor")  # off by default
    (pm,) = by_kind(documents(helm.template("podMonitor.enabled=true", "podMonitor.labels.release=prom")), "PodMonitor")
    assert pm["apiVersion"] == "monitoring.coreos.com/v1" and pm["metadata"]["labels"]["release"] == "prom"
    assert pm["spec"]["namespaceSelector"] == {"any": True}  # cluster-wide
    assert pm["spec"]["selector"] == {"matchLabels": {"driftline.dev/component": "server"}}
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert {k: endpoint[k] for k in ("port", "path", "interval")} == {
        "port": "http",
        "path": "/metrics",
        "interval": "15s",
    }
    # The labels the dashboards select on (tests/e2e/test_dashboard.py scrapes under the same ones).
    assert {(r["sourceLabels"][0], r["targetLabel"]) for r in endpoint["relabelings"]} == {
        ("__meta_kubernetes_pod_label_driftline_dev_inferenceservice", "inferenceservice"),
        ("__meta_kubernetes_pod_label_driftline_dev_track", "track"),
    }
    (pm,) = by_kind(documents(helm.template("podMonitor.enabled=true", "watchNamespaces={a,b}")), "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["a", "b"]}


def test_the_dashboards_reach_grafanas_sidecar_as_a_labelled_configmap(helm: Helm) -> None:
    assert not by_kind(documents(helm.template()), "ConfigMap")  # off by default
    values = ["grafana.dashboards.enabled=true", "grafana.dashboards.annotations.grafana_folder=Driftline"]
    (cm,) = by_kind(documents(helm.template(*values, "grafana.dashboards.namespace=monitoring")), "ConfigMap")
    assert cm["metadata"]["namespace"] == "monitoring" and cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Driftline"}
    shipped = sorted((CHART / "dashboards").glob("*.json"))
    assert sorted(cm["data"]) == [f"driftline-{p.name}" for p in shipped]
    for path in shipped:
        dashboard = json.loads(cm["data"][f"driftline-{path.name}"])
        assert dashboard == json.loads(path.read_text())  # verbatim
        # Every query goes to the data source the person picks, never to a fixed one.
        ds = {"type": "prometheus", "uid": "${datasource}"}
        assert all(
            p["datasource"] == ds and all(t["datasource"] == ds for t in p["targets"]) for p in dashboard["panels"]
        )
    (cm,) = by_kind(documents(helm.template(*values, "grafana.dashboards.label=dashboards")), "ConfigMap")
    assert cm["metadata"]["namespace"] == "driftline-system" and cm["metadata"]["labels"]["dashboards"] == "1"


def test_images_log_level_and_extra_settings(helm: Helm) -> None:
    digest = "sha256:" + "a" * 64
    docs = documents(
        helm.template(
            "image.repository=registry.example/driftline/operator",
            "image.tag=0.2.0",
            f"runtimeImage.digest={digest}",
            "runtimeImage.repository=registry.example/driftline/runtime",
            "allowedEstimatorPrefixes={sklearn.,xgboost.}",
            "verbose=true",
            "resources.requests.cpu=250m",
        )
    )
    c = container(docs)
    assert c["image"] == "registry.example/driftline/operator:0.2.0"
    env = env_of(c)
    assert env["DRIFTLINE_RUNTIME_IMAGE"] == f"registry.example/driftline/runtime:0.1.0@{digest}"
    assert env["DRIFTLINE_ALLOWED_ESTIMATOR_PREFIXES"] == "sklearn.,xgboost."
    assert "--verbose" in c["args"]
    assert c["resources"]["requests"]["cpu"] == "250m"


# -- the values: documented line by line, and in docs/operations.md ------------------------------------------------


def value_paths(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the values the chart owns; free-form maps and `resources` count as one value each."""
    out: list[str] = []
    for key, value in values.items():
        node = schema["properties"][key]
        if isinstance(value, dict) and "properties" in node and key != "resources":
            out += value_paths(value, node, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def test_every_value_is_commented_and_in_the_operations_doc() -> None:
    text = (CHART / "values.yaml").read_text()
    paths = value_paths(yaml.safe_load(text), json.loads((CHART / "values.schema.json").read_text()))
    assert len(paths) > 40
    commented: set[str] = set()
    stack: list[tuple[int, str]] = []
    previous = ""
    for line in text.splitlines():
        key = re.match(r"^( *)([A-Za-z]\w*):", line)
        if key:
            indent = len(key.group(1))
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, key.group(2))]
            if previous.lstrip().startswith("#"):
                commented.add(".".join(k for _, k in stack))
        if line.strip():
            previous = line
    assert [p for p in paths if p not in commented] == [], "values.yaml: a comment above each value"
    doc = (REPO / "docs" / "operations.md").read_text()
    assert [p for p in paths if f"`{p}`" not in doc] == [], "docs/operations.md: the values table"


# -- the schema -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["replicas=2"], "additional properties 'replicas' not allowed"),
        (["image.name=x"], "additional properties 'name' not allowed"),
        (["metrics.serviceMonitor.intervall=1m"], "additional properties 'intervall' not allowed"),
        (["replicaCount=two"], "/replicaCount"),
        (["verbose=yes"], "/verbose"),
        (["watchNamespaces=team-a"], "/watchNamespaces"),
        (["watchNamespaces={Team_A}"], "/watchNamespaces/0"),
        (["metrics.port=0"], "/metrics/port"),
        (["image.digest=latest"], "/image/digest"),
        (["allowedPrometheusUrls={prometheus:9090}"], "/allowedPrometheusUrls/0"),  # no scheme
        (["trustedSigningKeys={ssh-ed25519 AAAA}"], "/trustedSigningKeys/0"),  # a PEM public key, not an SSH one
        (["image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["resources.requests.cpu=lots"], "/resources/requests/cpu"),
        (["metrics.serviceMonitor.interval=often"], "/metrics/serviceMonitor/interval"),
        (["replicaCount=2"], "replicaCount > 1 requires peering.enabled"),
        (["metrics.enabled=false", "metrics.serviceMonitor.enabled=true"], "requires metrics.enabled"),
        (["metrics.enabled=false", "metrics.prometheusRule.enabled=true"], "requires metrics.enabled"),
        (["metrics.prometheusRule.severity=high"], "additional properties 'severity' not allowed"),
        (["networkPolicy.enabled=true"], "name the model servers' namespaces in networkPolicy.namespaces"),
        (["networkPolicy.namespaces={Team_A}"], "/networkPolicy/namespaces/0"),
        (["networkPolicy.clients=everyone"], "/networkPolicy/clients"),
        (["podMonitor.interval=often"], "/podMonitor/interval"),
    ],
)
def test_template_refuses_bad_values(helm: Helm, values: list[str], message: str) -> None:
    out = helm.run("template", "driftline", str(CHART), *sets(values), check=False)
    assert out.returncode != 0, f"{values} rendered"
    assert message in out.stderr, out.stderr


# -- on the real API server -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart_crds(cluster: Cluster) -> Cluster:
    """The chart's CRDs applied the way docs/operations.md says (server-side), before anything that needs them."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    cluster.wait_established(CHART / "crds")
    return cluster


@pytest.fixture(scope="module")
def dry_run_namespaces(chart_crds: Cluster) -> Iterator[list[str]]:
    """The release namespace and two watched ones, warning on anything the restricted Pod Security Standard refuses."""
    suffix = uuid.uuid4().hex[:5]
    names = [f"chart-sys-{suffix}", f"chart-a-{suffix}", f"chart-b-{suffix}"]
    for name in names:
        chart_crds.api.create(
            "/api/v1/namespaces",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": name,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/warn": "restricted",
                    },
                },
            },
        )
    yield names
    for name in names:
        chart_crds.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize(
    "mode",
    ["cluster-wide", "namespaced", "cluster-wide-peering", "namespaced-peering"],
)
def test_rendered_chart_passes_server_dry_run(
    cluster: Cluster, helm: Helm, dry_run_namespaces: list[str], mode: str
) -> None:
    system, a, b = dry_run_namespaces
    values = [f"watchNamespaces={{{a},{b}}}"] if mode.startswith("namespaced") else []
    if mode == "cluster-wide":  # the dashboards' ConfigMap too
        values += ["grafana.dashboards.enabled=true"]
    if mode == "namespaced":  # the network policies too: built-in kinds the API server checks
        values += ["networkPolicy.enabled=true", "networkPolicy.scrapers[0].podSelector.matchLabels.app=prometheus"]
    if mode.endswith("peering"):
        values += ["peering.enabled=true", "replicaCount=2"]
    manifest = helm.template(*values, namespace=system, release=f"dl-{mode}")
    out = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest, check=False)
    assert out.returncode == 0, out.stderr
    assert "Warning" not in out.stderr, out.stderr  # e.g. "would violate PodSecurity "restricted:latest""
    created = [line for line in out.stdout.splitlines() if line.endswith("(server dry run)")]
    assert len(created) == len(documents(manifest)), out.stdout
