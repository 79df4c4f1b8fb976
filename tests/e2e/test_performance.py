"""Live performance on the real control plane: clients send ground truth to the serving pods, the operator reads the
served version's live accuracy and acts on a drop that input drift cannot see (concept drift: the same inputs now
mean the other class) — Underperforming, a retrain on the labelled live rows that the TrainingJob says performance
started, the new version evaluated in shadow on the same live traffic, promoted because it wins there, rolled forward,
and live accuracy back above the policy; no client request fails."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from driftline.demo.traffic import frame
from tests.conftest import Cluster
from tests.e2e.conftest import pvc
from tests.e2e.test_drift import INTERVAL, drift_spec, traffic
from tests.e2e.test_serving import DIS, MODEL, condition, dis, events_of, ready_at, train
from tests.e2e.test_training import TJ, versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e


def frame_of(csv: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(csv))


def performance_of(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict((dis(cluster, ns, name).get("status") or {}).get("performance") or {})


def reading(cluster: Cluster, ns: str, assessment: str, version: int | None = None) -> Any:
    def check() -> dict[str, Any] | None:
        st = dis(cluster, ns, "bc").get("status") or {}
        p = st.get("performance") or {}
        right_version = version is None or st.get("activeVersion") == version
        return p if p.get("assessment") == assessment and right_version else None

    return check


@pytest.fixture
def v1_served(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    pvc(cluster, namespace)
    assert train(cluster, namespace, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    yield namespace


def test_concept_drift_is_caught_by_live_accuracy_retrained_and_recovered(
    cluster: Cluster, v1_served: str, operator: OperatorProcess
) -> None:
    ns = v1_served
    template = {
        "model": MODEL,
        "dataset": {"uri": "sklearn://breast_cancer"},  # what it was trained on; the retrain learns from live labels
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 5000},
        "output": {"storageUri": "pvc://models/registry"},
        # Offline gates first, then it must beat the served version on the live labels, in bc's shadow.
        "promotion": {
            "auto": True,
            "gates": [{"metric": "accuracy", "op": ">=", "value": 0.85}],
            "online": {"service": "bc", "metric": "accuracy", "minSamples": 100},
        },
    }
    performance = {
        "metric": "accuracy",
        "maxDegradation": 0.15,
        "windowSize": 300,
        "minSamples": 150,
        "consecutive": 2,
        "scrapeInterval": INTERVAL,
        "action": "Retrain",
    }
    spec = {
        "model": MODEL,
        "drift": drift_spec("Alert"),
        "performance": performance,
        "retrain": {"template": template, "cooldown": "1h", "data": "LiveLabels"},
        "shadow": {"share": 1, "scrapeInterval": INTERVAL},  # candidates Evaluating online here run in shadow
    }
    svc = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService", "metadata": {"name": "bc"}, "spec": spec}
    cluster.api.create(DIS.format(ns=ns), svc)
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)
    validation = versions(cluster, ns)[f"{MODEL}-v1"]["spec"]["metrics"]["accuracy"]

    with traffic(cluster, ns, "bc") as live:
        live.send_labels = True
        ok = cluster.wait_for("an Ok live accuracy reading", reading(cluster, ns, "Ok"), timeout=90)
        assert ok["value"] >= validation - 0.15 and ok["samples"] >= 150
        assert ok["validation"] == validation and ok["threshold"] == pytest.approx(validation - 0.15)
        st = dis(cluster, ns, "bc")["status"]
        assert condition(st, "Underperforming")["status"] == "False"

        # Concept drift: the inputs keep their distribution, their labels change meaning.
        live.flip_labels = True
        acted = cluster.wait_for(
            "the Retrain action",
            lambda: (lambda p: p if p.get("lastAction") == "Retrain" else None)(performance_of(cluster, ns, "bc")),
            timeout=90,
        )
        st = dis(cluster, ns, "bc")["status"]
        assert condition(st, "Underperforming")["status"] == "True", st["conditions"]
        assert acted["value"] < validation - 0.15 and "below threshold" in acted["message"]
        assert st["drift"]["assessment"] == "Ok" and condition(st, "Drifted")["status"] == "False", st["drift"]
        job = cluster.api.get(f"{TJ.format(ns=ns)}/{acted['lastRetrainJob']}")
        assert job["metadata"]["annotations"]["driftline.dev/retrain-trigger"] == "Performance"
        # It learns from the rows clients labelled, as a ConfigMap the service owns: the new meaning of the inputs.
        uri = job["spec"]["dataset"]["uri"]
        assert uri.startswith("configmap://") and job["spec"]["dataset"]["target"] == "target", job["spec"]
        data = cluster.api.get(f"/api/v1/namespaces/{ns}/configmaps/{uri.split('/')[2]}")
        assert data["metadata"]["ownerReferences"][0]["name"] == "bc"
        live_rows = frame_of(data["data"]["data.csv"])
        assert 150 <= len(live_rows) <= 300 and list(live_rows.columns) == list(frame().columns)
        flipped = live_rows.merge(frame(), on=list(frame().columns[:-1]), suffixes=("", "_true"))
        assert (flipped["target"] != flipped["target_true"]).mean() > 0.5  # mostly labels of the new meaning
        told = [
            e["message"] for e in events_of(cluster, ns, "InferenceService", "bc") if e["reason"] == "RetrainStarted"
        ]
        assert told == [
            f"started TrainingJob {job['metadata']['name']}, on {len(live_rows)} labelled live rows from 1 pod"
        ]
        assert (st.get("drift") or {}).get("lastRetrainJob") is None  # drift does not claim performance's retrain

        exported = {
            (s.name, s.labels.get("namespace"), s.labels.get("inferenceservice")): s.value
            for family in text_string_to_metric_families(requests.get(operator.metrics_url, timeout=5).text)
            for s in family.samples
        }
        assert exported[("driftline_operator_live_performance_threshold", ns, "bc")] == pytest.approx(validation - 0.15)

        # v2 learnt what the labels now mean: rolled forward, its live accuracy is back within the policy.
        # v2 is Evaluating, runs in shadow on the same live traffic, beats v1 on the labels and is promoted.
        cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2), timeout=240)
        mv2 = versions(cluster, ns)[f"{MODEL}-v2"]["status"]
        assert mv2["promotedBy"] == "online:bc" and "online evaluation passed in shadow of bc" in mv2["reason"], mv2
        assert mv2["evaluation"]["metric"] == "accuracy"
        assert versions(cluster, ns)[f"{MODEL}-v2"]["spec"]["dataset"]["uri"] == uri
        recovered = cluster.wait_for("an Ok reading of v2", reading(cluster, ns, "Ok", 2), timeout=90)
        v2_validation = versions(cluster, ns)[f"{MODEL}-v2"]["spec"]["metrics"]["accuracy"]
        assert recovered["value"] >= v2_validation - 0.15 and recovered["validation"] == v2_validation
        cluster.wait_for(
            "Underperforming False again",
            lambda: condition(dis(cluster, ns, "bc")["status"], "Underperforming").get("status") == "False",
            timeout=30,
        )
    assert live.labelled > 0 and live.failures == 0, (live.labelled, live.failures)
    st = dis(cluster, ns, "bc")["status"]
    actions = [(h["action"], h.get("fromVersion"), h["toVersion"], h["reason"]) for h in st["history"]]
    assert actions[-2][:3] == ("Retrain", 1, 1) and actions[-2][3] == "PerformanceDropped", actions
    reasons = [e["reason"] for e in events_of(cluster, ns, "InferenceService", "bc")]
    assert {"PerformanceDropped", "RetrainStarted", "ShadowStarted", "OnlineEvaluationPassed", "RollingOut"} <= set(
        reasons
    ), reasons
    assert "DriftDetected" not in reasons
