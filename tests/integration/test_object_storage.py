"""The runtime against a real S3 server (SeaweedFS, authentication on): artifacts published and fetched by Driftline's
rules, datasets read from buckets, and every refusal told as a reason a person can act on, without a credential.

No Kubernetes here: the runtime's functions and commands run in this process or as subprocesses, configured through
the same environment variables the operator renders into pods.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from driftline.devcluster.s3 import Identity
from driftline_runtime import artifact, datasets, signing, storage
from driftline_runtime.artifact import METADATA_FILE, MODEL_FILE, PROFILE_FILE
from driftline_runtime.profile import build_profile
from driftline_runtime.server.model import ModelLoadError, load_model
from driftline_runtime.termination import Failure
from tests.conftest import ObjectStore
from tests.keys import key_pair

pytestmark = pytest.mark.integration


@pytest.fixture
def as_admin(s3: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return s3


def use(monkeypatch: pytest.MonkeyPatch, s3: ObjectStore, identity: Identity) -> None:
    for name, value in s3.env(identity).items():
        monkeypatch.setenv(name, value)


def prefix() -> storage.ObjectUri:
    """A fresh prefix in bucket `models`, as a TrainingJob run gets one."""
    return storage.ObjectUri("models", f"registry/iris/run-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifact directory as the trainer writes it."""
    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    names = list(x.columns)
    metadata: dict[str, Any] = {
        "formatVersion": 1,
        "task": "classification",
        "target": "target",
        "features": [{"name": n, "dtype": "float64"} for n in names],
        "classes": [0, 1, 2],
        "metrics": {"accuracy": 0.97},
        "estimator": "sklearn.linear_model.LogisticRegression",
        "framework": "scikit-learn",
        "frameworkVersion": "x",
        "dataset": {"uri": "sklearn://iris"},
        "createdAt": "2026-12-04T00:00:00Z",
    }
    directory = tmp_path_factory.mktemp("artifact") / "a"
    artifact.write_artifact(
        str(directory), model, metadata, build_profile(x, model.predict(x), 10, task="classification")
    )
    return directory


def sha_of(directory: Path) -> str:
    return json.loads((directory / METADATA_FILE).read_text())["artifact"]["sha256"]


def test_a_published_artifact_is_fetched_whole_and_served(as_admin: ObjectStore, written: Path, tmp_path: Path) -> None:
    where = prefix()
    artifact.publish(str(written), where)
    assert sorted(storage.list_keys(where)) == sorted([MODEL_FILE, PROFILE_FILE, METADATA_FILE])
    metadata = artifact.fetch(where, str(tmp_path / "models"), sha_of(written))
    assert metadata["artifact"]["sha256"] == sha_of(written)
    assert sorted(os.listdir(tmp_path / "models")) == sorted([MODEL_FILE, PROFILE_FILE, METADATA_FILE])
    served = load_model(tmp_path / "models", "iris", "1", sha_of(written))
    rows = pd.DataFrame(np.ones((1, 4)), columns=list(served.feature_names))
    assert served.estimator.predict(rows).shape == (1,)


