"""Tenancy and trust: through Driftline a user gets nothing they could not do themselves. Each attack is a test that
a user would run: it succeeded once, and now fails with a refusal that says why."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from driftline.devcluster import binaries, procs
from driftline.render.serving import deployment_name
from tests.conftest import Cluster
from tests.e2e.conftest import pvc
from tests.e2e.test_serving import DIS, dis, warnings_of
from tests.e2e.test_training import MV, TJ, finished, tj_status
from tests.integration.test_chart import CHART, Helm
from tests.operator_proc import OperatorProcess
from tests.pods import python_container

pytestmark = pytest.mark.e2e

JOBS = "/apis/batch/v1/namespaces/{ns}/jobs"
DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"
SLEEPER = "import time; time.sleep(600)"


def ready_reason(status: dict[str, Any], reason: str) -> dict[str, Any] | None:
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {})
    return ready if ready.get("reason") == reason and ready.get("status") == "False" else None


def someone_elses_job(ns: str, name: str) -> dict[str, Any]:
    """bob's own Job: running, not suspended, no TTL."""
    pod = {"restartPolicy": "Never", "containers": [python_container("work", SLEEPER)]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"backoffLimit": 0, "template": {"spec": pod}},
    }


def test_a_trainingjob_never_adopts_suspends_or_deletes_someone_elses_job_with_its_name(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    # Once: a TrainingJob named to collide (`<name>-train`) took the Job over, `suspend: true` suspended bob's run and
    # `ttlSecondsAfterFinished: 0` deleted it.
    cluster.api.create(JOBS.format(ns=namespace), someone_elses_job(namespace, "victim-train"))
    tj = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "victim"},
        "spec": {
            "model": "collide",
            "dataset": {"uri": "sklearn://breast_cancer"},
            "estimator": "sklearn.linear_model.LogisticRegression",
            "output": {"storageUri": "pvc://models/registry"},
            "suspend": True,
            "ttlSecondsAfterFinished": 0,
        },
    }
    created = cluster.api.create(TJ.format(ns=namespace), tj)
    ready = cluster.wait_for(
        "victim reports the conflict",
        lambda: ready_reason(tj_status(cluster, namespace, "victim"), "ChildConflict"),
        timeout=60,
    )
    assert "Job named victim-train" in ready["message"] and "not this TrainingJob's" in ready["message"]
    assert warnings_of(cluster, namespace, "TrainingJob", "victim") == ["ChildConflict"]
    job = cluster.api.get(f"{JOBS.format(ns=namespace)}/victim-train")
    assert not job["spec"].get("suspend") and job["spec"].get("ttlSecondsAfterFinished") is None
    assert not job["metadata"].get("ownerReferences")
    assert tj_status(cluster, namespace, "victim").get("phase") == "Failed"
    # bob's Job gone, the TrainingJob makes its own, with nothing else changed (it looks again by itself).
    cluster.api.delete(f"{JOBS.format(ns=namespace)}/victim-train", {"propagationPolicy": "Background"})

    def own_job() -> dict[str, Any] | None:
        found = cluster.api.get(JOBS.format(ns=namespace))["items"]
        mine = [j for j in found if j["metadata"]["name"] == "victim-train" and j["metadata"].get("ownerReferences")]
        return mine[0] if mine else None

    job = cluster.wait_for("victim's own Job", own_job, timeout=90)
    assert job["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert job["spec"]["suspend"] is True
    assert cluster.wait_for(
        "victim no longer in conflict",
        lambda: (st := tj_status(cluster, namespace, "victim")).get("phase") not in (None, "Failed") and st,
        timeout=30,
    )


def test_an_inferenceservice_never_takes_over_someone_elses_deployment_with_its_name(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    name = "shop"
    taken = deployment_name({"metadata": {"name": name, "uid": "-"}})  # short names carry no uid
    labels = {"app": "bobs-shop"}
    pod = {"metadata": {"labels": labels}, "spec": {"containers": [python_container("web", SLEEPER)]}}
    theirs = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": taken},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": pod},
    }
    before = cluster.api.create(DEPLOYMENTS.format(ns=namespace), theirs)
    isvc = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": name}}
    cluster.api.create(DIS.format(ns=namespace), {**isvc, "spec": {"model": "breast-cancer"}})
    ready = cluster.wait_for(
        "shop reports the conflict",
        lambda: ready_reason(dis(cluster, namespace, name).get("status") or {}, "ChildConflict"),
        timeout=60,
    )
    assert f"Deployment named {taken}" in ready["message"]
    after = cluster.api.get(f"{DEPLOYMENTS.format(ns=namespace)}/{taken}")
    assert after["spec"]["template"] == before["spec"]["template"] and not after["metadata"].get("ownerReferences")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    # Once theirs is gone, shop carries on by itself (nothing it watches says so: it looks again now and then).
    cluster.api.delete(f"{DEPLOYMENTS.format(ns=namespace)}/{taken}")

    def past() -> dict[str, Any] | None:
        st = dis(cluster, namespace, name).get("status") or {}
        return st if st and not ready_reason(st, "ChildConflict") else None

    st = cluster.wait_for("shop past the conflict", past, timeout=90)
    assert ready_reason(st, "NoProductionVersion") is not None, st  # what it waits for now: a model to serve


