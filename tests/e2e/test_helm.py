"""The Helm chart on the real control plane: `helm install` runs the operator as a pod (through the pod runner) that
authenticates as the chart's ServiceAccount, with the chart's least-privilege RBAC only; it trains and serves a model;
`helm upgrade` rolls the operator, then runs two peered replicas (one works, one stands by); the chart's Role and
ClusterRole grant exactly what the operator used, verb by verb (the audit log), save a commented few; `helm uninstall`
removes everything but the CRDs.

A verb missing from the chart fails this module, fast and by name: every wait also reads the API server's audit log
and stops at the first request of the ServiceAccount that was answered 403 (kopf turns some of them into a mere
warning, the handlers into retries).

This module never uses the `operator` fixture: its operator is the chart's pod, in namespaced mode for a namespace of
its own. The other e2e modules' operators are module-scoped, so none of them runs while this module does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from driftline.api.constants import KINDS
from driftline.devcluster import binaries
from driftline.devcluster.podrunner import oci
from tests.conftest import Cluster, create_restricted_namespace
from tests.e2e.conftest import pvc
from tests.e2e.test_serving import DIS, MODEL, inferenceservice, ready_at
from tests.e2e.test_tenancy import get_metrics, service_account_token
from tests.e2e.test_training import TJ, finished, trainingjob, versions
from tests.integration.test_chart import CHART, Helm, sets

pytestmark = pytest.mark.e2e

RELEASE = "driftline"
OPERATOR_LABELS = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
# Both repositories are ones the pod runner runs (driftline/operator, driftline/runtime); the tags and the registry
# prefix are the chart's to choose, and the runtime image shows up verbatim in the Job and Deployment it makes.
OPERATOR_IMAGE = "driftline/operator:0.1.0-e2e"
RUNTIME_IMAGE = "registry.local:5000/driftline/runtime:0.1.0-e2e"


@pytest.fixture(scope="module")
def cluster(containers: Cluster, built_images: dict[str, Any]) -> Cluster:
    """The chart on a container-mode cluster: the operator runs in its own image as a real container, under the
    chart's ServiceAccount and securityContext, and so do the model pods it makes. The images `make images` built
    are tagged as a registry would serve them under the names the release asks for."""
    for built, wanted in (("driftline/operator", OPERATOR_IMAGE), ("driftline/runtime", RUNTIME_IMAGE)):
        ref = next(r for r in built_images if r.split(":")[0] == built)
        subprocess.run([*oci.ENGINE, "tag", ref, wanted], check=True, capture_output=True, timeout=60)
    return containers


CRDS = [k.crd_name for k in KINDS] + ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"]


@dataclass
class AuditLog:
    """The API server's audit log (every request at Metadata level), read on from where the last read stopped."""

    path: Path
    offset: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)

    def read(self, needle: str) -> list[dict[str, Any]]:
        """Every entry so far whose line mentions `needle` (one needle per AuditLog)."""
        with self.path.open("rb") as f:
            if f.seek(0, 2) < self.offset:  # rotated
                self.offset = 0
            f.seek(self.offset)
            data = f.read()
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        self.entries += [json.loads(line) for line in data[:complete].splitlines() if needle.encode() in line]
        return self.entries


@dataclass
class Release:
    helm: Helm
    system: str  # the release namespace: the operator's Deployment and ServiceAccount
    work: str  # the one namespace it serves
    audit: AuditLog

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.system}:{RELEASE}"

    def requests(self) -> list[dict[str, Any]]:
        """What the operator asked the API server, as its ServiceAccount."""
        return [e for e in self.audit.read(json.dumps(self.user)) if e["user"]["username"] == self.user]

    def assert_never_forbidden(self) -> None:
        forbidden = list(
            dict.fromkeys(
                f"{e['verb']} {e.get('objectRef')}: {e['responseStatus'].get('message', '')}"
                for e in self.requests()
                if e["responseStatus"]["code"] == 403
            )
        )
        assert forbidden == [], "the chart's RBAC refused the operator:\n" + "\n".join(forbidden)

    def watched(self, predicate: Callable[[], Any]) -> Callable[[], Any]:
        """`predicate`, failing at once when the operator was refused anything since the last look."""

        def check() -> Any:
            self.assert_never_forbidden()
            return predicate()

        return check


