"""Models in object storage, end to end on the real control plane and a real S3 server (SeaweedFS, authentication
on): a TrainingJob writes its artifact to s3://, the InferenceService's pods fetch it into their own storage, check
its sha256 and serve it. The keys travel by Secret reference only: no spec, status, Event or log shows them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import pytest
import requests

from driftline.devcluster import procs
from driftline.devcluster.s3 import Identity, S3Server
from driftline_runtime import storage
from tests.conftest import Cluster, ObjectStore
from tests.e2e.test_serving import (
    DIS,
    FRAME,
    MODEL,
    PORT,
    ROWS,
    Client,
    condition,
    dis,
    events_of,
    inferenceservice,
    ready_at,
    serving_pods,
    v2_body,
)
from tests.e2e.test_training import MV, TJ, finished, trainingjob, versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

SECRET = "s3-credentials"


def credentials_secret(cluster: Cluster, ns: str, identity: Identity, name: str = SECRET) -> None:
    cluster.api.create(
        f"/api/v1/namespaces/{ns}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": identity.secret_data()},
    )


def storage_spec(s3: ObjectStore, secret: str = SECRET) -> dict[str, Any]:
    return {
        "s3": {
            "endpoint": s3.server.endpoint,
            "pathStyle": True,
            "credentials": {
                "accessKeyId": {"name": secret, "key": "AWS_ACCESS_KEY_ID"},
                "secretAccessKey": {"name": secret, "key": "AWS_SECRET_ACCESS_KEY"},
            },
        }
    }


def objects(s3: ObjectStore, uri: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    return sorted(storage.list_keys(storage.parse(uri)))


def model_from_bucket(s3: ObjectStore, uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "model.joblib"
    storage.download(storage.parse(uri).child("model.joblib"), str(path))
    return joblib.load(path)


def train_to_s3(cluster: Cluster, ns: str, s3: ObjectStore, name: str = "lr") -> dict[str, Any]:
    tj = trainingjob(name, "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
    tj["spec"]["output"] = {"storageUri": f"s3://models/{ns}"}
    tj["spec"]["storage"] = storage_spec(s3)
    cluster.api.create(TJ.format(ns=ns), tj)
    st = cluster.wait_for(f"TrainingJob {name} finished", lambda: finished(cluster, ns, name), timeout=240)
    assert st["phase"] == "Succeeded", st
    return versions(cluster, ns)[f"{MODEL}-v{st['version']}"]


def test_train_to_object_storage_and_serve_from_it(
    cluster: Cluster,
    namespace: str,
    operator: OperatorProcess,
    s3: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials_secret(cluster, namespace, s3.admin)
    mv = train_to_s3(cluster, namespace, s3)
    uri = mv["spec"]["artifact"]["storageUri"]
    assert uri.startswith(f"s3://models/{namespace}/{MODEL}/lr-"), uri
    assert objects(s3, uri, monkeypatch) == ["metadata.json", "model.joblib", "profile.json"]
    cluster.wait_for(
        "v1 Production",
        lambda: (versions(cluster, namespace)[mv["metadata"]["name"]].get("status") or {}).get("stage") == "Production",
    )

    # Served by a reader that may only read the bucket: what a serving identity should be.
    credentials_secret(cluster, namespace, s3.reader, "s3-reader")
    cluster.api.create(
        DIS.format(ns=namespace), inferenceservice("bc", replicas=2, storage=storage_spec(s3, "s3-reader"))
    )
    cluster.wait_for("bc Ready on v1 with 2 pods", ready_at(cluster, namespace, "bc", 1, replicas=2), timeout=180)

    expected = [int(x) for x in model_from_bucket(s3, uri, tmp_path, monkeypatch).predict(FRAME)]
    http = requests.Session()
    http.trust_env = False
    for pod in serving_pods(cluster.api, namespace, "bc"):
        r = http.post(f"http://{pod['ip']}:{PORT}/v2/models/{MODEL}/infer", json=v2_body(ROWS), timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == expected

    # The keys went by reference only.
    seen = json.dumps(
        [
            cluster.api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/bc-stable"),
            dis(cluster, namespace, "bc"),
            versions(cluster, namespace),
            events_of(cluster, namespace, "InferenceService", "bc"),
            cluster.api.get(TJ.format(ns=namespace)),
        ]
    )
    for identity in (s3.admin, s3.reader):
        assert identity.secret_key not in seen and identity.access_key not in seen
    assert "s3-reader" in seen  # the reference is there, naming the Secret


def not_ready_because(cluster: Cluster, ns: str, name: str, reason: str, *words: str) -> Any:
    """A predicate: the service's Ready condition is False for `reason`, with every one of `words` in its message."""

    def check() -> dict[str, Any] | None:
        ready = condition(dis(cluster, ns, name).get("status") or {}, "Ready")
        if (
            ready.get("status") == "False"
            and ready.get("reason") == reason
            and all(w in ready["message"] for w in words)
        ):
            return ready
        return None

    return check


