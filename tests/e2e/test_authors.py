"""The operator checks a spec's author's own rights itself, as the chart's mutating admission policy recorded the
author: a user who may only create Driftline objects gets no pod, Secret or promotion through the operator even where
the validating policies are not installed (or not yet in force), and cannot name someone else as the author."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from driftline.devcluster import binaries, procs
from tests.conftest import Cluster
from tests.e2e.test_serving import dis, warnings_of
from tests.e2e.test_tenancy import CUSTOM_POD, JOBS, SYSTEM, binding, ready_reason, training
from tests.e2e.test_training import TJ, finished
from tests.integration.test_chart import CHART, Helm
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

AUTHOR = "driftline.dev/author"


@pytest.fixture(scope="module")
def author_policy(cluster: Cluster, crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Only the chart's MutatingAdmissionPolicy recording authors (not the validating ones), as helm renders it."""
    helm = Helm(binaries.bin_dir(), tmp_path_factory.mktemp("helm"))
    policy = helm.run(
        "template", "adm", str(CHART), "-n", SYSTEM, "--show-only", "templates/admission-author.yaml",
        "--set", "fullnameOverride=authors", "--set", "rbac.create=false",
    ).stdout  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=policy)
    cluster.wait_for("the policy in force", lambda: stamped(cluster))
    yield policy
    cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=policy)


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crds: None, author_policy: str) -> Iterator[OperatorProcess]:
    """The operator as the chart runs it with admission.enabled: checking recorded authors' rights."""
    port = procs.free_port()
    proc = OperatorProcess(
        cluster.kubeconfig,
        cluster.dir / "logs" / "operator-authors.log",
        "--metrics-port",
        str(port),
        "--metrics-address",
        "127.0.0.1",
        env={"DRIFTLINE_CHECK_AUTHORS": "true"},
    ).start()
    yield proc
    proc.stop()


def stamped(cluster: Cluster) -> bool:
    """Whether a TrainingJob created now gets an author recorded (a dry run: admission runs, nothing is stored)."""
    out = cluster.kubectl("create", "--dry-run=server", "-o", "json", "-n", "default", "-f", "-",
                          input=json.dumps(training()))  # fmt: skip
    return AUTHOR in (json.loads(out.stdout)["metadata"].get("annotations") or {})