ROLE_CHECKS = [
    # (user, bound to, verb, resource, allowed)
    ("vera", "view", "list", "inferenceservices", True),
    ("vera", "view", "get", "modelversions", True),
    ("vera", "view", "create", "trainingjobs", False),
    ("alice", "edit", "create", "trainingjobs", True),
    ("alice", "edit", "delete", "inferenceservices", True),
    ("alice", "edit", "create", "modelversions", False),  # registering a version by hand
    ("alice", "edit", "patch", "modelversions", False),  # the promote annotation
    ("alice", "edit", "patch", "modelversions/status", False),  # promoting by status
    ("ada", "admin", "create", "modelversions", True),
    ("ada", "admin", "patch", "modelversions/status", True),
    # Driftline's own verbs, checked by the admission policies: what is served is an admin's to decide.
    ("alice", "edit", "promote", "modelversions", False),
    ("alice", "edit", "register", "modelversions", False),
    ("ada", "admin", "promote", "modelversions", True),
    ("ada", "admin", "register", "modelversions", True),
]


def can_i(cluster: Cluster, user: str, verb: str, resource: str, ns: str) -> bool:
    """`kubectl auth can-i`, as the cluster's admin impersonating `user`."""
    kind, _, sub = resource.partition("/")
    args = ["auth", "can-i", verb, f"{kind}.driftline.dev", "-n", ns, "--as", user]
    out = cluster.kubectl(*args, *(["--subresource", sub] if sub else []), check=False)
    return out.stdout.strip() == "yes"


def test_the_default_view_edit_and_admin_roles_grant_driftline_and_only_admin_decides_what_is_served(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    helm = Helm(binaries.bin_dir(), tmp_path)
    # A name of its own: the chart installed by test_helm.py may share this cluster.
    roles = helm.run(
        "template", "roles", str(CHART), "--show-only", "templates/user-roles.yaml", "--set", "fullnameOverride=tenancy"
    ).stdout
    cluster.kubectl("apply", "-f", "-", input=roles)
    try:
        for user, role in {(u, r) for u, r, *_ in ROLE_CHECKS}:
            rolebindings = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"
            cluster.api.create(rolebindings, binding(user, "ClusterRole", role))

        wrong: list[tuple[str, str, str, str, bool]] = []

        def answers() -> bool:
            got = [(u, r, v, res, can_i(cluster, u, v, res, namespace)) for u, r, v, res, _ in ROLE_CHECKS]
            wrong[:] = [g for g in got if g not in ROLE_CHECKS]
            return not wrong

        # Kubernetes' aggregation controller folds the chart's roles into view, edit and admin a moment later.
        try:
            cluster.wait_for("the roles aggregated", answers, timeout=30, interval=1.0)
        except AssertionError:
            raise AssertionError(f"kubectl auth can-i answered otherwise: {wrong}") from None
        # And nowhere else: a namespace where alice is bound to nothing.
        assert not can_i(cluster, "alice", "create", "trainingjobs", "default")
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=roles)


CLAIMS_ANOTHER_ARTIFACT = """
import json, os
summary = {"ok": True, "metrics": {"accuracy": 0.999},
           "artifact": {"storageUri": "pvc://models/registry/credit/good-run-1a2b3c4d", "sha256": "0" * 64}}
open(os.environ["DRIFTLINE_TERMINATION_LOG"], "w").write(json.dumps(summary))
"""


