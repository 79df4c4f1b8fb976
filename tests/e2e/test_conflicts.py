"""A person edits an InferenceService (spec and annotations, five times a second) while the operator rolls it
forward: no edit is lost, no field fights. The operator writes only the status subresource and its children, so the
API server's managedFields show no spec field owned by it."""

from __future__ import annotations

import json
import threading

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import pvc
from tests.e2e.test_serving import DIS, dis, inferenceservice, ready_at, train
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e
OPERATOR_MANAGER = "driftline-operator"  # the API server names a field manager after the client's user agent


def test_a_person_editing_during_a_roll_forward_loses_nothing(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    pvc(cluster, ns)
    assert train(cluster, ns, "v1", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    cluster.api.create(DIS.format(ns=ns), inferenceservice("bc"))
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)

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