def as_user(cluster: Cluster, ns: str, user: str, *args: str, obj: dict[str, Any] | None = None) -> str:
    out = cluster.kubectl(*args, "-n", ns, "--as", user, *(["-f", "-"] if obj else []),
                          input=json.dumps(obj) if obj else None, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return str(out.stdout)


def annotations(cluster: Cluster, ns: str, name: str) -> dict[str, str]:
    return dict(cluster.api.get(f"{TJ.format(ns=ns)}/{name}")["metadata"].get("annotations") or {})


def refused(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    st = cluster.wait_for(f"{name} finished", lambda: finished(cluster, ns, name), timeout=60)
    ready = ready_reason(st, "AuthorNotAllowed")
    assert st["phase"] == "Failed" and ready is not None, st
    assert cluster.api.get_or_none(f"{JOBS.format(ns=ns)}/{name}-train") is None
    return dict(ready)


def test_the_operator_acts_for_a_spec_only_as_far_as_its_recorded_author_may(
    cluster: Cluster, namespace: str, operator: OperatorProcess, author_policy: str
) -> None:
    # Once: a user allowed only to create Driftline objects got a pod of any image through spec.template, where the
    # validating policy was not installed: the operator acted with its own rights.
    ns = namespace
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    rule = {"apiGroups": ["driftline.dev"], "resources": ["trainingjobs", "inferenceservices"],
            "verbs": ["create", "get", "patch"]}  # fmt: skip
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "tj-author"},
            "rules": [rule]}  # fmt: skip
    cluster.api.create(f"{rbac}/roles", role)
    cluster.api.create(f"{rbac}/rolebindings", binding("mallory", "Role", "tj-author"))

    # The author is recorded by the cluster, whatever the request says.
    forged = training(template=CUSTOM_POD)
    forged["metadata"]["annotations"] = {AUTHOR: "system:admin", f"{AUTHOR}-groups": "system:masters"}
    as_user(cluster, ns, "mallory", "create", obj=forged)
    assert annotations(cluster, ns, "t")[AUTHOR] == "mallory"
    assert annotations(cluster, ns, "t")[f"{AUTHOR}-groups"] == "system:authenticated"
    ready = refused(cluster, ns, "t")
    assert ready["message"] == (
        f"spec.template: a custom pod template or image is creating pods; mallory may not create pods in namespace {ns}"
        " (checked by the operator as the recorded author)"
    )
    assert warnings_of(cluster, ns, "TrainingJob", "t") == ["AuthorNotAllowed"]
    # Renaming the author later, without touching the spec, puts the recorded one back.
    as_user(cluster, ns, "mallory", "annotate", "--overwrite", "trainingjob", "t", f"{AUTHOR}=system:admin")
    assert annotations(cluster, ns, "t")[AUTHOR] == "mallory"

    # A Secret the author may not read, through the built-in trainer.
    auth = {"uri": "https://data.example/d.csv", "authorization": {"secretKeyRef": {"name": "tok", "key": "a"}}}
    as_user(cluster, ns, "mallory", "create", obj={**training(dataset=auth), "metadata": {"name": "secret"}})
    assert refused(cluster, ns, "secret")["message"].startswith(
        f"spec.dataset.authorization: the training pod would read this Secret for them; mallory may not get Secret tok"
        f" in namespace {ns}"
    )

    # A ServiceAccount erin may not use, though she may create pods (edit).
    cluster.api.create(f"{rbac}/rolebindings", binding("erin", "ClusterRole", "edit"))
    cluster.api.create(f"{rbac}/rolebindings", binding("erin", "Role", "tj-author"))
    as_deployer = {"spec": {**CUSTOM_POD["spec"], "serviceAccountName": "deployer"}}
    as_user(cluster, ns, "erin", "create", obj={**training(template=as_deployer), "metadata": {"name": "sa"}})
    assert refused(cluster, ns, "sa")["message"] == (
        "spec.template.spec.serviceAccountName: the pods would run as this ServiceAccount, with its rights; erin may"
        f" not use ServiceAccount deployer in namespace {ns} (checked by the operator as the recorded author)"
    )

    # A serving image of mallory's own: no Deployment.
    isvc = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "s"},
            "spec": {"model": "iris", "image": "registry.example/serve:1"}}  # fmt: skip
    as_user(cluster, ns, "mallory", "create", obj=isvc)
    st = cluster.wait_for(
        "s refused", lambda: ready_reason(dis(cluster, ns, "s").get("status") or {}, "AuthorNotAllowed")
    )
    assert st["message"] == (
        f"spec.image: a custom serving image is creating pods; mallory may not create pods in namespace {ns}"
        " (checked by the operator as the recorded author)"
    )
    assert cluster.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments")["items"] == []

    # What the author may do, the operator does: the built-in trainer on public data for mallory, a custom pod for
    # the cluster's admin.
    as_user(cluster, ns, "mallory", "create", obj={**training(), "metadata": {"name": "plain"}})
    cluster.wait_for("mallory's plain Job", lambda: cluster.api.get_or_none(f"{JOBS.format(ns=ns)}/plain-train"))
    cluster.api.create(TJ.format(ns=ns), {**training(template=CUSTOM_POD), "metadata": {"name": "admins"}})
    cluster.wait_for("the admin's Job", lambda: cluster.api.get_or_none(f"{JOBS.format(ns=ns)}/admins-train"))

    # Without the policy no author is recorded: a spec that needs rights is refused, never taken as allowed.
    cluster.kubectl("delete", "-f", "-", input=author_policy)
    cluster.wait_for("the policy out of force", lambda: not stamped(cluster))
    cluster.api.create(TJ.format(ns=ns), {**training(template=CUSTOM_POD), "metadata": {"name": "unknown"}})
    assert AUTHOR not in annotations(cluster, ns, "unknown")
    message = refused(cluster, ns, "unknown")["message"]
    assert message.startswith("spec.template: no author is recorded") and "admission.enabled" in message
    # Once the policy is back, whoever next writes such an object becomes its author, even without a spec change:
    # the admin's annotation makes it theirs, and it runs.
    cluster.kubectl("apply", "-f", "-", input=author_policy)
    cluster.wait_for("the policy in force again", lambda: stamped(cluster))
    cluster.kubectl("annotate", "-n", ns, "trainingjob", "unknown", "note=checked")
    assert AUTHOR in annotations(cluster, ns, "unknown")
    cluster.wait_for(
        "the Job, once written again", lambda: cluster.api.get_or_none(f"{JOBS.format(ns=ns)}/unknown-train")
    )