def test_a_forests_compiled_trees_travel_with_it_signed_and_serve(as_admin: ObjectStore, tmp_path: Path) -> None:
    """model.treelite is published before metadata.json, signed with the rest, fetched, and used by the server."""
    from driftline_runtime.train import main

    private, public = key_pair()
    local, where = tmp_path / "forest", prefix()
    argv = ["--dataset", "sklearn://iris", "--estimator", "sklearn.ensemble.RandomForestClassifier", "--threads", "1"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(signing.SIGNING_KEY_ENV, private)
        assert main([*argv, "--output-dir", str(where), "--termination-log", str(tmp_path / "log")]) == 0
    summary = json.loads((tmp_path / "log").read_text())
    assert summary["artifact"]["predictor"] == "treelite"
    stored = [MODEL_FILE, "model.treelite", PROFILE_FILE, METADATA_FILE, "model.sig"]
    assert sorted(storage.list_keys(where)) == sorted(stored)
    artifact.fetch(where, str(local), summary["artifact"]["sha256"])
    assert sorted(os.listdir(local)) == sorted(stored)
    served = load_model(local, "iris", "1", summary["artifact"]["sha256"], [public])
    assert served.predictor_kind == "treelite"
    rows = load_iris().data[:10]
    assert served.predictor.predict(rows).tolist() == served.estimator.predict(rows).tolist()


def test_a_version_is_never_overwritten(as_admin: ObjectStore, written: Path) -> None:
    where = prefix()
    artifact.publish(str(written), where)
    with pytest.raises(Failure) as refused:
        artifact.publish(str(written), where)
    assert refused.value.reason == "OutputNotEmpty"
    # Even past the listing (two writers racing), a put where an object exists is refused by the service itself.
    with pytest.raises(storage.StorageFailure) as raced:
        storage.upload_new(str(written / METADATA_FILE), where.child(METADATA_FILE))
    assert raced.value.reason == "AlreadyExists"


def test_an_upload_cut_before_metadata_json_is_not_an_artifact(
    as_admin: ObjectStore, written: Path, tmp_path: Path
) -> None:
    where = prefix()
    storage.upload_new(str(written / MODEL_FILE), where.child(MODEL_FILE))  # the trainer died here
    with pytest.raises(Failure) as incomplete:
        artifact.fetch(where, str(tmp_path / "m"), sha_of(written))
    assert incomplete.value.reason == "ArtifactIncomplete"
    with pytest.raises(Failure) as absent:
        artifact.fetch(prefix(), str(tmp_path / "n"), sha_of(written))
    assert absent.value.reason == "NoSuchKey"


def test_an_artifact_changed_after_registration_is_not_fetched(
    as_admin: ObjectStore, written: Path, tmp_path: Path
) -> None:
    where = prefix()
    artifact.publish(str(written), where)
    with pytest.raises(Failure) as changed:
        artifact.fetch(where, str(tmp_path / "m"), "0" * 64)  # the ModelVersion recorded other bytes
    assert changed.value.reason == "ArtifactSha256Mismatch"
    assert not (tmp_path / "m" / MODEL_FILE).exists()


@pytest.mark.parametrize(
    ("who", "reason"),
    [("stranger", "InvalidCredentials"), ("reader", "AccessDenied")],
    ids=["unknown keys", "a read-only identity writing"],
)
def test_refusals_name_the_reason_and_never_a_secret(
    s3: ObjectStore, written: Path, monkeypatch: pytest.MonkeyPatch, who: str, reason: str
) -> None:
    identity = getattr(s3, who)
    use(monkeypatch, s3, identity)
    with pytest.raises(storage.StorageFailure) as refused:
        artifact.publish(str(written), prefix())
    assert refused.value.reason == reason and not refused.value.retryable
    assert identity.secret_key not in str(refused.value)


def test_a_read_only_identity_fetches(
    s3: ObjectStore, written: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, s3, s3.admin)
    where = prefix()
    artifact.publish(str(written), where)
    use(monkeypatch, s3, s3.reader)
    artifact.fetch(where, str(tmp_path / "m"), sha_of(written))


def test_an_unreachable_endpoint_is_retryable(monkeypatch: pytest.MonkeyPatch, s3: ObjectStore) -> None:
    use(monkeypatch, s3, s3.admin)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard: nothing listens
    with pytest.raises(storage.StorageFailure) as down:
        storage.list_keys(prefix())
    assert (down.value.reason, down.value.retryable) == ("EndpointUnreachable", True)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_dataset_is_read_from_a_bucket(as_admin: ObjectStore, tmp_path: Path, fmt: str) -> None:
    frame, _ = load_iris(return_X_y=True, as_frame=True)
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False) if fmt == "csv" else frame.to_parquet(buffer)
    local = tmp_path / f"iris.{fmt}"
    local.write_bytes(buffer.getvalue())
    uri = storage.ObjectUri("datasets", f"iris/{uuid.uuid4().hex[:6]}/iris.{fmt}")
    storage.upload_new(str(local), uri)
    data = datasets.load(str(uri))
    assert data.frame.shape == frame.shape and data.format == fmt
    assert data.sha256 == artifact.sha256_file(str(local))
    with pytest.raises(Failure) as missing:
        datasets.load(str(uri.child("nope.csv")))
    assert missing.value.reason == "DatasetNotFound"


def run_fetch(s3: ObjectStore, identity: Identity, *args: str, log: Path) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, **s3.env(identity)}
    out = subprocess.run(
        [sys.executable, "-m", "driftline_runtime.cli", "fetch", *args, f"--termination-log={log}", "--attempts=1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.returncode, json.loads(log.read_text())


def test_the_fetch_command_reports_in_its_termination_message(s3: ObjectStore, written: Path, tmp_path: Path) -> None:
    """What the init container leaves for the operator: ok and the URI, or a reason and a message."""
    with pytest.MonkeyPatch.context() as mp:
        use(mp, s3, s3.admin)
        where = prefix()
        artifact.publish(str(written), where)
    code, document = run_fetch(
        s3,
        s3.reader,
        f"--from={where}",
        f"--to={tmp_path / 'm'}",
        f"--expected-sha256={sha_of(written)}",
        log=tmp_path / "ok.log",
    )
    assert (code, document["ok"], document["storageUri"]) == (0, True, str(where))
    code, document = run_fetch(
        s3,
        s3.stranger,
        f"--from={where}",
        f"--to={tmp_path / 'n'}",
        f"--expected-sha256={sha_of(written)}",
        log=tmp_path / "refused.log",
    )
    assert (code, document["ok"], document["reason"]) == (1, False, "InvalidCredentials")
    assert s3.stranger.secret_key not in json.dumps(document)


def test_a_custom_trainers_publish_signs_and_the_fetch_brings_the_signature(
    s3: ObjectStore, written: Path, tmp_path: Path
) -> None:
    """A custom trainer with spec.signing gets DRIFTLINE_SIGNING_KEY: `driftline-runtime publish` signs its directory
    before the upload, model.sig travels with the artifact, and a serving pod that trusts the key loads it."""
    private, public = key_pair()
    mine = tmp_path / "artifact"
    shutil.copytree(written, mine)
    where = prefix()
    env = {**os.environ, **s3.env(s3.admin), "DRIFTLINE_SIGNING_KEY": private}
    cmd = [sys.executable, "-m", "driftline_runtime.cli", "publish", f"--from={mine}", f"--to={where}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"signed {mine} with {signing.fingerprint(public)}" in out.stdout
    with pytest.MonkeyPatch.context() as mp:
        use(mp, s3, s3.reader)
        assert sorted(storage.list_keys(where)) == sorted([MODEL_FILE, PROFILE_FILE, METADATA_FILE, "model.sig"])
        artifact.fetch(where, str(tmp_path / "models"), sha_of(written))
    assert "model.sig" in os.listdir(tmp_path / "models")
    assert load_model(tmp_path / "models", "iris", "1", sha_of(written), [public]).version == "1"
    _, stranger = key_pair()
    with pytest.raises(ModelLoadError, match="ArtifactSignatureInvalid"):
        load_model(tmp_path / "models", "iris", "1", sha_of(written), [stranger])