def test_refused_credentials_and_a_changed_artifact_are_reported_and_never_served(
    cluster: Cluster,
    namespace: str,
    operator: OperatorProcess,
    s3: ObjectStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials_secret(cluster, namespace, s3.admin)
    credentials_secret(cluster, namespace, s3.stranger, "s3-unknown")
    mv = train_to_s3(cluster, namespace, s3)
    uri = mv["spec"]["artifact"]["storageUri"]

    # Keys the server does not know: the rollout says so, naming the pod, the reason and what to do.
    cluster.api.create(DIS.format(ns=namespace), inferenceservice("bc", storage=storage_spec(s3, "s3-unknown")))
    ready = cluster.wait_for(
        "bc reports the refused fetch",
        not_ready_because(cluster, namespace, "bc", "ArtifactFetchFailed", "InvalidCredentials", "pod bc-stable-"),
        timeout=90,
    )
    assert "spec.storage.s3.credentials" in ready["message"]
    warnings = [
        e for e in events_of(cluster, namespace, "InferenceService", "bc") if e["reason"] == "ArtifactFetchFailed"
    ]
    assert warnings and warnings[0]["type"] == "Warning" and "InvalidCredentials" in warnings[0]["message"]
    assert not any(p["ready"] for p in serving_pods(cluster.api, namespace, "bc"))
    seen = json.dumps([dis(cluster, namespace, "bc"), events_of(cluster, namespace, "InferenceService", "bc")])
    assert s3.stranger.secret_key not in seen and s3.stranger.access_key not in seen

    # The person fixes the reference: the kubelet's next try fetches, and the service becomes Ready.
    patch = {"spec": {"storage": storage_spec(s3)}}
    cluster.api.patch(f"{DIS.format(ns=namespace)}/bc", patch, "merge")
    cluster.wait_for("bc Ready on v1", ready_at(cluster, namespace, "bc", 1), timeout=120)

    # Someone replaces the stored model after registration: a new pod refuses it.
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    import obstore
    from obstore.store import S3Store

    config, client = storage.store_settings(s3.env())
    obstore.put(
        S3Store("models", config=config, client_options=client),
        f"{uri.removeprefix('s3://models/')}/model.joblib",
        b"tampered",
    )
    cluster.api.create(DIS.format(ns=namespace), inferenceservice("bc2", storage=storage_spec(s3)))
    cluster.wait_for(
        "bc2 refuses the changed artifact",
        not_ready_because(cluster, namespace, "bc2", "ArtifactFetchFailed", "ArtifactSha256Mismatch"),
        timeout=90,
    )
    assert not any(p["ready"] for p in serving_pods(cluster.api, namespace, "bc2"))


def test_object_storage_down_during_a_training_and_during_a_rollout(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    admin = Identity("admin")
    server = S3Server(tmp_path / "s3", [admin]).start()
    try:
        server.create_bucket("models")
        store = ObjectStore(server, admin, admin, Identity("stranger"))
        credentials_secret(cluster, namespace, admin)

        # Down during a training: no version, the reason on the TrainingJob, the Job's retries spent.
        dead = storage_spec(store)
        dead["s3"]["endpoint"] = f"http://127.0.0.1:{procs.free_port()}"
        tj = trainingjob("down", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
        tj["spec"].update(output={"storageUri": "s3://models/registry"}, storage=dead, backoffLimit=1)
        cluster.api.create(TJ.format(ns=namespace), tj)
        st = cluster.wait_for("down failed", lambda: finished(cluster, namespace, "down"), timeout=240)
        assert st["phase"] == "Failed" and "EndpointUnreachable" in json.dumps(st), st
        job = cluster.api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/down-train")
        assert job["status"].get("failed") == 2  # backoffLimit 1: two tries
        assert not versions(cluster, namespace)

        # Up: v1 trained and served; v2 trained, not promoted yet.
        train_to_s3(cluster, namespace, store, "lr")
        cluster.api.create(DIS.format(ns=namespace), inferenceservice("bc", storage=storage_spec(store)))
        cluster.wait_for("bc Ready on v1", ready_at(cluster, namespace, "bc", 1), timeout=120)
        v2 = trainingjob("lr2", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000, "C": 0.5})
        v2["spec"].update(output={"storageUri": f"s3://models/{namespace}"}, storage=storage_spec(store))
        v2["spec"]["promotion"] = {"auto": False}
        cluster.api.create(TJ.format(ns=namespace), v2)
        assert (
            cluster.wait_for("lr2 done", lambda: finished(cluster, namespace, "lr2"), timeout=240)["phase"]
            == "Succeeded"
        )

        # Down while v2 rolls out: v1 keeps serving every request, the service says why v2 waits.
        with Client(cluster, namespace, "bc") as client:
            server.stop()
            annotate = {"metadata": {"annotations": {"driftline.dev/promote": "true"}}}
            cluster.api.patch(f"{MV.format(ns=namespace)}/{MODEL}-v2", annotate, "merge")
            cluster.wait_for(
                "bc reports the unreachable store",
                not_ready_because(cluster, namespace, "bc", "ArtifactFetchFailed", "EndpointUnreachable"),
                timeout=120,
            )
            assert client.answered(1, ok=True) > 0
            server.start(same_ports=True)  # back at its address, with its data: the next try fetches v2
            cluster.wait_for("bc Ready on v2", ready_at(cluster, namespace, "bc", 2), timeout=240)
        assert client.failures == [], client.failures[:5]
        assert client.answered(2, ok=True) > 0
    finally:
        server.stop()


def test_a_training_pod_that_cannot_start_says_why_on_its_trainingjob(
    cluster: Cluster, namespace: str, operator: OperatorProcess, s3: ObjectStore
) -> None:
    """The credentials' Secret is not there yet (GitOps applied the TrainingJob first): the pod waits in
    CreateContainerConfigError, and the TrainingJob says so, naming the pod, the Secret and the remedy, instead of
    "waiting for the training pod"; once the Secret exists the same Job trains."""
    tj = trainingjob("lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
    tj["spec"]["output"] = {"storageUri": f"s3://models/{namespace}"}
    tj["spec"]["storage"] = storage_spec(s3)
    cluster.api.create(TJ.format(ns=namespace), tj)

    def reports_the_missing_secret() -> dict[str, Any] | None:
        st = cluster.api.get(f"{TJ.format(ns=namespace)}/lr").get("status") or {}
        ready = condition(st, "Ready")
        if ready.get("reason") == "CreateContainerConfigError" and SECRET in ready.get("message", ""):
            return {"status": st, "ready": ready}
        return None

    seen = cluster.wait_for("lr reports the missing Secret", reports_the_missing_secret, timeout=90)
    assert seen["status"]["phase"] in ("Pending", "Running")
    assert seen["ready"]["status"] == "False" and "create the Secret" in seen["ready"]["message"]
    assert "pod lr-" in seen["ready"]["message"]
    assert condition(seen["status"], "Stalled").get("status") == "False"  # the kubelet keeps trying
    warnings = cluster.wait_for(
        "a Warning Event on lr",
        lambda: [e for e in events_of(cluster, namespace, "TrainingJob", "lr") if e["type"] == "Warning"],
    )
    assert [e["reason"] for e in warnings] == ["CreateContainerConfigError"], warnings
    assert warnings[0]["message"] == seen["ready"]["message"]

    credentials_secret(cluster, namespace, s3.admin)
    st = cluster.wait_for("TrainingJob lr finished", lambda: finished(cluster, namespace, "lr"), timeout=240)
    assert st["phase"] == "Succeeded", st
    assert condition(st, "Ready")["status"] == "True"
    assert len(versions(cluster, namespace)) == 1