def operator_pods(cluster: Cluster, ns: str) -> list[dict[str, Any]]:
    items = cluster.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=OPERATOR_LABELS)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def pod_log(cluster: Cluster, pod: dict[str, Any]) -> Path:
    """Where the pod runner keeps a pod's container log (no `kubectl logs` on the local cluster)."""
    meta = pod["metadata"]
    return (
        cluster.dir / "runner" / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}" / "logs" / "operator.log"
    )


def pod_processes(pod: dict[str, Any]) -> list[int]:
    """The pod runner's processes for a pod's containers, found by the HOSTNAME it gives them (the pod's name)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"HOSTNAME={pod['metadata']['name']}".encode() in environ:
            found.append(int(proc.name))
    return found


def peering_state(cluster: Cluster, pod: dict[str, Any], since: int = 0) -> str:
    """kopf's last word on peering in the pod's log after byte `since`: "Resuming" (working), "Pausing", or ""."""
    with pod_log(cluster, pod).open("rb") as f:
        f.seek(since)
        text = f.read().decode(errors="replace")
    states = re.findall(r"(Pausing|Resuming) operations", text)
    return states[-1] if states else ""


def allowed(cluster: Cluster, release: Release, verb: str, resource: str, group: str = "", ns: str = "") -> bool:
    """A SubjectAccessReview for the chart's ServiceAccount (with the groups every service account has)."""
    attributes = {"verb": verb, "group": group, "namespace": ns}
    attributes["resource"], _, attributes["subresource"] = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": release.user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{release.system}", "system:authenticated"],
            "resourceAttributes": attributes,
        },
    }
    out = cluster.api.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(out["status"].get("allowed"))


def calls(entries: list[dict[str, Any]], ns: str) -> Counter[tuple[str, str, int]]:
    """(verb, resource[/subresource], response code) of the requests in one namespace."""
    out: Counter[tuple[str, str, int]] = Counter()
    for e in entries:
        ref = e.get("objectRef") or {}
        if ref.get("namespace") == ns:
            resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            out[(e["verb"], resource, e["responseStatus"]["code"])] += 1
    return out


Grant = tuple[str, str, str]
"""(apiGroup, resource[/subresource], verb); "" is the core group."""

# Grants the operator needs that this module's run does not exercise: each says where it is needed. Everything else
# the chart grants must show up in the audit log, and this list must not name anything that did.
UNEXERCISED: dict[Grant, str] = {
    ("driftline.dev", "trainingjobs", "create"): "only a drift-triggered retrain creates a TrainingJob (test_drift.py)",
    ("apps", "deployments", "delete"): "only a canary's end, promoted or aborted, deletes its Deployment "
    "(test_serving.py's canary test)",
    ("driftline.dev", "trainingjobs", "patch"): "kopf's progress annotations, written only while a handler retries",
    # Never a request, so never in an audit log: where the OwnerReferencesPermissionEnforcement admission plugin runs
    # (OpenShift), creating a child with blockOwnerDeletion is allowed only with update on the owner's finalizers.
    ("driftline.dev", "trainingjobs/finalizers", "update"): "OwnerReferencesPermissionEnforcement: the training Job",
    ("driftline.dev", "inferenceservices/finalizers", "update"): "OwnerReferencesPermissionEnforcement: the serving "
    "Deployments and Service",
    ("", "events", "list"): "only a serving pod stuck creating has its Events read (decide.pods)",
    ("", "configmaps", "create"): "only a retrain on live labels stores them (test_performance.py)",
}


def granted(rules: list[dict[str, Any]]) -> set[Grant]:
    """RBAC rules expanded into single grants (the chart uses no wildcards, resourceNames or nonResourceURLs)."""
    out = set()
    for rule in rules:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), rule
                    out.add((group, resource, verb))
    return out


def used(entries: list[dict[str, Any]]) -> Counter[Grant]:
    """The grants the requests needed, counted. A server-side apply that creates (patch answered 201) needs create
    too: the API server authorizes it as a second verb inside the same request."""
    out: Counter[Grant] = Counter()
    for e in entries:
        ref = e.get("objectRef") or {}
        if not ref.get("resource"):
            continue  # non-resource URLs (discovery): every authenticated user may read them (system:discovery)
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        out[(ref.get("apiGroup", ""), resource, e["verb"])] += 1
        if e["verb"] == "patch" and e["responseStatus"]["code"] == 201:
            out[(ref.get("apiGroup", ""), resource, "create")] += 1
    return out


