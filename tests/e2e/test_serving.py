"""InferenceService -> Deployment of the runtime (run by the pod runner) on the real control plane: serve, predict over
both protocols, roll forward on promotion with no failed request, roll back on request or past the progress
deadline, pins, scaling and garbage collection."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import joblib
import numpy as np
import pytest
import requests
from sklearn.datasets import load_breast_cancer

from driftline.devcluster.kubeapi import ApiError, KubeApi
from tests.conftest import Cluster
from tests.e2e.conftest import audit_mark, host_path_of, operator_reads, pvc
from tests.e2e.test_training import MV, TJ, finished, trainingjob, versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

DIS = "/apis/driftline.dev/v1alpha1/namespaces/{ns}/inferenceservices"
MODEL = "breast-cancer"
PORT = 8080
FRAME = load_breast_cancer(as_frame=True).data.iloc[::50]  # 12 rows, both classes among them
ROWS = FRAME.to_numpy()


def inferenceservice(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"model": MODEL, **spec},
    }


def dis(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict(cluster.api.get(f"{DIS.format(ns=ns)}/{name}"))


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c["type"] == ctype), {})


def ready_at(cluster: Cluster, ns: str, name: str, version: int, replicas: int = 1) -> Any:
    """A predicate: the service is Ready, serving `version` on `replicas` ready pods, and nothing else runs."""

    def check() -> dict[str, Any] | None:
        st = dis(cluster, ns, name).get("status") or {}
        if condition(st, "Ready").get("status") != "True" or st.get("activeVersion") != version:
            return None
        pods = serving_pods(cluster.api, ns, name)
        if st.get("readyReplicas") != replicas or len(pods) != replicas:
            return None
        return st if all(p["version"] == version and p["ready"] for p in pods) else None

    return check


def serving_pods(api: KubeApi, ns: str, name: str) -> list[dict[str, Any]]:
    """The service's pods that are not terminating (a shadow challenger's are not the service's): their IP, version
    and readiness."""
    selector = f"driftline.dev/inferenceservice={name},driftline.dev/track!=shadow"
    items = api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]
    out = []
    for pod in items:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        out.append(
            {
                "ip": status.get("podIP"),
                "ready": ready and bool(status.get("podIP")),
                "version": int(pod["metadata"]["labels"]["driftline.dev/version"]),
            }
        )
    return out


def train(cluster: Cluster, ns: str, name: str, estimator: str, params: dict[str, Any]) -> int:
    cluster.api.create(TJ.format(ns=ns), trainingjob(name, estimator, params))
    st = cluster.wait_for(f"TrainingJob {name} finished", lambda: finished(cluster, ns, name), timeout=240)
    assert st["phase"] == "Succeeded", st
    version = int(st["version"])
    cluster.wait_for(
        f"version {version} Production",
        lambda: (versions(cluster, ns)[f"{MODEL}-v{version}"].get("status") or {}).get("stage") == "Production",
    )
    return version


def restored_to_production(cluster: Cluster, ns: str, version: int, why: str) -> None:
    """After a rollback the registry says what serves: the version traffic went back to is Production again, with a
    Restored Event, and the one rolled back is not."""
    name = f"{MODEL}-v{version}"
    status = versions(cluster, ns)[name]["status"]
    assert (status["stage"], status["promotedBy"]) == ("Production", "rollback"), status
    assert why in status["reason"], status["reason"]
    assert [s for s in stages(cluster, ns).values() if s == "Production"] == ["Production"]

    def told() -> list[str]:  # kopf posts Events from a queue: a moment after the status
        return [e["message"] for e in events_of(cluster, ns, "ModelVersion", name) if e["reason"] == "Restored"]

    said = cluster.wait_for(f"the Restored Event of {name}", told, timeout=30)
    assert f"{name} is now Production (serving again since" in said[0], said
    (event,) = [e for e in events_of(cluster, ns, "ModelVersion", name) if e["reason"] == "Restored"][-1:]
    assert (
        event["reportingComponent"] == "driftline.dev/operator"
        and event["source"]["component"] == event["reportingComponent"]
    )
    assert event["reportingInstance"] not in ("", "dev") and event["metadata"]["name"].startswith("driftline-")


def stages(cluster: Cluster, ns: str) -> dict[str, str]:
    return {name: (mv.get("status") or {}).get("stage", "") for name, mv in versions(cluster, ns).items()}


def snapshot(cluster: Cluster, ns: str) -> dict[str, str]:
    paths = [
        f"{DIS.format(ns=ns)}/bc",
        f"/apis/apps/v1/namespaces/{ns}/deployments/bc-stable",
        f"/api/v1/namespaces/{ns}/services/bc",
    ]
    return {p: cluster.api.get(p)["metadata"]["resourceVersion"] for p in paths}


def events_of(cluster: Cluster, ns: str, kind: str, name: str) -> list[dict[str, Any]]:
    items = cluster.api.get(f"/api/v1/namespaces/{ns}/events")["items"]
    return [e for e in items if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name]


def warnings_of(cluster: Cluster, ns: str, kind: str, name: str) -> list[str]:
    """The reasons of the Warning Events on an object, once there is one: kopf posts Events from a queue, so one may
    land a moment after the status that the same decision wrote."""
    said: list[str] = cluster.wait_for(
        f"a Warning Event on {kind} {name}",
        lambda: [e["reason"] for e in events_of(cluster, ns, kind, name) if e["type"] == "Warning"],
        timeout=30,
    )
    return said


class Client:
    """Loops V2 requests against whichever pods are ready and not terminating right now, as a load balancer
    following the endpoints would; counts every answer by the pod's version and status, with connection errors as
    failures."""

    def __init__(self, cluster: Cluster, ns: str, name: str) -> None:
        self.api = KubeApi(cluster.kubeconfig, user_agent="driftline-tests-client")
        self.ns, self.name = ns, name
        self.answers: Counter[tuple[int, str]] = Counter()
        self.versions: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._http = requests.Session()
        self._http.trust_env = False

    def __enter__(self) -> Client:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def answered(self, version: int, ok: bool | None = None) -> int:
        """Answers from pods of `version`: all of them, only 2xx (ok=True) or only the others (ok=False)."""
        return sum(
            n for (v, code), n in self.answers.items() if v == version and (ok is None or code.startswith("2") is ok)
        )

    def _loop(self) -> None:
        body = v2_body(ROWS[:2])
        turn = 0
        while not self._stop.is_set():
            try:
                pods = [p for p in serving_pods(self.api, self.ns, self.name) if p["ready"]]
            except (ApiError, requests.RequestException):
                continue
            if not pods:
                time.sleep(0.05)
                continue
            pod = pods[turn % len(pods)]
            turn += 1
            try:
                r = self._http.post(f"http://{pod['ip']}:{PORT}/v2/models/{MODEL}/infer", json=body, timeout=10)
            except requests.RequestException as e:
                self.answers[(pod["version"], "error")] += 1
                self.failures.append(f"{pod}: {e}")
                continue
            self.answers[(pod["version"], str(r.status_code))] += 1
            if r.ok:
                self.versions[r.json()["model_version"]] += 1
            else:
                self.failures.append(f"{pod}: {r.status_code} {r.text[:200]}")


def v2_body(rows: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]
    }


def predictions_match(cluster: Cluster, ns: str, name: str, version: int) -> None:
    """Over V1 and V2, straight to a ready pod: the answers equal model.predict on the same rows."""
    mv = versions(cluster, ns)[f"{MODEL}-v{version}"]
    model = joblib.load(host_path_of(cluster, ns, mv["spec"]["artifact"]["storageUri"]) / "model.joblib")
    expected = [int(x) for x in model.predict(FRAME)]
    (pod,) = [p for p in serving_pods(cluster.api, ns, name) if p["ready"]]
    base = f"http://{pod['ip']}:{PORT}"
    http = requests.Session()
    http.trust_env = False
    v1 = http.post(f"{base}/v1/models/{MODEL}:predict", json={"instances": ROWS.tolist()}, timeout=10)
    assert v1.status_code == 200, v1.text
    assert v1.json()["predictions"] == expected
    v2 = http.post(f"{base}/v2/models/{MODEL}/infer", json=v2_body(ROWS), timeout=10)
    assert v2.status_code == 200, v2.text
    (out,) = v2.json()["outputs"]
    assert out["shape"] == [len(ROWS), 1] and out["data"] == expected
    assert v2.json()["model_version"] == str(version)
    assert 0 < sum(expected) < len(expected)  # both classes among the rows: the comparison means something


@pytest.fixture
def served(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Iterator[str]:
    """A namespace with breast-cancer v1 trained and Production, and the InferenceService `bc` following it."""
    pvc(cluster, namespace)
    assert train(cluster, namespace, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    cluster.api.create(DIS.format(ns=namespace), inferenceservice("bc"))
    st = cluster.wait_for("bc Ready on v1", ready_at(cluster, namespace, "bc", 1), timeout=120)
    assert st["url"] == f"http://bc.{namespace}.svc.cluster.local/v2/models/{MODEL}/infer"
    yield namespace


def test_serve_roll_forward_without_failed_requests_then_roll_back(
    cluster: Cluster, served: str, operator: OperatorProcess
) -> None:
    ns = served
    st = dis(cluster, ns, "bc")["status"]
    assert (st["phase"], st["replicas"], st["readyReplicas"]) == ("Ready", 1, 1)
    assert st["selector"] == "driftline.dev/inferenceservice=bc,driftline.dev/track=stable"
    assert [(h["action"], h.get("fromVersion"), h["toVersion"]) for h in st["history"]] == [("RollForward", None, 1)]
    dep = cluster.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/bc-stable")
    assert dep["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    svc = cluster.api.get(f"/api/v1/namespaces/{ns}/services/bc")
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["name"] == "http"
    predictions_match(cluster, ns, "bc", 1)

    # Promote v2 while a client loops requests: the rolling update drops none.
    with Client(cluster, ns, "bc") as client:
        cluster.wait_for("the client under way", lambda: client.answered(1) >= 20)
        assert train(cluster, ns, "lr2", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000, "C": 0.5}) == 2
        st = cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2), timeout=120)
        cluster.wait_for("v2 answering", lambda: client.versions["2"] >= 20)
    assert client.failures == [], client.failures[:5]
    assert client.versions["1"] >= 20 and client.versions["2"] >= 20, client.versions
    assert (st["activeVersion"], st["previousVersion"]) == (2, 1)
    assert st["history"][-1]["action"] == "RollForward" and st["history"][-1]["reason"] == "Promoted"
    predictions_match(cluster, ns, "bc", 2)
    assert any(
        e["reason"] == "RollingOut" and "version 2" in e["message"]
        for e in events_of(cluster, ns, "InferenceService", "bc")
    )

    # A person asks for a rollback: traffic returns to v1 and v2 is RolledBack, once per token.
    cluster.api.patch(
        f"{DIS.format(ns=ns)}/bc", {"metadata": {"annotations": {"driftline.dev/rollback": "incident-42"}}}, "merge"
    )
    st = cluster.wait_for("bc back on v1", ready_at(cluster, ns, "bc", 1), timeout=120)
    assert st["lastRollbackRequest"] == "incident-42"
    last = st["history"][-1]
    assert (last["action"], last["fromVersion"], last["toVersion"], last["reason"]) == (
        "Rollback",
        2,
        1,
        "RollbackRequested",
    )
    assert "incident-42" in last["message"]
    v2 = versions(cluster, ns)[f"{MODEL}-v2"]
    assert v2["status"]["stage"] == "RolledBack" and "incident-42" in v2["status"]["reason"]
    assert any(
        e["reason"] == "RollbackRequested" and e["type"] == "Warning"
        for e in events_of(cluster, ns, "InferenceService", "bc")
    )

    # Auto-follow does not pick v2 again: another pass (a scale-up) keeps v1, now on two pods.
    cluster.api.patch(f"{DIS.format(ns=ns)}/bc", {"spec": {"replicas": 2}}, "merge")
    st = cluster.wait_for("bc on two v1 pods", ready_at(cluster, ns, "bc", 1, replicas=2), timeout=120)
    assert st["activeVersion"] == 1 and len(st["history"]) == 3
    predictions_match_any = serving_pods(cluster.api, ns, "bc")
    assert {p["version"] for p in predictions_match_any} == {1}


def test_pins_scale_subresource_and_garbage_collection(
    cluster: Cluster, served: str, operator: OperatorProcess
) -> None:
    ns = served
    dis_path = f"{DIS.format(ns=ns)}/bc"
    # A pin to a version that does not exist: Ready=False with the reason, a Warning, and v1 keeps serving.
    cluster.api.patch(dis_path, {"spec": {"version": 7}}, "merge")

    def not_found() -> dict[str, Any] | None:
        st = dis(cluster, ns, "bc").get("status") or {}
        return st if condition(st, "Ready").get("reason") == "VersionNotFound" else None

    st = cluster.wait_for("VersionNotFound", not_found)
    ready = condition(st, "Ready")
    assert ready["status"] == "False" and "breast-cancer-v7" in ready["message"]
    assert condition(st, "Stalled")["status"] == "True" and condition(st, "Degraded")["status"] == "True"
    assert st["phase"] == "Degraded" and st["activeVersion"] == 1
    assert any(
        e["reason"] == "VersionNotFound" and e["type"] == "Warning"
        for e in events_of(cluster, ns, "InferenceService", "bc")
    )
    assert [p["version"] for p in serving_pods(cluster.api, ns, "bc")] == [1]
    # Fixed in the spec: recovers by itself.
    cluster.api.patch(dis_path, {"spec": {"version": 1}}, "merge")
    st = cluster.wait_for("bc Ready on pinned v1", ready_at(cluster, ns, "bc", 1))
    assert condition(st, "Stalled")["status"] == "False"

    # Scaling through the scale subresource (kubectl scale / an HPA).
    cluster.kubectl("scale", "-n", ns, "inferenceservice.driftline.dev/bc", "--replicas=2")
    cluster.wait_for("two ready pods", ready_at(cluster, ns, "bc", 1, replicas=2), timeout=120)
    scale = cluster.api.get(f"{dis_path}/scale")
    assert (
        scale["status"]["replicas"] == 2 and scale["status"]["selector"] == dis(cluster, ns, "bc")["status"]["selector"]
    )

    # At steady state an operator restart rewrites nothing: no status write, no Deployment or Service patch.
    time.sleep(3)
    before = snapshot(cluster, ns)
    operator.kill()
    operator.start()
    time.sleep(10)  # the resume handlers run
    assert snapshot(cluster, ns) == before

    # Deleting the InferenceService takes its Deployment, Service and pods with it.
    cluster.api.delete(dis_path)

    def gone() -> bool:
        deps = cluster.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments")["items"]
        svcs = cluster.api.get(f"/api/v1/namespaces/{ns}/services")["items"]
        pods = cluster.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector="driftline.dev/inferenceservice")
        return not deps and not svcs and not pods["items"]

    cluster.wait_for("children garbage-collected", gone, timeout=120)


def test_rollout_past_the_progress_deadline_is_rolled_back(
    cluster: Cluster, served: str, operator: OperatorProcess
) -> None:
    """A version whose pods never become ready (its artifact's digest does not match, so the server refuses to start)
    is rolled back once the Deployment reports ProgressDeadlineExceeded; v1 serves throughout."""
    ns = served
    cluster.api.patch(f"{DIS.format(ns=ns)}/bc", {"spec": {"rollout": {"progressDeadlineSeconds": 30}}}, "merge")
    v1 = versions(cluster, ns)[f"{MODEL}-v1"]
    # A copy of v1's files, since two versions never share an artifact.
    uri = v1["spec"]["artifact"]["storageUri"]
    shutil.copytree(host_path_of(cluster, ns, uri), host_path_of(cluster, ns, f"{uri}-copy"))
    bad = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"{MODEL}-v2", "annotations": {"driftline.dev/promote": "true"}},
        "spec": {
            "model": MODEL,
            "version": 2,
            "artifact": {**v1["spec"]["artifact"], "storageUri": f"{uri}-copy", "sha256": "0" * 64},
            "description": "v1's files under a digest they do not have",
        },
    }
    cluster.api.create(MV.format(ns=ns), bad)

    def rolled_back() -> dict[str, Any] | None:
        st = dis(cluster, ns, "bc").get("status") or {}
        history = st.get("history") or []
        return st if history and history[-1]["action"] == "Rollback" else None

    st = cluster.wait_for("the deadline rollback", rolled_back, timeout=150)
    last = st["history"][-1]
    assert (last["fromVersion"], last["toVersion"], last["reason"]) == (2, 1, "ProgressDeadlineExceeded")
    st = cluster.wait_for("bc Ready on v1 again", ready_at(cluster, ns, "bc", 1), timeout=60)
    v2 = versions(cluster, ns)[f"{MODEL}-v2"]
    assert v2["status"]["stage"] == "RolledBack" and "30s" in v2["status"]["reason"]
    # Why, in the operator's own words: the pod, its container and the server's last words.
    assert "pod bc-stable-" in v2["status"]["reason"] and "sha256 mismatch" in v2["status"]["reason"], v2["status"]
    restored_to_production(cluster, ns, 1, "v2 was rolled back (ProgressDeadlineExceeded)")
    assert any(
        e["reason"] == "ProgressDeadlineExceeded" and e["type"] == "Warning"
        for e in events_of(cluster, ns, "InferenceService", "bc")
    )


def test_canary_of_a_bad_version_is_aborted_and_a_good_one_promoted(
    cluster: Cluster, served: str, operator: OperatorProcess
) -> None:
    """Strategy Canary: a version trained on other features answers the live requests 400, the analysis fails it and
    the stable version keeps serving; then a good version passes the analysis and becomes stable."""
    ns = served
    dis_path = f"{DIS.format(ns=ns)}/bc"
    analysis = {"interval": "2s", "count": 2, "minSamples": 5}
    canary = {"steps": [{"weight": 50}], "analysis": analysis}
    cluster.api.patch(dis_path, {"spec": {"rollout": {"strategy": "Canary", "canary": canary}}}, "merge")

    with Client(cluster, ns, "bc") as client:
        cluster.wait_for("the client under way", lambda: client.answered(1) >= 20)
        narrow = trainingjob("narrow", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
        narrow["spec"]["dataset"]["features"] = list(FRAME.columns[:10])
        cluster.api.create(TJ.format(ns=ns), narrow)

        def aborted() -> dict[str, Any] | None:
            st = dis(cluster, ns, "bc").get("status") or {}
            return st if any(h["action"] == "CanaryAborted" for h in st.get("history") or []) else None

        st = cluster.wait_for("the canary of v2 aborted", aborted, timeout=240)
        assert client.answered(2, ok=False) > 0, client.answers  # the canary did get traffic, and failed it
        st = cluster.wait_for("bc Ready on v1 alone", ready_at(cluster, ns, "bc", 1), timeout=60)
        assert client.answered(1, ok=False) == 0, client.failures[:5]  # the stable version kept serving
    last = next(h for h in st["history"] if h["action"] == "CanaryAborted")
    assert (last["fromVersion"], last["toVersion"], last["reason"]) == (1, 2, "AnalysisFailed")
    assert st["analysis"]["phase"] == "Failed" and st["analysis"]["version"] == 2
    failed = [m for m in st["analysis"]["measurements"] if m["phase"] == "Failed"]
    assert failed and failed[0]["metric"] == "error-rate" and failed[0]["value"] == 1.0 and failed[0]["max"] == 0.05
    assert "canaryVersion" not in st
    v2 = versions(cluster, ns)[f"{MODEL}-v2"]
    assert v2["status"]["stage"] == "RolledBack" and "error-rate 1" in v2["status"]["reason"]
    restored_to_production(cluster, ns, 1, "v2 was rolled back (AnalysisFailed)")
    assert any(
        e["reason"] == "AnalysisFailed" and e["type"] == "Warning"
        for e in events_of(cluster, ns, "InferenceService", "bc")
    )
    assert not cluster.api.get_or_none(f"/apis/apps/v1/namespaces/{ns}/deployments/bc-canary")
    # The operator exports each measured value with its bounds.
    gauges = requests.get(operator.metrics_url, timeout=5).text
    labels = f'inferenceservice="bc",metric="error-rate",namespace="{ns}",version="2"'
    assert f'driftline_operator_analysis_measurement{{field="value",{labels}}} 1.0' in gauges
    assert f'driftline_operator_analysis_measurement{{field="max",{labels}}} 0.05' in gauges

    # A good version passes and is promoted to stable, again without a failed request.
    with Client(cluster, ns, "bc") as client:
        cluster.wait_for("the client under way", lambda: client.answered(1) >= 20)
        assert train(cluster, ns, "good", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000, "C": 0.5}) == 3
        st = cluster.wait_for("bc Ready on v3", ready_at(cluster, ns, "bc", 3), timeout=240)
    assert client.failures == [], client.failures[:5]
    assert client.answered(3, ok=True) > 0
    actions = [(h["action"], h.get("fromVersion"), h["toVersion"]) for h in st["history"]]
    assert actions[-2:] == [("CanaryStarted", 1, 3), ("CanaryPromoted", 1, 3)]
    assert st["analysis"]["phase"] == "Successful" and st["analysis"]["successful"] == 2
    assert (st["activeVersion"], st["previousVersion"]) == (3, 1)
    assert not cluster.api.get_or_none(f"/apis/apps/v1/namespaces/{ns}/deployments/bc-canary")


def test_a_canary_without_traffic_pauses_and_goes_on_once_traffic_comes(
    cluster: Cluster, served: str, operator: OperatorProcess
) -> None:
    """A quiet environment (no client at all): the canary's analysis has nothing to judge, so the canary pauses at
    its step and says why, instead of rolling a good version back; once requests come it passes and is promoted."""
    ns = served
    dis_path = f"{DIS.format(ns=ns)}/bc"
    canary = {"steps": [{"weight": 50}], "analysis": {"interval": "2s", "count": 2, "minSamples": 5}}
    cluster.api.patch(dis_path, {"spec": {"rollout": {"strategy": "Canary", "canary": canary}}}, "merge")
    assert train(cluster, ns, "quiet", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000, "C": 0.5}) == 2

    def paused() -> str | None:
        st = dis(cluster, ns, "bc").get("status") or {}
        ready = condition(st, "Ready")
        return ready.get("message") if ready.get("reason") == "AnalysisPaused" else None

    said = cluster.wait_for("the canary paused for lack of traffic", paused, timeout=180)
    assert "canary of version 2 paused at step 0 (50%)" in said and "fewer than minSamples 5" in said, said
    st = dis(cluster, ns, "bc")["status"]
    assert st["phase"] == "Progressing" and st["canaryVersion"] == 2 and st["analysis"]["paused"] is True
    assert condition(st, "Progressing")["reason"] == "AnalysisPaused"
    mark = audit_mark(cluster)
    time.sleep(6)  # three more intervals without traffic: still paused, nothing rolled back
    # Each second's canary tick reads what it needs from the operator's view of the cluster; only the metrics
    # rounds ask for the pods whose /metrics they read.
    reads = operator_reads(cluster, mark, ns, by=("InferenceService",))
    assert set(reads) <= {"list pods"} and reads, reads
    st = dis(cluster, ns, "bc")["status"]
    assert st["analysis"]["phase"] == "Running" and st["canaryVersion"] == 2
    assert versions(cluster, ns)[f"{MODEL}-v2"]["status"]["stage"] == "Production"
    gauges = requests.get(operator.metrics_url, timeout=5).text
    assert f'inferenceservice="bc",namespace="{ns}",phase="Progressing",version="1"}} 1.0' in gauges
    paused_events = [e for e in events_of(cluster, ns, "InferenceService", "bc") if e["reason"] == "AnalysisPaused"]
    assert len(paused_events) == 1 and paused_events[0]["type"] == "Normal", paused_events  # told once

    with Client(cluster, ns, "bc") as client:
        st = cluster.wait_for("v2 promoted once traffic came", ready_at(cluster, ns, "bc", 2), timeout=180)
    assert client.failures == [], client.failures[:5]
    actions = [(h["action"], h["toVersion"]) for h in st["history"]]
    assert actions[-2:] == [("CanaryStarted", 2), ("CanaryPromoted", 2)] and ("CanaryAborted", 2) not in actions
    assert st["analysis"]["phase"] == "Successful" and not st["analysis"].get("paused")
    # The state gauge follows: one series for the service, Ready on v2 (Progressing on v1 before).
    gauges = requests.get(operator.metrics_url, timeout=5).text
    info = [line for line in gauges.splitlines() if line.startswith("driftline_inferenceservice_info{")]
    mine = [line for line in info if f'namespace="{ns}"' in line]
    assert mine == [
        f'driftline_inferenceservice_info{{inferenceservice="bc",namespace="{ns}",phase="Ready",version="2"}} 1.0'
    ], mine
