"""A shadow challenger on the real control plane: the serving pods mirror a share of their requests and the labels
sent back to the challenger's own Deployment, reached through its Service (routed by the local cluster as kube-proxy
would); status.shadow shows the agreement, the challenger's latency and both versions' live metrics on the same
labels; the challenger never answers a client; removing spec.shadow removes its pods."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from driftline.api import constants as c
from tests.conftest import Cluster
from tests.e2e.conftest import pvc
from tests.e2e.test_drift import traffic
from tests.e2e.test_serving import DIS, MODEL, ROWS, condition, dis, events_of, ready_at, train
from tests.e2e.test_training import TJ, trainingjob, versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_versions(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    pvc(cluster, namespace)
    assert train(cluster, namespace, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    assert train(cluster, namespace, "stump", "sklearn.tree.DecisionTreeClassifier", {"max_depth": 1}) == 2
    yield namespace


def shadow_of(cluster: Cluster, ns: str) -> dict[str, Any]:
    return dict((dis(cluster, ns, "bc").get("status") or {}).get("shadow") or {})


def pods(cluster: Cluster, ns: str, track: str) -> list[dict[str, Any]]:
    selector = f"driftline.dev/inferenceservice=bc,driftline.dev/track={track}"
    items = cluster.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def test_a_worse_challenger_is_scored_in_shadow_and_never_answers_a_client(
    cluster: Cluster, two_versions: str, operator: OperatorProcess
) -> None:
    ns = two_versions
    spec = {"model": MODEL, "version": 1, "shadow": {"version": 2, "share": 0.5, "scrapeInterval": "2s"}}
    svc = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "bc"}, "spec": spec}
    cluster.api.create(DIS.format(ns=ns), svc)
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)
    cluster.wait_for("the challenger's pod ready", lambda: [p for p in pods(cluster, ns, c.TRACK_SHADOW)
                                                             if p["status"].get("podIP")], timeout=120)  # fmt: skip
    st = dis(cluster, ns, "bc")["status"]
    assert condition(st, "Shadowing")["status"] == "True", st["conditions"]

    with traffic(cluster, ns, "bc") as live:
        live.send_labels = True
        read = cluster.wait_for(
            "the challenger scored on 150 mirrored labelled rows",
            lambda: (lambda s: s if (s.get("challengerSamples") or 0) >= 150 and s.get("compared") else None)(
                shadow_of(cluster, ns)
            ),
            timeout=120,
        )
    assert read["version"] == 2 and read["mirrored"] > 0 and read["errors"] == 0
    assert 0 < read["agreement"] < 1 and read["latencyP95Seconds"] > 0
    challenger = {m["name"]: m["value"] for m in read["challenger"]}
    production = {m["name"]: m["value"] for m in read["production"]}
    assert challenger["accuracy"] < production["accuracy"], (challenger, production)
    assert live.failures == 0 and live.labelled > 0

    # Clients reach the service's Service: only version 1 ever answers; the challenger's pods only saw mirroring.
    ip = cluster.api.get(f"/api/v1/namespaces/{ns}/services/bc")["spec"]["clusterIP"]
    http = requests.Session()
    http.trust_env = False
    body = {"inputs": [{"name": "x", "shape": [1, ROWS.shape[1]], "datatype": "FP64", "data": ROWS[0].tolist()}]}
    answers = {http.post(f"http://{ip}/v2/models/{MODEL}/infer", json=body, timeout=10).json()["model_version"]
               for _ in range(20)}  # fmt: skip
    assert answers == {"1"}
    reasons = [e["reason"] for e in events_of(cluster, ns, "InferenceService", "bc")]
    assert "ShadowStarted" in reasons

    # No more shadow: its pods go, the condition says so, status.shadow is cleared.
    cluster.api.patch(f"{DIS.format(ns=ns)}/bc", {"spec": {"shadow": None}}, kind="merge")
    cluster.wait_for("the challenger's pods gone", lambda: not pods(cluster, ns, c.TRACK_SHADOW), timeout=90)
    st = cluster.wait_for(
        "Shadowing False",
        lambda: (lambda s: s if condition(s, "Shadowing").get("status") == "False" else None)(
            dis(cluster, ns, "bc").get("status") or {}
        ),
        timeout=60,
    )
    assert "shadow" not in st


@pytest.fixture
def one_version(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    pvc(cluster, namespace)
    assert train(cluster, namespace, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    yield namespace


def stage_of(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(versions(cluster, ns).get(name, {}).get("status") or {})


def test_a_candidate_that_loses_online_is_rejected_with_the_numbers_and_never_served(
    cluster: Cluster, one_version: str, operator: OperatorProcess
) -> None:
    ns = one_version
    spec = {"model": MODEL, "shadow": {"share": 1, "scrapeInterval": "1s"}}  # candidates judged here, all mirrored
    svc = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "bc"}, "spec": spec}
    cluster.api.create(DIS.format(ns=ns), svc)
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)
    st = dis(cluster, ns, "bc")["status"]
    assert condition(st, "Shadowing")["status"] == "False" and "is Evaluating" in condition(st, "Shadowing")["message"]

    with traffic(cluster, ns, "bc") as live:
        live.send_labels = True
        # The candidate passes its offline gate, then must beat version 1 on live labels in bc's shadow.
        online = {"service": "bc", "metric": "accuracy", "minSamples": 100}
        body = trainingjob("stump", "sklearn.tree.DecisionTreeClassifier", {"max_depth": 1}, online=online)
        body["spec"]["promotion"]["gates"] = [{"metric": "accuracy", "op": ">=", "value": 0.5}]
        cluster.api.create(TJ.format(ns=ns), body)
        evaluating = cluster.wait_for(
            "v2 Evaluating",
            lambda: (lambda s: s if s.get("stage") == "Evaluating" else None)(stage_of(cluster, ns, f"{MODEL}-v2")),
            timeout=240,
        )
        assert evaluating["evaluation"] == {"service": "bc", "metric": "accuracy", "minSamples": 100, "margin": 0.0}
        assert "evaluating online: InferenceService bc runs it in shadow" in evaluating["reason"]
        rejected = cluster.wait_for(
            "v2 Rejected online",
            lambda: (lambda s: s if s.get("stage") == "Rejected" else None)(stage_of(cluster, ns, f"{MODEL}-v2")),
            timeout=180,
        )
        assert "online evaluation failed in shadow of bc: live accuracy" in rejected["reason"], rejected["reason"]
        assert "labelled mirrored rows, below" in rejected["reason"]
        cluster.wait_for("the challenger's pods gone", lambda: not pods(cluster, ns, c.TRACK_SHADOW), timeout=90)
    assert live.failures == 0
    st = dis(cluster, ns, "bc")["status"]
    assert st["activeVersion"] == 1 and stage_of(cluster, ns, f"{MODEL}-v1")["stage"] == "Production"
    assert all(h.get("toVersion") != 2 for h in st.get("history") or []), st["history"]
    reasons = [e["reason"] for e in events_of(cluster, ns, "InferenceService", "bc")]
    assert "OnlineEvaluationFailed" in reasons and "ShadowStarted" in reasons