def test_a_trainer_cannot_register_an_artifact_its_run_did_not_write(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    # Once: a custom trainer reported another model's artifact (or one it planted elsewhere) with accuracy 0.999, and
    # the operator registered it as is. A version's artifact is where the operator told its run to write.
    pvc(cluster, namespace)
    tj = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "liar"},
        "spec": {
            "model": "iris",
            "dataset": {"uri": "sklearn://iris"},
            "output": {"storageUri": "pvc://models/registry"},
            "promotion": {"auto": True},
            "template": {"spec": {"containers": [python_container("trainer", CLAIMS_ANOTHER_ARTIFACT)]}},
        },
    }
    created = cluster.api.create(TJ.format(ns=namespace), tj)
    st = cluster.wait_for("liar finished", lambda: finished(cluster, namespace, "liar"), timeout=180)
    assert st["phase"] == "Failed", st
    ready = ready_reason(st, "ArtifactOutsideRun")
    assert ready is not None, st
    run = f"pvc://models/registry/iris/liar-{created['metadata']['uid'][:8]}"
    assert "good-run-1a2b3c4d" in ready["message"] and f"this run's artifact is {run}" in ready["message"]
    assert cluster.api.get(MV.format(ns=namespace))["items"] == []
    assert warnings_of(cluster, namespace, "TrainingJob", "liar") == ["ArtifactOutsideRun"]


@pytest.mark.parametrize("enforce", ["restricted", "privileged"])
def test_the_operator_refuses_a_pod_that_reaches_the_node_even_without_the_admission_policy(
    cluster: Cluster, namespace: str, operator: OperatorProcess, enforce: str
) -> None:
    # Once: in a namespace without Pod Security enforcement, a TrainingJob's template got a pod with hostPID and a
    # hostPath of /. The admission policy refuses it at apply time; where it is not installed (as here), the operator
    # refuses it before it creates the Job, and the TrainingJob says which fields and which Helm value: the same
    # whether the namespace enforces the restricted Pod Security Standard or none (privileged).
    labels = {"pod-security.kubernetes.io/enforce": enforce}
    cluster.api.patch(f"/api/v1/namespaces/{namespace}", {"metadata": {"labels": labels}}, "merge")
    pod = {
        "hostPID": True,
        "containers": [python_container("trainer", SLEEPER)],
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
    }
    tj = training(template={"spec": pod})
    cluster.api.create(TJ.format(ns=namespace), tj)
    st = cluster.wait_for("refused", lambda: finished(cluster, namespace, "t"), timeout=60)
    ready = ready_reason(st, "PodNotAllowed")
    assert st["phase"] == "Failed" and ready is not None, st
    assert ready["message"] == (
        "spec.template.spec.hostPID: host namespaces are not allowed (Helm value customPods.allowHostNamespaces); "
        "spec.template.spec.volumes[0].hostPath: hostPath volumes are not allowed (Helm value customPods.allowHostPath)"
    )
    assert cluster.api.get(JOBS.format(ns=namespace))["items"] == []
    assert warnings_of(cluster, namespace, "TrainingJob", "t") == ["PodNotAllowed"]
    # Fixed, the same TrainingJob runs; its pod gets no API token it did not ask for.
    fixed = {"hostPID": None, "volumes": None}  # a merge patch: null removes
    cluster.api.patch(f"{TJ.format(ns=namespace)}/t", {"spec": {"template": {"spec": fixed}}}, "merge")
    job = cluster.wait_for("the Job", lambda: cluster.api.get_or_none(f"{JOBS.format(ns=namespace)}/t-train"))
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def author_role(namespace: str) -> dict[str, Any]:
    """May create Driftline's training and serving objects, and nothing else: no pods, no Secrets."""
    rule = {"apiGroups": ["driftline.dev"], "resources": ["trainingjobs", "inferenceservices"], "verbs": ["create"]}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "driftline-author", "namespace": namespace},
        "rules": [rule],
    }


def binding(user: str, kind: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{user}-{role}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


def training(**spec: Any) -> dict[str, Any]:
    base = {
        "model": "iris",
        "dataset": {"uri": "sklearn://iris"},
        "estimator": "sklearn.linear_model.LogisticRegression",
        "output": {"storageUri": "s3://models/registry"},
    }
    if "template" in spec:  # a custom pod, not the built-in trainer
        del base["estimator"]
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "t"},
        "spec": base | spec,
    }


