"""Drift closes the loop on the real control plane: served pods see live inputs, the operator reads their drift and
acts — retrain on a dataset that reflects the shift and roll forward to the new version, or roll back a version
whose roll forward the drift followed. Through the pods' /metrics and through a real Prometheus server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer

from driftline.demo.traffic import Traffic
from driftline.devcluster.prometheus import PrometheusServer
from tests.conftest import Cluster
from tests.e2e.conftest import audit_mark, operator_reads, pvc
from tests.e2e.test_serving import DIS, MODEL, PORT, condition, dis, events_of, ready_at, train
from tests.e2e.test_training import TJ, versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

DATA = load_breast_cancer(as_frame=True)
SHIFT = 1.5
INTERVAL = "2s"


def drift_spec(action: str, **extra: Any) -> dict[str, Any]:
    return {
        "metric": "psi",
        "threshold": 0.25,
        "window": {"size": 300},
        "minSamples": 150,
        "consecutive": 2,
        "scrapeInterval": INTERVAL,
        "action": action,
        **extra,
    }


def traffic(cluster: Cluster, ns: str, name: str) -> Traffic:
    """The demo's live traffic (breast_cancer rows, V2) against the service `name` serving MODEL."""
    return Traffic(cluster.api, ns, name, MODEL)


def drift_of(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict((dis(cluster, ns, name).get("status") or {}).get("drift") or {})


def shifted_dataset(cluster: Cluster, ns: str) -> str:
    """A ConfigMap holding breast_cancer with every feature times SHIFT: the data the live traffic now looks like."""
    frame = DATA.frame.copy()
    frame[DATA.feature_names] = frame[DATA.feature_names] * SHIFT
    cluster.api.create(
        f"/api/v1/namespaces/{ns}/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shifted"},
            "data": {"data.csv": frame.to_csv(index=False)},
        },
    )
    return "configmap://shifted/data.csv"


def retrain_service(cluster: Cluster, ns: str) -> tuple[str, dict[str, Any]]:
    """The shifted dataset's URI, and an InferenceService "bc" that retrains on it when drift is confirmed."""
    uri = shifted_dataset(cluster, ns)
    template = {
        "model": MODEL,
        "dataset": {"uri": uri, "format": "csv"},
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 5000},
        "output": {"storageUri": "pvc://models/registry"},
        "promotion": {"auto": True, "gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}]},
    }
    svc = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "bc"},
        "spec": {"model": MODEL, "drift": drift_spec("Retrain"), "retrain": {"template": template, "cooldown": "1h"}},
    }
    return uri, svc


