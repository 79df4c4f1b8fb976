"""TrainingJob -> Job (run by the pod runner) -> ModelVersion -> gated promotion, on the real control plane."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
import requests

from tests.conftest import Cluster
from tests.e2e.conftest import host_path_of, pvc
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

TJ = "/apis/driftline.dev/v1alpha1/namespaces/{ns}/trainingjobs"
MV = "/apis/driftline.dev/v1alpha1/namespaces/{ns}/modelversions"


def trainingjob(name: str, estimator: str, params: dict[str, Any], **promotion: Any) -> dict[str, Any]:
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "breast-cancer",
            "dataset": {"uri": "sklearn://breast_cancer"},
            "estimator": estimator,
            "params": params,
            "output": {"storageUri": "pvc://models/registry"},
            "promotion": {"auto": True, **promotion},
        },
    }


def tj_status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(cluster.api.get(f"{TJ.format(ns=ns)}/{name}").get("status") or {})


def finished(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    st = tj_status(cluster, ns, name)
    return st if st.get("phase") in ("Succeeded", "Failed") else None


def versions(cluster: Cluster, ns: str) -> dict[str, dict[str, Any]]:
    items = cluster.api.get(MV.format(ns=ns))["items"]
    return {m["metadata"]["name"]: m for m in items}


def test_train_register_promote_then_reject_and_supersede(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    pvc(cluster, namespace)
    gates = {
        "gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
        "mustBeat": {"metric": "accuracy", "minDelta": 0.0},
    }
    # Seeded split: C=0.001 scores 0.947, the stump 0.921, the default LogisticRegression 0.965 (measured).
    lr = trainingjob("lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000, "C": 0.001}, **gates)
    cluster.api.create(TJ.format(ns=namespace), lr)
    st = cluster.wait_for("TrainingJob lr finished", lambda: finished(cluster, namespace, "lr"), timeout=240)
    assert st["phase"] == "Succeeded", operator.log_tail()
    assert st["modelVersion"] == "breast-cancer-v1" and st["version"] == 1
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    job = cluster.api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{st['jobName']}")
    assert job["metadata"]["ownerReferences"][0]["kind"] == "TrainingJob"

    v1 = cluster.wait_for(
        "v1 Production",
        lambda: (lambda m: m if (m.get("status") or {}).get("stage") == "Production" else None)(
            versions(cluster, namespace)["breast-cancer-v1"]
        ),
    )
    assert v1["spec"]["metrics"]["accuracy"] > 0.9
    assert v1["spec"]["trainingJobRef"]["name"] == "lr"
    assert v1["spec"]["dataset"]["uri"] == "sklearn://breast_cancer" and len(v1["spec"]["dataset"]["sha256"]) == 64
    assert v1["status"]["promotedBy"] == "policy:lr"
    # The operator's own metrics show the decision and the reconciles behind it.
    metrics = requests.get(operator.metrics_url, timeout=5).text
    decided = f'kind="ModelVersion",name="breast-cancer-v1",namespace="{namespace}",reason="Promoted",type="Normal"'
    assert f"driftline_operator_decisions_total{{{decided}}}" in metrics  # per object
    assert 'driftline_operator_reconciles_total{kind="TrainingJob",result="ok"}' in metrics
    artifact_dir = host_path_of(cluster, namespace, v1["spec"]["artifact"]["storageUri"])
    model_bytes = (artifact_dir / "model.joblib").read_bytes()
    assert hashlib.sha256(model_bytes).hexdigest() == v1["spec"]["artifact"]["sha256"]
    profile = json.loads((artifact_dir / "profile.json").read_text())
    assert len(profile["features"]) == 30

    # A deliberately worse estimator: rejected by the must-beat gate, with the numbers in the reason.
    worse = trainingjob(
        "stump", "sklearn.tree.DecisionTreeClassifier", {"max_depth": 1}, mustBeat={"metric": "accuracy"}
    )
    cluster.api.create(TJ.format(ns=namespace), worse)
    assert (
        cluster.wait_for("stump finished", lambda: finished(cluster, namespace, "stump"), timeout=240)["phase"]
        == "Succeeded"
    )
    v2 = cluster.wait_for(
        "v2 judged",
        lambda: (lambda m: m if (m.get("status") or {}).get("stage") in ("Rejected", "Production") else None)(
            versions(cluster, namespace).get("breast-cancer-v2", {})
        ),
    )
    assert v2["status"]["stage"] == "Rejected"
    assert "must beat Production on accuracy" in v2["status"]["reason"]
    assert versions(cluster, namespace)["breast-cancer-v1"]["status"]["stage"] == "Production"

    # A better one becomes Production and v1 is archived: exactly one Production version.
    better = trainingjob(
        "lr-default",
        "sklearn.linear_model.LogisticRegression",
        {"max_iter": 5000},
        mustBeat={"metric": "accuracy", "minDelta": 0.01},
    )
    cluster.api.create(TJ.format(ns=namespace), better)
    assert (
        cluster.wait_for("lr-default finished", lambda: finished(cluster, namespace, "lr-default"), timeout=240)[
            "phase"
        ]
        == "Succeeded"
    )
    stages = cluster.wait_for(
        "v3 Production, v1 Archived",
        lambda: stages_if(
            cluster,
            namespace,
            {"breast-cancer-v1": "Archived", "breast-cancer-v2": "Rejected", "breast-cancer-v3": "Production"},
        ),
    )
    assert sum(s == "Production" for s in stages.values()) == 1

    # GitOps: an annotation asks; the operator carries it out in status and never touches the spec.
    mv_path = MV.format(ns=namespace)
    cluster.api.patch(
        f"{mv_path}/breast-cancer-v1", {"metadata": {"annotations": {"driftline.dev/promote": "true"}}}, kind="merge"
    )
    cluster.wait_for(
        "v1 back in Production",
        lambda: stages_if(cluster, namespace, {"breast-cancer-v1": "Production", "breast-cancer-v3": "Archived"}),
    )
    v1 = versions(cluster, namespace)["breast-cancer-v1"]
    assert v1["status"]["promotedBy"] == "annotation:driftline.dev/promote"
    assert v1["status"]["lastPromoteRequest"] == "true"
    assert v1["metadata"]["generation"] == 1  # spec untouched
    cluster.api.patch(
        f"{mv_path}/breast-cancer-v3",
        {"metadata": {"annotations": {"driftline.dev/reject": "leaks the label"}}},
        kind="merge",
    )
    cluster.wait_for("v3 Rejected", lambda: stages_if(cluster, namespace, {"breast-cancer-v3": "Rejected"}))
    assert "leaks the label" in versions(cluster, namespace)["breast-cancer-v3"]["status"]["reason"]
    assert versions(cluster, namespace)["breast-cancer-v1"]["status"]["stage"] == "Production"


def stages_if(cluster: Cluster, ns: str, wanted: dict[str, str]) -> dict[str, str] | None:
    stages = {n: (m.get("status") or {}).get("stage", "") for n, m in versions(cluster, ns).items()}
    return stages if all(stages.get(k) == v for k, v in wanted.items()) else None


def test_missing_target_column_fails_with_the_column_named(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    pvc(cluster, namespace)
    cluster.api.create(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "rows"},
            "data": {"train.csv": "a,b,c\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"},
        },
    )
    tj = trainingjob("csv", "sklearn.linear_model.LogisticRegression", {})
    tj["spec"]["dataset"] = {"uri": "configmap://rows/train.csv", "target": "label"}
    cluster.api.create(TJ.format(ns=namespace), tj)
    st = cluster.wait_for("csv finished", lambda: finished(cluster, namespace, "csv"), timeout=180)
    assert st["phase"] == "Failed"
    assert "MissingTargetColumn" in st["message"] and "label" in st["message"]
    stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert not versions(cluster, namespace)
    events = cluster.api.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert any(e["reason"] == "JobFailed" and e["type"] == "Warning" and "label" in e["message"] for e in events)


def test_estimator_outside_the_allow_list_is_refused_without_a_job(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    pvc(cluster, namespace)
    tj = trainingjob("evil", "sklearnx.evil.Thing", {})
    cluster.api.create(TJ.format(ns=namespace), tj)
    st = cluster.wait_for("evil refused", lambda: finished(cluster, namespace, "evil"))
    assert st["phase"] == "Failed"
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "EstimatorNotAllowed"
    assert "sklearnx.evil.Thing" in ready["message"]
    assert not cluster.api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    # Fixing the spec recovers by itself.
    cluster.api.patch(
        f"{TJ.format(ns=namespace)}/evil",
        {"spec": {"estimator": "sklearn.linear_model.LogisticRegression"}},
        kind="merge",
    )
    st = cluster.wait_for(
        "evil trained",
        lambda: (
            tj_status(cluster, namespace, "evil").get("phase") == "Succeeded" and tj_status(cluster, namespace, "evil")
        ),
        timeout=180,
    )
    assert st["modelVersion"] == "breast-cancer-v1"


def test_concurrent_runs_get_distinct_versions_and_a_killed_operator_makes_no_duplicates(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    pvc(cluster, namespace)
    names = ["a", "b", "c"]
    operator.kill()  # the runs are created while no operator runs, then it comes back and finds them all
    for n in names:
        cluster.api.create(
            TJ.format(ns=namespace), trainingjob(n, "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
        )
    operator.start()
    cluster.wait_for(
        "jobs created", lambda: len(cluster.api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]) == 3
    )
    operator.kill()  # mid-training
    operator.start()
    for n in names:
        assert (
            cluster.wait_for(f"{n} finished", lambda n=n: finished(cluster, namespace, n), timeout=240)["phase"]
            == "Succeeded"
        )
    jobs = cluster.api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs")["items"]
    assert sorted(j["metadata"]["name"] for j in jobs) == ["a-train", "b-train", "c-train"]
    mvs = versions(cluster, namespace)
    assert sorted(int(m["spec"]["version"]) for m in mvs.values()) == [1, 2, 3]
    assert sorted(tj_status(cluster, namespace, n)["modelVersion"] for n in names) == sorted(mvs)
    assert sum((m.get("status") or {}).get("stage") == "Production" for m in versions(cluster, namespace).values()) == 1


def test_a_finished_jobs_deletion_by_its_ttl_never_runs_the_training_again(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """ttlSecondsAfterFinished: 0 lets the Job controller delete each finished Job at once; the TrainingJob keeps its
    outcome (a version made, or a failure) and the operator creates no second Job."""
    pvc(cluster, namespace)
    good = trainingjob("good", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
    bad = trainingjob("bad", "sklearn.linear_model.LogisticRegression", {})
    bad["spec"]["dataset"]["target"] = "no-such-column"
    for tj in (good, bad):
        tj["spec"]["ttlSecondsAfterFinished"] = 0
        cluster.api.create(TJ.format(ns=namespace), tj)
    for name in ("good", "bad"):
        cluster.wait_for(f"{name} finished", lambda name=name: finished(cluster, namespace, name), timeout=180)
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    cluster.wait_for("both Jobs deleted by their TTL", lambda: not cluster.api.get(jobs)["items"], timeout=60)
    time.sleep(5)  # what the operator does about the deletions, it has done by now

    assert not cluster.api.get(jobs)["items"]
    good_st, bad_st = tj_status(cluster, namespace, "good"), tj_status(cluster, namespace, "bad")
    assert (good_st["phase"], good_st["modelVersion"]) == ("Succeeded", "breast-cancer-v1")
    assert bad_st["phase"] == "Failed" and "MissingTargetColumn" in bad_st["message"], bad_st
    assert list(versions(cluster, namespace)) == ["breast-cancer-v1"]
    for name in ("good", "bad"):
        created = [
            e
            for e in cluster.api.get(f"/api/v1/namespaces/{namespace}/events")["items"]
            if e["involvedObject"]["name"] == name and e["reason"] == "JobCreated"
        ]
        assert sum(e.get("count") or 1 for e in created) == 1, created