CUSTOM_POD = {"spec": {"containers": [{"name": "trainer", "image": "registry.example/anything:1"}]}}
S3_KEYS = {"s3": {"credentials": {k: {"name": "prod-keys", "key": k} for k in ("accessKeyId", "secretAccessKey")}}}


def _container(**security: Any) -> dict[str, Any]:
    return {"name": "trainer", "image": "registry.example/anything:1", "securityContext": security}


NODE_ACCESS: list[tuple[str, dict[str, Any], str]] = [
    ("hostNetwork", {"hostNetwork": True, "containers": [_container()]}, ".hostNetwork, hostPID, hostIPC"),
    ("hostPID", {"hostPID": True, "containers": [_container()]}, ".hostNetwork, hostPID, hostIPC"),
    (
        "hostPath",
        {"containers": [_container()], "volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
        ".volumes: hostPath",
    ),
    ("privileged", {"containers": [_container(privileged=True)]}, ": privileged containers"),
    (
        "capabilities",
        {"containers": [_container()], "initContainers": [_container(capabilities={"add": ["SYS_ADMIN"]})]},
        ": added capabilities",
    ),
]
"""What a template could ask of the node: (what, pod spec, what the refusal says after spec.template.spec)."""


def submit(cluster: Cluster, ns: str, obj: dict[str, Any], user: str) -> str:
    """`kubectl create --dry-run=server` as `user`: admission runs, nothing is stored. "" when admitted."""
    args = ("create", "--dry-run=server", "-n", ns, "--as", user, "-f", "-")
    out = cluster.kubectl(*args, input=json.dumps(obj), check=False)
    return "" if out.returncode == 0 else out.stderr


SYSTEM = "driftline-system"
OPERATOR_SA = f"system:serviceaccount:{SYSTEM}:tenancy-adm"


@pytest.fixture
def policies(cluster: Cluster, crds: None, tmp_path: Path) -> Iterator[None]:
    """The chart's admission policies, as `helm install` would create them (the operator itself is not needed)."""
    helm = Helm(binaries.bin_dir(), tmp_path)
    policy = helm.run(
        "template", "adm", str(CHART), "-n", SYSTEM, "--show-only", "templates/admission-policy.yaml",
        "--show-only", "templates/admission-verbs.yaml",
        "--set", "fullnameOverride=tenancy-adm", "--set", "admission.allowedImagePrefixes={registry.example/}",
    ).stdout  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=policy)
    try:
        yield
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", input=policy)


