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

from driftline.devcluster.s3 import Identity
from driftline_runtime import storage
from tests.conftest import Cluster, ObjectStore
from tests.e2e.test_serving import (
    DIS,
    FRAME,
    MODEL,
    PORT,
    ROWS,
    dis,
    events_of,
    inferenceservice,
    ready_at,
    serving_pods,
    v2_body,
)
from tests.e2e.test_training import TJ, finished, trainingjob, versions
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
