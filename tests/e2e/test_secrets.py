"""Dataset credentials are referenced, never copied: a TrainingJob downloads a dataset behind a bearer token kept in a
Secret, and the token is nowhere in the objects, Events or logs the run leaves; a wrong token fails naming HTTP 401,
and a missing Secret keeps the pod from starting until it exists.

The dataset is served over HTTPS (the only scheme the API accepts for credentials) by this test, on loopback, which
the trainer reaches because pods run as local processes. The trainer trusts the test's own CA through
SSL_CERT_FILE, which only a custom pod template can set, so the runs use the runtime image's trainer in a template:
the same download code, and the same Secret reference rendered by the operator.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import secrets
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sklearn.datasets import load_breast_cancer

from driftline_runtime.datasets import canonical_csv
from tests.conftest import Cluster
from tests.e2e.conftest import host_path_of, pvc
from tests.e2e.test_training import TJ, finished, tj_status, versions
from tests.operator_proc import OperatorProcess
from tests.pods import RESTRICTED_CONTAINER, RUNTIME_IMAGE

pytestmark = pytest.mark.e2e

CA_MOUNT = "/etc/dataset-ca"


@dataclass
class DataServer:
    """An HTTPS server answering 401 to any request without the right bearer token."""

    url: str
    token: str
    ca_pem: bytes
    authorized: list[bool] = field(default_factory=list)  # one entry per request: did it carry the right header?


def _certificates(directory: Path) -> tuple[bytes, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it: (CA PEM, cert file, key file)."""
    now = dt.datetime.now(dt.UTC)

    def issue(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = issue("dataset-test-ca", ca_key, "dataset-test-ca", ca_key, True)
    cert = issue("127.0.0.1", key, "dataset-test-ca", ca_key, False)
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crds: None) -> Iterator[OperatorProcess]:
    """The operator at its most talkative (kopf's debug log shows every patch and Event it writes), in a log of its
    own: the scan below then reads everything it said about these runs."""
    proc = OperatorProcess(cluster.kubeconfig, cluster.dir / "logs" / "operator-secrets.log", "--verbose").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def data_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataServer]:
    body = canonical_csv(load_breast_cancer(as_frame=True).frame)
    ca_pem, cert_file, key_file = _certificates(tmp_path_factory.mktemp("dataset-tls"))
    token = secrets.token_urlsafe(24)
    seen: list[bool] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.headers.get("Authorization") == f"Bearer {token}"
            seen.append(ok)
            status, payload = (200, body) if ok and self.path == "/breast_cancer.csv" else (401, b"unauthorized\n")
            self.send_response(status)
            if status == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="datasets"')
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return None

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        yield DataServer(f"https://127.0.0.1:{httpd.server_address[1]}", token, ca_pem, seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


def secret(cluster: Cluster, namespace: str, name: str, value: str) -> None:
    cluster.api.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"authorization": value}},
    )


def trust_the_test_ca(cluster: Cluster, namespace: str, server: DataServer) -> None:
    cluster.api.create(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "dataset-ca"},
            "data": {"ca.crt": server.ca_pem.decode()},
        },
    )


def trainingjob(name: str, server: DataServer, secret_name: str) -> dict[str, Any]:
    """The runtime image's trainer in a custom pod: the operator adds the contract's environment, the Secret reference
    included; the pod adds only the test CA."""
    trainer = {
        "name": "trainer",
        "image": RUNTIME_IMAGE,
        "args": [
            "train",
            "--dataset=$(DRIFTLINE_DATASET_URI)",
            "--target=$(DRIFTLINE_TARGET)",
            "--seed=$(DRIFTLINE_SEED)",
            "--validation-split=$(DRIFTLINE_VALIDATION_SPLIT)",
            "--estimator=sklearn.linear_model.LogisticRegression",
            '--params={"max_iter": 5000}',
            "--output-dir=$(DRIFTLINE_OUTPUT_DIR)",
            "--artifact-uri=$(DRIFTLINE_ARTIFACT_URI)",
            "--termination-log=$(DRIFTLINE_TERMINATION_LOG)",
            "--threads=1",
        ],
        "env": [{"name": "SSL_CERT_FILE", "value": f"{CA_MOUNT}/ca.crt"}],
        "volumeMounts": [{"name": "dataset-ca", "mountPath": CA_MOUNT, "readOnly": True}],
        **RESTRICTED_CONTAINER,
    }
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "breast-cancer",
            "dataset": {
                "uri": f"{server.url}/breast_cancer.csv",
                "authorization": {"secretKeyRef": {"name": secret_name, "key": "authorization"}},
            },
            "template": {
                "spec": {
                    "containers": [trainer],
                    "volumes": [{"name": "dataset-ca", "configMap": {"name": "dataset-ca"}}],
                }
            },
            "output": {"storageUri": "pvc://models/registry"},
            "backoffLimit": 0,
        },
    }


def pods_of(cluster: Cluster, namespace: str, job_name: str) -> list[dict[str, Any]]:
    return list(cluster.api.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=f"job-name={job_name}")["items"])


def pod_logs(cluster: Cluster, namespace: str, pods: list[dict[str, Any]]) -> list[Path]:
    """The containers' logs the pod runner keeps (what `kubectl logs` would show)."""
    found = []
    for pod in pods:
        meta = pod["metadata"]
        found += sorted(
            (cluster.dir / "runner" / "pods" / f"{namespace}_{meta['name']}_{meta['uid']}" / "logs").glob("*.log")
        )
    return found