def test_a_driftline_object_makes_the_operator_do_only_what_its_author_may_do(
    cluster: Cluster, policies: None, namespace: str
) -> None:
    # Once: a user allowed only to create Driftline objects ran any image through spec.template or spec.image, and
    # had the pods read any Secret of the namespace through a dataset or S3 credentials reference.
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    cluster.api.create(f"{rbac}/roles", author_role(namespace))
    cluster.api.create(f"{rbac}/rolebindings", binding("mallory", "Role", "driftline-author"))
    cluster.api.create(f"{rbac}/rolebindings", binding("alice", "ClusterRole", "edit"))  # may create pods, read Secrets
    cluster.api.create(f"{rbac}/rolebindings", binding("alice", "Role", "driftline-author"))
    cluster.api.create(f"{rbac}/rolebindings", {**binding("op", "Role", "driftline-author"), "subjects": [
        {"kind": "ServiceAccount", "name": "tenancy-adm", "namespace": SYSTEM}]})  # fmt: skip
    # The policy is in force once the API server has loaded it.
    refused = cluster.wait_for(
        "the policy in force", lambda: submit(cluster, namespace, training(template=CUSTOM_POD), "mallory")
    )
    assert "spec.template or spec.image" in refused and "mallory may not create pods in namespace" in refused
    said = submit(cluster, namespace, training(image="registry.example/anything:1"), "mallory")
    assert "mallory may not create pods" in said
    said = submit(cluster, namespace, training(storage=S3_KEYS), "mallory")
    assert "spec.storage.s3.credentials: mallory may not get Secret prod-keys in namespace" in said
    auth = {"uri": "https://data.example/d.csv", "authorization": {"secretKeyRef": {"name": "tok", "key": "a"}}}
    said = submit(cluster, namespace, training(dataset=auth), "mallory")
    assert "spec.dataset.authorization: mallory may not get Secret tok" in said
    signer = {"secretKeyRef": {"name": "release-key", "key": "private.pem"}}
    said = submit(cluster, namespace, training(signing=signer), "mallory")
    assert "spec.signing.secretKeyRef: mallory may not get Secret release-key" in said and "sign as its key" in said
    isvc = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "s"}}
    retrain = {"retrain": {"template": training(template=CUSTOM_POD)["spec"]}}
    said = submit(cluster, namespace, {**isvc, "spec": {"model": "iris", **retrain}}, "mallory")
    assert "spec.retrain.template.template" in said and "mallory may not create pods" in said
    said = submit(cluster, namespace, {**isvc, "spec": {"model": "iris", "image": "registry.example/srv:1"}}, "mallory")
    assert "mallory may not create pods" in said
    signed_retrain = {"retrain": {"template": training(signing=signer)["spec"]}}
    said = submit(cluster, namespace, {**isvc, "spec": {"model": "iris", **signed_retrain}}, "mallory")
    assert "spec.retrain.template.signing.secretKeyRef: mallory may not get Secret release-key" in said
    # What mallory may do directly stays open to her; alice, who may create pods and read Secrets, may do it all.
    assert submit(cluster, namespace, training(), "mallory") == ""
    assert submit(cluster, namespace, {**isvc, "spec": {"model": "iris"}}, "mallory") == ""
    for spec in ({"template": CUSTOM_POD}, {"storage": S3_KEYS}, {"dataset": auth}, {"signing": signer}):
        assert submit(cluster, namespace, training(**spec), "alice") == "", spec
    assert submit(cluster, namespace, {**isvc, "spec": {"model": "iris", **retrain}}, "alice") == ""
    # A ServiceAccount named in a template is using it: alice may create pods but not use that account until she is
    # granted use of it (as the chart's admin role grants it for every account of the namespace).
    as_deployer = {"spec": {**CUSTOM_POD["spec"], "serviceAccountName": "deployer"}}
    said = submit(cluster, namespace, training(template=as_deployer), "alice")
    assert (
        "spec.template.spec.serviceAccountName: the pods would run as this ServiceAccount, with its rights; alice may "
        f"not use ServiceAccount deployer in namespace {namespace}"
    ) in said
    use = {"apiGroups": [""], "resources": ["serviceaccounts"], "resourceNames": ["deployer"], "verbs": ["use"]}
    cluster.api.create(f"{rbac}/roles", {**author_role(namespace), "metadata": {"name": "deployer"}, "rules": [use]})
    cluster.api.create(f"{rbac}/rolebindings", binding("alice", "Role", "deployer"))
    assert cluster.wait_for("alice may use deployer", lambda: submit(
        cluster, namespace, training(template=as_deployer), "alice") == "", timeout=30)  # fmt: skip
    # Images from registries the cluster does not allow are refused to everyone.
    elsewhere = {"spec": {"containers": [{"name": "trainer", "image": "evil.example/miner:1"}]}}
    said = submit(cluster, namespace, training(template=elsewhere), "alice")
    assert "image evil.example/miner:1 is not under a registry prefix the cluster allows (registry.example/" in said
    evil_retrain = {"retrain": {"template": training(image="evil.example/trainer:1")["spec"]}}
    said = submit(cluster, namespace, {**isvc, "spec": {"model": "iris", **evil_retrain}}, "alice")
    assert "image evil.example/trainer:1 is not under" in said
    # What a custom pod asks of the node is refused to everyone, alice included, unless the chart allows it.
    for field, pod, said_part in NODE_ACCESS:
        said = submit(cluster, namespace, training(template={"spec": pod}), "alice")
        assert f"spec.template.spec{said_part}" in said and "not allowed (Helm value customPods." in said, field
    said = submit(cluster, namespace, {**isvc, "spec": {"model": "iris", "retrain": {"template": training(
        template={"spec": NODE_ACCESS[0][1]})["spec"]}}}, "alice")  # fmt: skip
    assert "spec.retrain.template.template.spec.hostNetwork, hostPID, hostIPC: host namespaces" in said
    # The operator creates the retrain TrainingJobs its authors were checked for.
    assert submit(cluster, namespace, training(template=CUSTOM_POD), OPERATOR_SA) == ""


