"""The guide for a model trained elsewhere (docs/external-models.md) works as written: its packaging script makes an
artifact the model server loads, signed where asked, and a ModelVersion the API's own model accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import joblib
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from driftline.api.modelversion import ModelVersion
from driftline_runtime import signing
from driftline_runtime.artifact import read_artifact
from driftline_runtime.server.model import load_model
from tests.keys import key_pair

pytestmark = pytest.mark.unit
SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "external-model" / "package.py"


def test_a_model_trained_elsewhere_is_packaged_signed_and_registered(tmp_path: Path) -> None:
    frame = load_iris(as_frame=True).frame
    train, val = frame.iloc[::2], frame.iloc[1::2]
    model = LogisticRegression(max_iter=500).fit(train.drop(columns="target"), train["target"])
    joblib.dump(model, tmp_path / "iris.joblib")
    train.to_csv(tmp_path / "train.csv", index=False)
    val.to_csv(tmp_path / "val.csv", index=False)
    private, public = key_pair()
    (tmp_path / "private.pem").write_text(private)
    out = tmp_path / "iris-v7"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--estimator", str(tmp_path / "iris.joblib"),
         "--train", str(tmp_path / "train.csv"), "--validation", str(tmp_path / "val.csv"), "--target", "target",
         "--model", "iris", "--version", "7", "--storage-uri", "s3://models/iris/v7", "--out", str(out),
         "--signing-key", str(tmp_path / "private.pem"), "--dataset-uri", "s3://datasets/iris/train.csv"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    metadata, profile = read_artifact(str(out / "artifact"))
    mv = ModelVersion.model_validate(yaml.safe_load((out / "modelversion.yaml").read_text()))
    assert mv.metadata.name == "iris-v7" and (mv.spec.model, mv.spec.version) == ("iris", 7)
    assert mv.spec.artifact.sha256 == metadata["artifact"]["sha256"] and mv.spec.artifact.storage_uri.endswith("/v7")
    assert mv.spec.artifact.signed_by == signing.fingerprint(public)
    assert mv.spec.metrics["accuracy"] > 0.9 and profile["rows"] == len(train)
    assert mv.spec.dataset is not None and mv.spec.dataset.uri == "s3://datasets/iris/train.csv"
    served = load_model(out / "artifact", "iris", "7", mv.spec.artifact.sha256, [public])
    assert list(served.feature_names) == list(train.columns[:-1])