def assert_nowhere(cluster: Cluster, namespace: str, operator: OperatorProcess, tj_name: str, needle: str) -> None:
    """The string is in none of the objects the run made, the namespace's Events, the operator's log, the trainer's log
    or the pod runner's log (the kubelet's)."""
    tj = cluster.api.get(f"{TJ.format(ns=namespace)}/{tj_name}")
    job_name = tj["status"]["jobName"]
    job = cluster.api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{job_name}")
    pods = pods_of(cluster, namespace, job_name)
    assert pods, f"no pod of {job_name}"
    objects: dict[str, Any] = {
        f"TrainingJob {tj_name}": tj,
        f"Job {job_name}": job,
        "ModelVersions": list(versions(cluster, namespace).values()),
        "Events": cluster.api.get(f"/api/v1/namespaces/{namespace}/events")["items"],
        **{f"Pod {p['metadata']['name']}": p for p in pods},
    }
    for what, obj in objects.items():
        assert needle not in json.dumps(obj), f"the secret value is in {what}"
    runners = sorted((cluster.dir / "logs").glob("pod-runner-*.log"))
    assert runners, "the pod runners' logs"
    logs = [operator.log, *runners, *pod_logs(cluster, namespace, pods)]
    assert any(p.name == "trainer.log" and p.stat().st_size > 0 for p in logs), "the trainer's log is missing"
    assert tj_name in operator.log.read_text(), "the operator's log does not mention the run: a vacuous scan"
    for path in logs:
        assert needle.encode() not in path.read_bytes(), f"the secret value is in {path}"
    # What the Job and its pods do carry: the reference, never a value.
    for template in (job["spec"]["template"], *pods):
        (env,) = [e for e in template["spec"]["containers"][0]["env"] if e["name"] == "DRIFTLINE_DATASET_AUTHORIZATION"]
        assert env == {
            "name": "DRIFTLINE_DATASET_AUTHORIZATION",
            "valueFrom": {
                "secretKeyRef": {
                    "name": tj["spec"]["dataset"]["authorization"]["secretKeyRef"]["name"],
                    "key": "authorization",
                }
            },
        }


def test_a_token_from_a_secret_downloads_the_dataset_and_leaks_nowhere(
    cluster: Cluster, namespace: str, operator: OperatorProcess, data_server: DataServer
) -> None:
    pvc(cluster, namespace)
    trust_the_test_ca(cluster, namespace, data_server)
    wrong = f"Bearer {secrets.token_urlsafe(24)}"
    secret(cluster, namespace, "dataset-token", f"Bearer {data_server.token}\n")  # made from a file: a newline
    secret(cluster, namespace, "stale-token", wrong)
    cluster.api.create(TJ.format(ns=namespace), trainingjob("good", data_server, "dataset-token"))
    cluster.api.create(TJ.format(ns=namespace), trainingjob("stale", data_server, "stale-token"))

    good = cluster.wait_for("good finished", lambda: finished(cluster, namespace, "good"), timeout=240)
    assert good["phase"] == "Succeeded", (good, operator.log_tail())
    mv = versions(cluster, namespace)[good["modelVersion"]]
    assert mv["spec"]["dataset"]["uri"] == f"{data_server.url}/breast_cancer.csv"
    assert len(mv["spec"]["dataset"]["sha256"]) == 64 and mv["spec"]["metrics"]["accuracy"] > 0.9
    assert any(data_server.authorized)  # the header did travel

    stale = cluster.wait_for("stale finished", lambda: finished(cluster, namespace, "stale"), timeout=240)
    assert stale["phase"] == "Failed"
    assert "DatasetAccessDenied" in stale["message"] and "HTTP 401" in stale["message"], stale["message"]
    assert f"{data_server.url}/breast_cancer.csv" in stale["message"]
    assert "DRIFTLINE_DATASET_AUTHORIZATION" in stale["message"]  # which setting to check, never its value

    assert_nowhere(cluster, namespace, operator, "good", data_server.token)
    assert_nowhere(cluster, namespace, operator, "stale", wrong.split()[1])
    artifact = host_path_of(cluster, namespace, mv["spec"]["artifact"]["storageUri"])
    for name in ("metadata.json", "profile.json"):
        assert data_server.token not in (artifact / name).read_text()


def test_a_missing_secret_keeps_the_pod_waiting_until_it_exists(
    cluster: Cluster, namespace: str, operator: OperatorProcess, data_server: DataServer
) -> None:
    pvc(cluster, namespace)
    trust_the_test_ca(cluster, namespace, data_server)
    cluster.api.create(TJ.format(ns=namespace), trainingjob("early", data_server, "not-yet"))

    def waiting() -> dict[str, Any] | None:
        for pod in pods_of(cluster, namespace, "early-train"):
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                if (cs["state"].get("waiting") or {}).get("reason") == "CreateContainerConfigError":
                    return dict(cs["state"]["waiting"])
        return None

    state = cluster.wait_for("the pod waiting for its Secret", waiting, timeout=90)
    assert state["message"] == 'secret "not-yet" not found'
    events = cluster.api.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert any(e["type"] == "Warning" and 'secret "not-yet" not found' in e["message"] for e in events)
    # As docs/training-contract.md says: the Job stays active, so the TrainingJob shows Running and waits, neither
    # failing nor retrying, until the Secret exists.
    assert tj_status(cluster, namespace, "early").get("phase") in ("Pending", "Running")

    secret(cluster, namespace, "not-yet", f"Bearer {data_server.token}")
    st = cluster.wait_for("early finished", lambda: finished(cluster, namespace, "early"), timeout=240)
    assert st["phase"] == "Succeeded", (st, operator.log_tail())
    assert_nowhere(cluster, namespace, operator, "early", data_server.token)