def as_user(cluster: Cluster, ns: str, user: str, *args: str) -> str:
    """A kubectl write as `user`, dry run on the server (admission runs, nothing is stored). "" when admitted."""
    out = cluster.kubectl(*args, "--dry-run=server", "-n", ns, "--as", user, check=False)
    return "" if out.returncode == 0 else out.stderr


def hand_registered(version: int, model: str = "fraud", uri: str = "s3://models/fraud/v1") -> dict[str, Any]:
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{version}"},
        "spec": {
            "model": model,
            "version": version,
            "artifact": {"storageUri": uri, "format": "joblib", "sha256": "9" * 64},
        },
    }


def test_two_versions_never_share_an_artifact(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    # Once: a version registered by hand under another model, reusing another version's artifact, with the promote
    # annotation, became Production and was served as that model. The first version to name an artifact keeps it.
    def stage_of(name: str) -> dict[str, Any] | None:
        st = cluster.api.get(f"{MV.format(ns=namespace)}/{name}").get("status") or {}
        return st if st.get("stage") else None

    cluster.api.create(MV.format(ns=namespace), hand_registered(1))
    assert cluster.wait_for("fraud-v1 registered", lambda: stage_of("fraud-v1"))["stage"] == "Candidate"
    copy = hand_registered(1, model="credit")
    copy["metadata"]["annotations"] = {"driftline.dev/promote": "true"}
    cluster.api.create(MV.format(ns=namespace), copy)
    st = cluster.wait_for("credit-v1 decided", lambda: stage_of("credit-v1"))
    assert st["stage"] == "Rejected", st
    assert st["reason"] == (
        "its artifact s3://models/fraud/v1 is fraud-v1's: two versions never share an artifact; "
        "train or upload a new one"
    )
    ready = ready_reason(st, "ArtifactShared")
    assert ready is not None and ready["status"] == "False", st
    assert warnings_of(cluster, namespace, "ModelVersion", "credit-v1") == ["ArtifactShared"]
    # Asking again is refused again, once; a version of its own artifact is promoted as before.
    cluster.api.patch(f"{MV.format(ns=namespace)}/credit-v1", {"metadata": {"annotations": {
        "driftline.dev/promote": "again"}}}, "merge")  # fmt: skip
    cluster.api.create(MV.format(ns=namespace), {**hand_registered(2, uri="s3://models/fraud/v2"), "metadata": {
        "name": "fraud-v2", "annotations": {"driftline.dev/promote": "true"}}})  # fmt: skip
    assert cluster.wait_for("fraud-v2 promoted", lambda: stage_of("fraud-v2"))["stage"] == "Production"
    st = cluster.wait_for("the request handled", lambda: (s := stage_of("credit-v1")) and s.get(
        "lastPromoteRequest") == "again" and s)  # fmt: skip
    assert st["stage"] == "Rejected"


def test_only_who_may_promote_decides_what_is_served(cluster: Cluster, policies: None, namespace: str) -> None:
    # Once: with ModelVersion rights alone, a hand-registered version reusing another's artifact and the promote
    # annotation became Production, and a custom trainer's promotion.auto promoted what it reported. Registering,
    # promoting, rejecting and rolling back now need Driftline's own verbs, register and promote, that admin has.
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete"]  # "*" would grant Driftline's verbs too
    writer = {"apiGroups": ["driftline.dev"], "resources": ["modelversions", "modelversions/status"], "verbs": verbs}
    deciders = {**writer, "resources": ["modelversions"], "verbs": ["register", "promote"]}
    serving = {**writer, "resources": ["trainingjobs", "inferenceservices"]}
    services = {**writer, "resources": ["inferenceservices"]}
    roles = {"mv-writer": [writer, serving], "mv-decider": [writer, serving, deciders], "isvc-writer": [services]}
    for name, rules in roles.items():
        role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}}
        cluster.api.create(f"{rbac}/roles", {**role, "rules": rules})
    for user, kind, role in [
        ("bob", "Role", "mv-writer"),  # every verb Kubernetes knows on ModelVersions, none of Driftline's
        ("alice", "ClusterRole", "edit"),
        ("ada", "ClusterRole", "edit"),
        ("ada", "Role", "mv-decider"),
        ("dave", "Role", "mv-decider"),  # decides what is served, may not create pods
        ("ivy", "Role", "isvc-writer"),  # may write InferenceServices, not TrainingJobs
    ]:
        cluster.api.create(f"{rbac}/rolebindings", binding(user, kind, role))
    cluster.api.create(f"{rbac}/rolebindings", binding("alice", "Role", "mv-writer"))
    operator = {"kind": "ServiceAccount", "name": "tenancy-adm", "namespace": SYSTEM}
    cluster.api.create(f"{rbac}/rolebindings", {**binding("op", "Role", "mv-writer"), "subjects": [operator]})
    cluster.api.create(MV.format(ns=namespace), hand_registered(1))  # as the cluster's admin
    isvc = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "s"}}
    cluster.api.create(DIS.format(ns=namespace), {**isvc, "spec": {"model": "fraud"}})

    create = ("create", "-f", "-")
    refused = cluster.wait_for(
        "the policy in force",
        lambda: cluster.kubectl(
            *create, "--dry-run=server", "-n", namespace, "--as", "bob", input=json.dumps(hand_registered(2)),
            check=False,
        ).stderr,
    )  # fmt: skip
    assert "by hand decides what may be served; bob may not register modelversions" in refused
    # A version registered by hand with its own serving image is running that image: pods, and an allowed registry.
    imaged = hand_registered(3, uri="s3://models/fraud/v3")
    imaged["spec"]["servingImage"] = "registry.example/runtime:2"
    dry = (*create, "--dry-run=server", "-n", namespace)
    said = cluster.kubectl(*dry, "--as", "dave", input=json.dumps(imaged), check=False).stderr
    assert "spec.servingImage: the image that serves this version is creating pods; dave may not create pods" in said
    assert cluster.kubectl(*dry, "--as", "ada", input=json.dumps(imaged), check=False).returncode == 0
    imaged["spec"]["servingImage"] = "evil.example/runtime:2"
    said = cluster.kubectl(*dry, "--as", "ada", input=json.dumps(imaged), check=False).stderr
    assert "spec.servingImage: image evil.example/runtime:2 is not under a registry prefix the cluster allows" in said
    annotate = ("annotate", "modelversion", "fraud-v1")
    for ask in ("driftline.dev/promote=true", "driftline.dev/reject=bad-data"):
        said = as_user(cluster, namespace, "bob", *annotate, ask)
        assert f"metadata.annotations[{ask.split('=')[0]}]: promoting, rejecting or rolling back" in said, ask
        assert "bob may not promote modelversions in" in said and "(the verb promote on modelversions." in said
        assert as_user(cluster, namespace, "ada", *annotate, ask) == ""
    stage = ("patch", "modelversion", "fraud-v1", "--subresource=status", "--type=merge", "-p")
    said = as_user(cluster, namespace, "bob", *stage, '{"status": {"stage": "Production"}}')
    assert "status: a ModelVersion's stage decides what is served; bob may not promote modelversions" in said
    assert as_user(cluster, namespace, "ada", *stage, '{"status": {"stage": "Production"}}') == ""
    # Other annotations and labels stay bob's to write.
    assert as_user(cluster, namespace, "bob", *annotate, "team=risk") == ""
    # Rolling a service back marks its version RolledBack for every service following the model.
    rollback = ("annotate", "inferenceservice", "s", "driftline.dev/rollback=now")
    assert "alice may not promote modelversions" in as_user(cluster, namespace, "alice", *rollback)
    assert as_user(cluster, namespace, "ada", *rollback) == ""
    assert as_user(cluster, namespace, "alice", "label", "inferenceservice", "s", "tier=gold") == ""
    # A retrain request runs a TrainingJob: only for who may create one.
    retrain = ("annotate", "inferenceservice", "s", "driftline.dev/retrain=now")
    said = as_user(cluster, namespace, "ivy", *retrain)
    assert "metadata.annotations[driftline.dev/retrain]: a retrain runs a TrainingJob; ivy may not create" in said
    assert as_user(cluster, namespace, "ivy", "label", "inferenceservice", "s", "tier=silver", "--overwrite") == ""
    assert as_user(cluster, namespace, "alice", *retrain) == ""
    # A custom trainer reports its own metrics: promotion.auto with a template is promoting.
    auto = training(template=CUSTOM_POD, promotion={"auto": True})
    said = submit(cluster, namespace, auto, "alice")
    assert "spec.promotion.auto: a custom trainer reports its own metrics" in said and "alice may not promote" in said
    assert submit(cluster, namespace, auto, "ada") == ""
    assert submit(cluster, namespace, training(promotion={"auto": True}), "alice") == ""  # the built-in trainer
    said = submit(cluster, namespace, {**isvc, "metadata": {"name": "r"}, "spec": {"model": "iris", "retrain": {
        "template": auto["spec"]}}}, "alice")  # fmt: skip
    assert "spec.retrain.template.promotion.auto: a custom trainer" in said
    # The operator carries out what these checks let through.
    assert as_user(cluster, namespace, OPERATOR_SA, *stage, '{"status": {"stage": "Production"}}') == ""


