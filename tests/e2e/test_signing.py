"""Signed artifacts on the real control plane, with the operator as the chart runs it when the admin lists trusted
keys (trustedSigningKeys): a TrainingJob with spec.signing signs what it trains, its version serves; a version nobody
trusted signed is promoted, its pods refuse to load it and say why, and the rollout rolls back to the signed one,
which serves throughout."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from driftline_runtime import signing
from tests.conftest import Cluster
from tests.e2e.conftest import host_path_of, pvc, run_operator
from tests.e2e.test_serving import DIS, MODEL, dis, events_of, inferenceservice, ready_at, serving_pods
from tests.e2e.test_training import TJ, finished, trainingjob, versions
from tests.keys import key_pair
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

PRIVATE, PUBLIC = key_pair()
STRANGER_PRIVATE, _ = key_pair()


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crds: None) -> Iterator[OperatorProcess]:
    """The operator with the chart's trustedSigningKeys: one team's public key."""
    proc = run_operator(cluster, "operator-signing.log", {"DRIFTLINE_TRUSTED_KEYS": PUBLIC})
    yield proc
    proc.stop()


def key_secret(cluster: Cluster, ns: str, name: str, private_key: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"private.pem": private_key},
    }
    cluster.api.create(f"/api/v1/namespaces/{ns}/secrets", body)


def ready_saying(cluster: Cluster, ns: str, name: str, words: str) -> Any:
    """A predicate: the service's Ready message, once it holds `words`."""

    def check() -> str | None:
        conditions = (dis(cluster, ns, name).get("status") or {}).get("conditions") or []
        return next((c["message"] for c in conditions if c["type"] == "Ready" and words in c.get("message", "")), None)

    return check


def trained(cluster: Cluster, ns: str, name: str, key_secret_name: str | None) -> dict[str, Any]:
    """Train a version (promoted on its own) and return its ModelVersion once it is Production."""
    tj = trainingjob(name, "sklearn.linear_model.LogisticRegression", {"max_iter": 200})
    if key_secret_name:
        tj["spec"]["signing"] = {"secretKeyRef": {"name": key_secret_name, "key": "private.pem"}}
    cluster.api.create(TJ.format(ns=ns), tj)
    st = cluster.wait_for(f"TrainingJob {name} finished", lambda: finished(cluster, ns, name), timeout=240)
    assert st["phase"] == "Succeeded", st
    mv_name = f"{MODEL}-v{st['version']}"

    def production() -> bool:
        return (versions(cluster, ns)[mv_name].get("status") or {}).get("stage") == "Production"

    cluster.wait_for(f"{mv_name} Production", production)
    return versions(cluster, ns)[mv_name]


def test_only_a_version_a_trusted_key_signed_serves(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    ns = namespace
    pvc(cluster, ns)
    key_secret(cluster, ns, "model-signing", PRIVATE)
    key_secret(cluster, ns, "someone-else", STRANGER_PRIVATE)

    v1 = trained(cluster, ns, "signed", "model-signing")
    assert v1["spec"]["artifact"]["signedBy"] == signing.fingerprint(PUBLIC)
    files = host_path_of(cluster, ns, v1["spec"]["artifact"]["storageUri"])
    assert (files / "model.sig").is_file()
    assert PRIVATE.split("\n")[1] not in str(cluster.api.get(f"{TJ.format(ns=ns)}/signed"))

    service = inferenceservice("bc", rollout={"progressDeadlineSeconds": 30})
    cluster.api.create(DIS.format(ns=ns), service)
    cluster.wait_for("bc Ready on the signed v1", ready_at(cluster, ns, "bc", 1), timeout=120)

    # Signed, but by a key the cluster does not trust: promoted all the same (promotion is not trust), never served.
    v2 = trained(cluster, ns, "other-key", "someone-else")
    assert v2["spec"]["artifact"]["signedBy"] != signing.fingerprint(PUBLIC)

    message = cluster.wait_for(
        "bc says why v2's pods do not start", ready_saying(cluster, ns, "bc", "ArtifactSignatureInvalid"), timeout=90
    )
    assert "model.sig does not verify with any of the 1 trusted key(s)" in message
    assert any(p["version"] == 1 and p["ready"] for p in serving_pods(cluster.api, ns, "bc"))  # v1 still serves

    def rolled_back() -> dict[str, Any] | None:
        st = dis(cluster, ns, "bc").get("status") or {}
        history = st.get("history") or []
        return st if history and history[-1]["action"] == "Rollback" else None

    st = cluster.wait_for("the rollback of v2", rolled_back, timeout=150)
    assert (st["history"][-1]["fromVersion"], st["history"][-1]["toVersion"]) == (2, 1)
    cluster.wait_for("bc Ready on v1 again", ready_at(cluster, ns, "bc", 1), timeout=60)
    assert versions(cluster, ns)[f"{MODEL}-v2"]["status"]["stage"] == "RolledBack"

    # Unsigned: the same, with its own reason.
    trained(cluster, ns, "unsigned", None)
    message = cluster.wait_for(
        "bc says v3 is unsigned", ready_saying(cluster, ns, "bc", "ArtifactNotSigned"), timeout=90
    )
    assert "model.sig is missing" in message
    warnings = [e["message"] for e in events_of(cluster, ns, "InferenceService", "bc") if e["type"] == "Warning"]
    assert any("ArtifactSignatureInvalid" in w for w in warnings), warnings
