"""A person edits an InferenceService (spec and annotations, five times a second) while the operator rolls it
forward: no edit is lost, no field fights. The operator writes only the status subresource and its children, so the
API server's managedFields show no spec field owned by it.

A person edits a child the operator owns (the serving Deployment: `kubectl scale`, `kubectl set image`): the fields
the operator renders return to what the InferenceService says at the next reconcile, which the Deployment's own watch
event triggers; what the person added that the operator does not render (annotations, labels, env) stays."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import pvc
from tests.e2e.test_serving import DIS, dis, events_of, inferenceservice, ready_at, serving_pods, train
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e
OPERATOR_MANAGER = "driftline-operator"  # the API server names a field manager after the client's user agent


def serving_v1(cluster: Cluster, ns: str) -> str:
    """v1 trained and served by InferenceService bc."""
    pvc(cluster, ns)
    assert train(cluster, ns, "v1", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    cluster.api.create(DIS.format(ns=ns), inferenceservice("bc"))
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)
    return ns


def test_a_person_editing_during_a_roll_forward_loses_nothing(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    ns = serving_v1(cluster, namespace)

    path = f"{DIS.format(ns=ns)}/bc"
    stop, edits, errors = threading.Event(), [0], []

    def person() -> None:
        while not stop.is_set():
            n = edits[-1] + 1
            patch = {"metadata": {"annotations": {"example.com/edit": str(n)}}, "spec": {"replicas": 1 + n % 2}}
            try:
                cluster.api.patch(path, patch, "merge")
                edits.append(n)
            except Exception as e:  # a conflict here would be the API server's, and a failure of this test
                errors.append(str(e))
            stop.wait(0.2)

    thread = threading.Thread(target=person, daemon=True)
    thread.start()
    try:
        assert train(cluster, ns, "v2", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000, "C": 0.5}) == 2
        cluster.wait_for(
            "the roll forward to v2",
            lambda: (dis(cluster, ns, "bc").get("status") or {}).get("activeVersion") == 2,
            timeout=120,
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    last = edits[-1]
    assert errors == [] and last > 10, (errors[:3], last)

    svc = dis(cluster, ns, "bc")
    assert svc["metadata"]["annotations"]["example.com/edit"] == str(last)
    assert svc["spec"]["replicas"] == 1 + last % 2
    cluster.wait_for("bc on v2 with the person's replicas", ready_at(cluster, ns, "bc", 2, replicas=1 + last % 2))
    for entry in svc["metadata"]["managedFields"]:
        if entry["manager"].startswith(OPERATOR_MANAGER):
            owned = json.dumps(entry.get("fieldsV1") or {})
            assert entry.get("subresource") == "status" or '"f:spec"' not in owned, entry
    assert any(e["manager"].startswith(OPERATOR_MANAGER) for e in svc["metadata"]["managedFields"])


def test_a_person_editing_the_served_deployment_gets_the_owned_fields_back(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    ns = serving_v1(cluster, namespace)
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/bc-stable"
    image = server(cluster.api.get(path))["image"]
    before = {e["metadata"]["uid"] for e in events_of(cluster, ns, "InferenceService", "bc")}

    def kubectl(*verb: str, change: str) -> None:
        """As a person would type it: `kubectl -n NS VERB... deployment/bc-stable CHANGE`."""
        cluster.kubectl("-n", ns, *verb, "deployment/bc-stable", change)

    # What `kubectl get dis` shows meanwhile, sampled five times a second: (since when, phase).
    stop, phases = threading.Event(), list[tuple[float, str | None]]()

    def watch_phase() -> None:
        while not stop.wait(0.2):
            phase = (dis(cluster, ns, "bc").get("status") or {}).get("phase")
            if not phases or phases[-1][1] != phase:
                phases.append((time.monotonic(), phase))

    def settled() -> bool:
        """bc on its one v1 pod, the Deployment rolled out, and Ready for 3 s on end."""
        if not (ready_at(cluster, ns, "bc", 1)() and rolled_out(cluster.api.get(path))):
            return False
        return bool(phases) and phases[-1][1] == "Ready" and time.monotonic() - phases[-1][0] > 3

    def generation() -> int:
        return int(cluster.api.get(path)["metadata"]["generation"])

    def undone(restored: Callable[[dict[str, Any]], bool], gen: int) -> Callable[[], bool]:
        """The field is back, in a generation after the person's own (`gen` + 1)."""
        return lambda: (lambda d: restored(d) and d["metadata"]["generation"] >= gen + 2)(cluster.api.get(path))

    watcher = threading.Thread(target=watch_phase, daemon=True)
    watcher.start()
    try:
        # The person's own fields, next to the operator's: an annotation, a label, an env variable.
        kubectl("annotate", change="example.com/owner=team-a")
        kubectl("label", change="example.com/cost-center=ml")
        kubectl("set", "env", "-c", "server", change="EXAMPLE_DEBUG=1")
        cluster.wait_for("bc on one v1 pod with the person's env, settled", settled, timeout=120)

        # Fields the operator renders, changed by hand: each comes back, triggered by the Deployment's watch event
        # (the person's write and the operator's: two generations).
        back: dict[str, float] = {}
        for edit, change, restored in [
            (("set", "image"), "server=example.com/someone/server:hotfix", lambda d: server(d)["image"] == image),
            (("scale",), "--replicas=3", lambda d: d["spec"]["replicas"] == 1),
        ]:
            started, gen = time.monotonic(), generation()
            kubectl(*edit, change=change)
            cluster.wait_for(f"{change} undone", undone(restored, gen), timeout=30, interval=0.1)
            back[edit[-1]] = time.monotonic() - started
        cluster.wait_for("bc on one v1 pod, settled", settled, timeout=120)
    finally:
        stop.set()
        watcher.join(timeout=10)
    print("\nthe operator's fields back after", {edit: f"{seconds:.1f}s" for edit, seconds in back.items()})

    dep = cluster.api.get(path)
    assert dep["metadata"]["annotations"]["example.com/owner"] == "team-a"
    assert dep["metadata"]["labels"]["example.com/cost-center"] == "ml"
    assert server(dep)["env"] == [{"name": "EXAMPLE_DEBUG", "value": "1"}]
    assert server(dep)["image"] == image and dep["spec"]["replicas"] == 1
    assert [p["ready"] for p in serving_pods(cluster.api, ns, "bc")] == [True]
    # managedFields: the operator owns the replica count and the image again; the person keeps only what they added.
    owners = {e["manager"]: json.dumps(e.get("fieldsV1") or {}) for e in dep["metadata"]["managedFields"]}
    print("Deployment managedFields:", {m: len(f) for m, f in owners.items()})
    for manager, fields in owners.items():
        if manager.startswith(OPERATOR_MANAGER):
            assert '"f:replicas"' in fields and '"f:image"' in fields, fields
        elif manager.startswith("kubectl"):
            assert '"f:replicas"' not in fields and '"f:image"' not in fields, (manager, fields)
    assert any(m.startswith("kubectl") and '"f:example.com/owner"' in f for m, f in owners.items()), owners

    # What a person sees: the service dips to Progressing while its pods roll (never Degraded or Failed), and the
    # operator names each edit it undid, in a Warning on the InferenceService (their own fields are not named);
    # otherwise only Normal RolledOut Events, when it is Ready again. The Deployment controller's ScalingReplicaSet
    # Events show the pods coming and going.
    def reverted() -> list[str]:
        found = [e for e in events_of(cluster, ns, "InferenceService", "bc") if e["metadata"]["uid"] not in before]
        said = [e["message"] for e in found if e["reason"] == "EditReverted"]
        return said if len(said) >= 2 else []

    said = cluster.wait_for("an Event for each edit undone", reverted, timeout=30)
    new = [e for e in events_of(cluster, ns, "InferenceService", "bc") if e["metadata"]["uid"] not in before]
    seen = [phase for _, phase in phases]
    print("phases:", seen, "\nnew Events on the InferenceService:", [(e["type"], e["reason"]) for e in new])
    assert set(seen) <= {"Ready", "Progressing"} and seen[-1] == "Ready", seen
    assert {(e["type"], e["reason"]) for e in new} <= {("Normal", "RolledOut"), ("Warning", "EditReverted")}, new
    image_back = "reverted a change to Deployment bc-stable: spec.template.spec.containers[server].image"
    assert any(m.startswith(image_back) for m in said), said
    assert any(m.startswith("reverted a change to Deployment bc-stable: spec.replicas") for m in said), said
    assert not any("env" in m or "annotations" in m or "labels" in m for m in said), said
    assert [h["action"] for h in dis(cluster, ns, "bc")["status"]["history"]] == ["RollForward"]  # no new decision


def server(dep: dict[str, Any]) -> dict[str, Any]:
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return dict(container)


def rolled_out(dep: dict[str, Any]) -> bool:
    """The Deployment controller saw the latest template and every replica is updated and available, none extra."""
    st, want = dep.get("status") or {}, dep["spec"]["replicas"]
    return bool(
        st.get("observedGeneration") == dep["metadata"]["generation"]
        and st.get("updatedReplicas") == want == st.get("availableReplicas") == st.get("replicas")
    )