def get_metrics(port: int, token: str | None = None, host: str = "127.0.0.1") -> tuple[int, dict[str, str], str]:
    """GET /metrics over HTTPS (the operator's own certificate: not verified here) as a scraper would."""
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection(host, port, context=tls, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        conn.close()


def test_the_operators_metrics_are_served_only_to_callers_the_cluster_allows(
    cluster: Cluster, crds: None, namespace: str
) -> None:
    # Once: the operator's /metrics, which names every tenant's objects and decisions, answered anyone who could reach
    # the pod. With --metrics-secure (the chart's default) it answers a bearer token the API server authenticates,
    # whose holder may `get /metrics` (TokenReview + SubjectAccessReview, as controller-runtime's secure metrics).
    port = procs.free_port()
    log = cluster.dir / "logs" / f"operator-{namespace}.log"
    args = ("--metrics-port", str(port), "--metrics-address", "127.0.0.1", "--metrics-secure")
    operator = OperatorProcess(cluster.kubeconfig, log, *args, namespace=namespace).start()
    token, user = service_account_token(cluster, namespace, "scraper"), f"system:serviceaccount:{namespace}:scraper"
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"{namespace}-metrics-reader"},
        "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
    }
    grant = {
        **binding("scraper", "ClusterRole", reader["metadata"]["name"]),
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{namespace}-metrics-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": namespace}],
    }
    try:
        status, headers, body = cluster.wait_for("the endpoint up", lambda: _answered(port), timeout=60)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer"), body
        assert "a bearer token is required" in body and "driftline_" not in body
        status, _, body = get_metrics(port, "not-a-token")
        assert status == 401 and "Unauthorized" in body
        status, _, body = get_metrics(port, token)
        assert (status, body.strip()) == (
            403,
            f'Forbidden: {user} may not get /metrics (a ClusterRole with nonResourceURLs ["/metrics"], verbs ["get"])',
        )
        cluster.api.create(f"{rbac}/clusterroles", reader)
        cluster.api.create(f"{rbac}/clusterrolebindings", grant)
        # A refusal is remembered for 10 s at most.
        status, _, body = cluster.wait_for(
            "allowed", lambda: (a := get_metrics(port, token))[0] == 200 and a, timeout=30, interval=1.0
        )
        assert "driftline_operator_reconciles_total" in body or "# HELP driftline_operator" in body
        # A client that connects and sends nothing (no TLS handshake) holds up no one.
        with socket.create_connection(("127.0.0.1", port)):
            assert get_metrics(port, token)[0] == 200
    finally:
        operator.stop()
        for kind, obj in (("clusterrolebindings", grant), ("clusterroles", reader)):
            cluster.api.delete(f"{rbac}/{kind}/{obj['metadata']['name']}")


def service_account_token(cluster: Cluster, namespace: str, name: str) -> str:
    """A new ServiceAccount's token, from the TokenRequest API (as the kubelet projects one into a pod)."""
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}
    cluster.api.create(f"/api/v1/namespaces/{namespace}/serviceaccounts", sa)
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
    minted = cluster.api.create(f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", request)
    return str(minted["status"]["token"])


def _answered(port: int) -> tuple[int, dict[str, str], str] | None:
    try:
        return get_metrics(port)
    except OSError:
        return None