@pytest.fixture
def v1_served(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    pvc(cluster, namespace)
    assert train(cluster, namespace, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    yield namespace


def wait_ok_reading(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.wait_for(
        "an Ok drift reading over a full window",
        lambda: (lambda d: d if d.get("assessment") == "Ok" and (d.get("samples") or 0) >= 150 else None)(
            drift_of(cluster, ns, name)
        ),
        timeout=90,
    )


def quiet(cluster: Cluster, ns: str, name: str) -> bool:
    before = dis(cluster, ns, name)["metadata"]["resourceVersion"]
    time.sleep(3 * 2 * 1.1)  # three readings at the longest jittered INTERVAL
    return bool(dis(cluster, ns, name)["metadata"]["resourceVersion"] == before)


def test_closed_loop_drift_retrains_and_rolls_forward(
    cluster: Cluster, v1_served: str, operator: OperatorProcess
) -> None:
    ns = v1_served
    uri, svc = retrain_service(cluster, ns)
    cluster.api.create(DIS.format(ns=ns), svc)
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)

    with traffic(cluster, ns, "bc") as live:
        # In distribution: judged Ok, no action.
        ok = wait_ok_reading(cluster, ns, "bc")
        assert ok["score"] <= 0.25 and ok["method"] == "psi" and ok["lastScrapeTime"]
        st = dis(cluster, ns, "bc")["status"]
        assert condition(st, "Drifted")["status"] == "False" and ok.get("lastAction") is None

        # Shifted: breaches, Drifted, then a retrain on the shifted data.
        live.factor = SHIFT
        breach = cluster.wait_for(
            "a breaching reading",
            lambda: (lambda d: d if d.get("assessment") == "Breach" else None)(drift_of(cluster, ns, "bc")),
            timeout=90,
        )
        assert breach["score"] > 0.25 and breach["features"][0]["value"] == breach["score"]
        acted = cluster.wait_for(
            "the Retrain action",
            lambda: (lambda d: d if d.get("lastAction") == "Retrain" else None)(drift_of(cluster, ns, "bc")),
            timeout=60,
        )
        st = dis(cluster, ns, "bc")["status"]
        assert condition(st, "Drifted")["status"] == "True"
        job = acted["lastRetrainJob"]
        tj = cluster.api.get(f"{TJ.format(ns=ns)}/{job}")
        assert tj["metadata"]["ownerReferences"][0]["name"] == "bc"
        assert tj["spec"]["dataset"]["uri"] == uri
        took = _seconds(acted["breachingSince"], acted["lastActionTime"])
        print(
            f"\ndrift: first breaching reading -> Retrain action: {took:.0f}s (scrapeInterval {INTERVAL}, 2 in a row)"
        )

        exported = {
            (sample.name, sample.labels.get("namespace"), sample.labels.get("inferenceservice")): sample.value
            for family in text_string_to_metric_families(requests.get(operator.metrics_url, timeout=5).text)
            for sample in family.samples
        }
        assert exported[("driftline_operator_drift_threshold", ns, "bc")] == 0.25
        assert ("driftline_operator_drift_score", ns, "bc") in exported

        # v2, trained on what the traffic now looks like, passes the gates and is rolled forward to.
        cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2), timeout=240)
        assert versions(cluster, ns)[f"{MODEL}-v2"]["spec"]["trainingJobRef"]["name"] == job
        # Exactly one retrain for the whole run of breaches.
        retrains = cluster.api.get(TJ.format(ns=ns), labelSelector="driftline.dev/retrain")["items"]
        assert [r["metadata"]["name"] for r in retrains] == [job]

        # The loop is closed: the same shifted traffic is in distribution for v2.
        ok2 = wait_ok_reading(cluster, ns, "bc")
        assert ok2["score"] <= 0.25

    # No traffic, so no new inputs: readings go on every 2 s but change nothing, and nothing is written.
    mark = audit_mark(cluster)
    cluster.wait_for("three scrape intervals without a status write", lambda: quiet(cluster, ns, "bc"), timeout=60)
    # A reading (a Retrain service's: its retrains are looked at each time) reads the service and its TrainingJobs
    # from the operator's view of the cluster; it asks the API server only for the pods whose /metrics it reads.
    reads = operator_reads(cluster, mark, ns, by=("InferenceService", "InferenceServiceMonitor"))
    assert set(reads) <= {"list pods"} and len(reads) >= 3, reads
    st = dis(cluster, ns, "bc")["status"]
    assert st["drift"]["assessment"] == "Ok"
    actions = [(h["action"], h.get("fromVersion"), h["toVersion"]) for h in st["history"]]
    assert actions[-2:] == [("Retrain", 1, 1), ("RollForward", 1, 2)], actions
    reasons = [e["reason"] for e in events_of(cluster, ns, "InferenceService", "bc")]
    assert {"DriftDetected", "RetrainStarted", "RollingOut"} <= set(reasons), reasons
    assert live.predictions > 0


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster) -> Iterator[PrometheusServer]:
    """Debian's Prometheus, scraping every serving pod of the cluster every second under the labels a Kubernetes
    service discovery would give it (namespace, inferenceservice)."""
    server = PrometheusServer(cluster.dir / "prometheus").start()
    stop = threading.Event()

    def follow_pods() -> None:
        while not stop.is_set():
            try:
                pods = cluster.api.get("/api/v1/pods", labelSelector="driftline.dev/inferenceservice")["items"]
                server.set_targets(
                    [
                        (
                            f"{p['status']['podIP']}:{PORT}",
                            {
                                "namespace": p["metadata"]["namespace"],
                                "inferenceservice": p["metadata"]["labels"]["driftline.dev/inferenceservice"],
                            },
                        )
                        for p in pods
                        if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp")
                    ]
                )
            except Exception:  # the API server is busy: try again
                pass
            stop.wait(0.5)

    thread = threading.Thread(target=follow_pods, daemon=True)
    thread.start()
    yield server
    stop.set()
    thread.join(timeout=10)
    server.stop()


PROMQL = (
    'max(driftline_feature_drift{namespace="{{namespace}}",inferenceservice="{{name}}",version="{{version}}",'
    'method="psi"})'
)


@pytest.mark.parametrize("provider", ["pods", "prometheus"])
def test_drift_after_a_roll_forward_rolls_back(
    cluster: Cluster, v1_served: str, operator: OperatorProcess, request: pytest.FixtureRequest, provider: str
) -> None:
    ns = v1_served
    source: dict[str, Any] = {"pods": {}}
    if provider == "prometheus":
        prom: PrometheusServer = request.getfixturevalue("prometheus")
        source = {"prometheus": {"url": prom.url, "query": PROMQL}}
    svc = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "bc"},
        "spec": {"model": MODEL, "drift": drift_spec("Rollback", rollbackWindowSeconds=600, source=source)},
    }
    cluster.api.create(DIS.format(ns=ns), svc)
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)
    assert train(cluster, ns, "stump", "sklearn.tree.DecisionTreeClassifier", {"max_depth": 2}) == 2
    cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2), timeout=120)

    with traffic(cluster, ns, "bc") as live:
        live.factor = SHIFT
        acted = cluster.wait_for(
            "the Rollback action",
            lambda: (lambda d: d if d.get("lastAction") == "Rollback" else None)(drift_of(cluster, ns, "bc")),
            timeout=120,
        )
        st = cluster.wait_for("bc back on v1", ready_at(cluster, ns, "bc", 1), timeout=120)
    mv2 = versions(cluster, ns)[f"{MODEL}-v2"]
    assert mv2["status"]["stage"] == "RolledBack" and "drift" in mv2["status"]["reason"]
    last = st["history"][-1]
    assert (last["action"], last["fromVersion"], last["toVersion"]) == ("Rollback", 2, 1), st["history"]
    warnings = [e for e in events_of(cluster, ns, "InferenceService", "bc") if e["type"] == "Warning"]
    assert any(e["reason"] == "DriftDetected" and "traffic back to version 1" in e["message"] for e in warnings)
    took = _seconds(acted["breachingSince"], acted["lastActionTime"])
    print(f"\ndrift ({provider}): first breaching reading -> Rollback action: {took:.0f}s (scrapeInterval {INTERVAL})")


def _seconds(a: str, b: str) -> float:
    return (
        datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))
    ).total_seconds()