def rbac_table(grants: set[Grant], uses: Counter[Grant]) -> str:
    """Markdown: per resource, the verbs granted, and each verb's requests in the audit log."""
    resources = sorted({(g, r) for g, r, _ in grants | set(uses)}, key=lambda gr: (gr[0] != "driftline.dev", gr))
    lines = ["| resource | granted | used (requests) |", "| --- | --- | --- |"]
    for group, resource in resources:
        verbs = sorted(v for g, r, v in grants if (g, r) == (group, resource))
        counts = [f"{v} {n}" for (g, r, v), n in sorted(uses.items()) if (g, r) == (group, resource)]
        unused = [v for v in verbs if (group, resource, v) not in uses]
        counts += [f"{v} 0 ({UNEXERCISED.get((group, resource, v), 'NOT NEEDED?')})" for v in unused]
        name = f"{resource}.{group}" if group else resource
        lines.append(f"| `{name}` | {', '.join(verbs) or '-'} | {'; '.join(counts)} |")
    return "\n".join(lines)


def train(cluster: Cluster, release: Release, name: str, suspended: bool = False) -> int:
    """The built-in scikit-learn trainer on sklearn://breast_cancer, to a Production version; `suspended`: created
    suspended, then resumed, so the operator patches its Job."""
    ns = release.work
    body = trainingjob(name, "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
    body["spec"]["suspend"] = suspended
    cluster.api.create(TJ.format(ns=ns), body)
    if suspended:
        jobs = f"/apis/batch/v1/namespaces/{ns}/jobs"
        cluster.wait_for(
            "its Job created suspended",
            release.watched(lambda: [j for j in cluster.api.get(jobs)["items"] if j["spec"].get("suspend")]),
        )
        cluster.api.patch(f"{TJ.format(ns=ns)}/{name}", {"spec": {"suspend": False}}, "merge")
    st = cluster.wait_for(
        f"TrainingJob {name} finished", release.watched(lambda: finished(cluster, ns, name)), timeout=240
    )
    assert st["phase"] == "Succeeded", st
    version = int(st["version"])
    cluster.wait_for(
        f"version {version} Production",
        release.watched(
            lambda: (versions(cluster, ns)[f"{MODEL}-v{version}"].get("status") or {}).get("stage") == "Production"
        ),
    )
    return version


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:5]
    rel = Release(
        Helm(binaries.bin_dir(), tmp_path_factory.mktemp("helm-home"), cluster.kubeconfig),
        system=f"helm-system-{suffix}",
        work=f"helm-work-{suffix}",
        audit=AuditLog(cluster.dir / "logs" / "audit.log"),
    )
    create_restricted_namespace(cluster, rel.system)
    create_restricted_namespace(cluster, rel.work)
    operator_repo, operator_tag = OPERATOR_IMAGE.rsplit(":", 1)
    runtime_repo, runtime_tag = RUNTIME_IMAGE.rsplit(":", 1)
    values = [f"image.repository={operator_repo}", f"image.tag={operator_tag}"]
    values += [f"runtimeImage.repository={runtime_repo}", f"runtimeImage.tag={runtime_tag}"]
    values += [f"watchNamespaces={{{rel.work}}}"]
    # NetworkPolicies on: the local cluster accepts them but does not enforce them (its pods share the host's network),
    # so this shows they are valid and break nothing, not that they let the right traffic through.
    values += ["networkPolicy.enabled=true", "networkPolicy.scrapers[0].podSelector.matchLabels.app=prometheus"]
    # Secure metrics (the default): the chart binds this ServiceAccount to its metrics-reader ClusterRole.
    reader = {"kind": "ServiceAccount", "name": "scraper", "namespace": rel.work}
    values += [f"metrics.readers[0].{k}={v}" for k, v in reader.items()]
    try:
        rel.helm.run("install", RELEASE, str(CHART), "-n", rel.system, *sets(values), "--wait", "--timeout=180s")
        # helm creates the chart's crds/ and goes on: a CRD is served only once Established (a create right after
        # was answered 503 "resource kind not found" in CI, 2026-12-07, with a larger InferenceService schema).
        cluster.wait_established(*CRDS)
        yield rel
    finally:
        rel.helm.run("uninstall", RELEASE, "-n", rel.system, "--wait", check=False)
        for ns in (rel.work, rel.system):
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_operator_pod_acts_as_the_charts_service_account_and_serves_a_model(cluster: Cluster, release: Release) -> None:
    ns = release.work
    (pod,) = operator_pods(cluster, release.system)
    assert ready(pod) and pod["spec"]["serviceAccountName"] == RELEASE
    assert pod["spec"]["containers"][0]["image"] == OPERATOR_IMAGE
    for crd in CRDS:  # helm installed the chart's crds/ (or found them there already)
        cluster.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")

    # Least privilege: what the operator needs, where it needs it, and nothing next to it.
    assert allowed(cluster, release, "create", "jobs", "batch", ns)
    assert allowed(cluster, release, "patch", "inferenceservices/status", "driftline.dev", ns)
    assert allowed(cluster, release, "watch", "customresourcedefinitions", "apiextensions.k8s.io")
    for verb, resource, group, where in [
        ("list", "trainingjobs", "driftline.dev", release.system),  # a namespace it does not serve
        ("list", "trainingjobs", "driftline.dev", ""),  # nor cluster-wide
        ("delete", "trainingjobs", "driftline.dev", ns),
        ("update", "modelversions", "driftline.dev", ns),
        ("get", "secrets", "", ns),
        ("list", "configmaps", "", ns),
        ("create", "pods", "", ns),
        ("delete", "jobs", "batch", ns),
        ("update", "deployments", "apps", ns),
        ("create", "rolebindings", "rbac.authorization.k8s.io", ns),
        ("list", "nodes", "", ""),
    ]:
        assert not allowed(cluster, release, verb, resource, group, where), (verb, resource, where)

    # Train, promote and serve, all through the operator pod.
    pvc(cluster, ns)
    assert train(cluster, release, "lr", suspended=True) == 1
    cluster.api.create(DIS.format(ns=ns), inferenceservice("bc", drift={"scrapeInterval": "2s"}))
    cluster.wait_for("bc Ready on v1", release.watched(ready_at(cluster, ns, "bc", 1)), timeout=120)

    # Behind the chart's NetworkPolicies the operator pod still reads the serving pod's drift (no traffic yet: too few
    # samples to judge, but read, not an Error).
    policies = {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for n in (ns, release.system)
        for p in cluster.api.get(f"/apis/networking.k8s.io/v1/namespaces/{n}/networkpolicies")["items"]
    }
    assert policies == {(ns, f"{RELEASE}-model-servers"), (release.system, RELEASE)}, policies

    last: dict[str, Any] = {}

    def drift_read() -> dict[str, Any] | None:
        last.update(((cluster.api.get(f"{DIS.format(ns=ns)}/bc").get("status") or {}).get("drift")) or {})
        return last if last.get("assessment") == "InsufficientSamples" else None

    try:  # a reading before the pod was ready said so (an Error); the next ones read the pod
        cluster.wait_for("a drift reading of bc's pod", release.watched(drift_read), timeout=60)
    except Exception as e:
        raise AssertionError(f"no drift read from bc's pod: {last.get('assessment')}: {last.get('message')}") from e

    # The runtime image the chart set is the one stamped into the Job and the Deployment.
    (job,) = cluster.api.get(f"/apis/batch/v1/namespaces/{ns}/jobs")["items"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == RUNTIME_IMAGE
    dep = cluster.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/bc-stable")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == RUNTIME_IMAGE

    # The audit log: the operator's writes came from the chart's ServiceAccount, and from nobody else.
    mine = calls(release.requests(), ns)
    for write in [
        ("create", "jobs", 201),
        ("patch", "jobs", 200),  # resumed
        ("create", "modelversions", 201),
        ("patch", "deployments", 201),  # server-side apply, creating
        ("patch", "services", 201),
        ("patch", "trainingjobs/status", 200),
        ("patch", "modelversions/status", 200),
        ("patch", "inferenceservices/status", 200),
        ("create", "events", 201),
    ]:
        assert mine[write], (write, mine)
    writers = {
        e["user"]["username"]
        for e in AuditLog(release.audit.path).read(ns)
        if (e.get("objectRef") or {}).get("namespace") == ns
        and (e["verb"], e["objectRef"].get("resource")) in (("create", "jobs"), ("create", "modelversions"))
    }
    assert writers == {release.user}  # not admin: no other operator ran here
    release.assert_never_forbidden()


METRICS_PORT = 8081  # the chart's metrics.port


def test_only_the_scraper_the_chart_binds_reads_the_operators_metrics(cluster: Cluster, release: Release) -> None:
    (pod,) = [p for p in operator_pods(cluster, release.system) if ready(p)]
    ip = pod["status"]["podIP"]
    tokens = {name: service_account_token(cluster, release.work, name) for name in ("scraper", "stranger")}
    status, _, body = get_metrics(METRICS_PORT, host=ip)
    assert status == 401 and "a bearer token is required" in body
    status, _, body = get_metrics(METRICS_PORT, tokens["stranger"], host=ip)
    assert status == 403 and f"system:serviceaccount:{release.work}:stranger may not get /metrics" in body
    status, _, body = get_metrics(METRICS_PORT, tokens["scraper"], host=ip)
    assert status == 200 and "driftline_operator_reconciles_total" in body
    release.assert_never_forbidden()


def test_upgrade_rolls_the_operator_then_two_peered_replicas_hand_over(cluster: Cluster, release: Release) -> None:
    system, ns = release.system, release.work
    (old,) = operator_pods(cluster, system)
    deployment = f"/apis/apps/v1/namespaces/{system}/deployments/{RELEASE}"
    generation = cluster.api.get(deployment)["metadata"]["generation"]

    changed = sets(["resources.requests.cpu=50m", "verbose=true"])
    release.helm.run(
        "upgrade", RELEASE, str(CHART), "-n", system, "--reuse-values", *changed, "--wait", "--timeout=180s"
    )
    assert cluster.api.get(deployment)["metadata"]["generation"] == generation + 1
    (new,) = cluster.wait_for(
        "the upgraded operator pod alone and Ready",
        lambda: (lambda pods: pods if len(pods) == 1 and ready(pods[0]) else None)(operator_pods(cluster, system)),
        timeout=120,
    )
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    container = new["spec"]["containers"][0]
    assert "--verbose" in container["args"] and container["resources"]["requests"]["cpu"] == "50m"

    # The new pod carries on where the old one stopped: a scale-up of the service goes through it.
    cluster.api.patch(f"{DIS.format(ns=ns)}/bc", {"spec": {"replicas": 2}}, "merge")
    cluster.wait_for("bc on two v1 pods", release.watched(ready_at(cluster, ns, "bc", 1, replicas=2)), timeout=120)

    # HA: two peered replicas, each with its own priority; the lower one stands by.
    peered = sets(["peering.enabled=true", "replicaCount=2"])
    release.helm.run(
        "upgrade", RELEASE, str(CHART), "-n", system, "--reuse-values", *peered, "--wait", "--timeout=180s"
    )
    peering = f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings/{RELEASE}"
    peers = cluster.wait_for(
        "two peers keeping alive",
        release.watched(
            lambda: (lambda st: st if len(st) == 2 else None)(cluster.api.get(peering).get("status") or {})
        ),
        timeout=120,
    )
    pods = {p["metadata"]["name"]: p for p in operator_pods(cluster, system)}
    assert set(peers) == set(pods) and len({peer["priority"] for peer in peers.values()}) == 2
    standby, active = sorted(peers, key=lambda name: peers[name]["priority"])
    cluster.wait_for(
        f"{active} working and {standby} standing by",
        lambda: (
            peering_state(cluster, pods[active]) == "Resuming" and peering_state(cluster, pods[standby]) != "Resuming"
        ),
    )

    # The working replica dies (SIGKILL, no goodbye in the peering object): a replica takes over once the dead one's
    # keep-alive expires — the standby, or the dead container restarted — and the work goes on through it.
    offsets = {name: pod_log(cluster, pod).stat().st_size for name, pod in pods.items()}
    killed_at = time.monotonic()
    (pid,) = pod_processes(pods[active])
    os.kill(pid, signal.SIGKILL)  # as an OOM kill would

    def resumed_since_the_kill() -> list[str]:
        return [name for name, pod in pods.items() if peering_state(cluster, pod, since=offsets[name]) == "Resuming"]

    heirs = cluster.wait_for("a replica working again", resumed_since_the_kill, timeout=180, interval=1)
    handover = time.monotonic() - killed_at
    print(f"\nHA handover after SIGKILL of the working replica: {handover:.0f}s (to {heirs})")
    assert len(heirs) == 1, heirs
    cluster.api.patch(f"{DIS.format(ns=ns)}/bc", {"spec": {"replicas": 1}}, "merge")
    cluster.wait_for("bc back on one pod", release.watched(ready_at(cluster, ns, "bc", 1, replicas=1)), timeout=120)
    release.assert_never_forbidden()


def test_the_charts_rbac_is_exactly_what_the_operator_used(cluster: Cluster, release: Release) -> None:
    """After the module's work (train, serve, scale, upgrade, peer, hand over), the grants of the chart's Role and
    ClusterRole (as installed, with peering on) against the requests its ServiceAccount made (the audit log)."""
    system, ns = release.system, release.work
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    role = cluster.api.get(f"{rbac}/namespaces/{ns}/roles/{RELEASE}")
    cluster_role = cluster.api.get(f"{rbac}/clusterroles/{system}-{RELEASE}")
    metrics_auth = cluster.api.get(f"{rbac}/clusterroles/{system}-{RELEASE}-metrics-auth")
    subject = {"kind": "ServiceAccount", "name": RELEASE, "namespace": system}
    auth = f"{system}-{RELEASE}-metrics-auth"
    for binding, ref in [
        (cluster.api.get(f"{rbac}/namespaces/{ns}/rolebindings/{RELEASE}"), ("Role", RELEASE)),
        (cluster.api.get(f"{rbac}/clusterrolebindings/{system}-{RELEASE}"), ("ClusterRole", f"{system}-{RELEASE}")),
        (cluster.api.get(f"{rbac}/clusterrolebindings/{auth}"), ("ClusterRole", auth)),
    ]:
        assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) == ref
        assert [{k: v for k, v in subj.items() if k in subject} for subj in binding["subjects"]] == [subject]
    grants = granted(role["rules"]) | granted(cluster_role["rules"]) | granted(metrics_auth["rules"])
    requests = release.requests()
    release.assert_never_forbidden()
    uses = used(requests)
    table = rbac_table(grants, uses)
    print(f"\nthe chart's RBAC against {len(requests)} requests of its ServiceAccount:\n{table}")

    # Where: every namespaced request in the one namespace served (cluster-scoped: only kopf's discovery).
    assert {(e.get("objectRef") or {}).get("namespace") for e in requests} <= {ns, None}
    # (1) Everything used is granted by the chart (not by some default role).
    assert set(uses) - grants == set(), table
    # (2) Everything granted is used, save the commented few, which this run indeed did not use.
    assert grants - set(uses) == set(UNEXERCISED), table


def test_uninstall_leaves_the_crds(cluster: Cluster, release: Release) -> None:
    system, ns = release.system, release.work
    deployment = f"/apis/apps/v1/namespaces/{system}/deployments/{RELEASE}"
    peering = f"/apis/kopf.dev/v1/namespaces/{ns}/kopfpeerings/{RELEASE}"
    release.helm.run("uninstall", RELEASE, "-n", system, "--wait", "--timeout=120s")
    cluster.wait_for("the operator pod gone", lambda: not operator_pods(cluster, system), timeout=60)
    gone = [
        f"/api/v1/namespaces/{system}/serviceaccounts/{RELEASE}",
        f"/api/v1/namespaces/{system}/services/{RELEASE}-metrics",
        deployment,
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/{RELEASE}",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/{RELEASE}",
        f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{system}-{RELEASE}",
        f"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{system}-{RELEASE}",
        peering,
    ]
    assert [p for p in gone if cluster.api.get_or_none(p) is not None] == []
    assert release.helm.run("list", "-n", system, "-q").stdout.strip() == ""
    for crd in CRDS:  # Helm never deletes what crds/ installed
        cluster.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
    assert cluster.api.get_or_none(f"{DIS.format(ns=ns)}/bc") is not None  # nor the users' objects
