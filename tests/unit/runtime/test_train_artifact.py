"""The artifact directory: atomic writes (also into a mounted, non-removable directory) and verified reads."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from driftline_runtime.artifact import ArtifactError, load_model, read_artifact, write_artifact
from driftline_runtime.profile import build_profile

pytestmark = pytest.mark.unit


def write_small(out: Path) -> dict[str, Any]:
    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    y = [1.0, 3.0, 5.0, 7.0]
    model = LinearRegression().fit(x, y)
    metadata = {
        "formatVersion": 1,
        "task": "regression",
        "target": "y",
        "features": [{"name": "a", "dtype": "float64"}],
        "metrics": {"r2": 1.0},
        "params": {},
        "estimator": "sklearn.linear_model.LinearRegression",
        "framework": "scikit-learn",
        "frameworkVersion": "test",
        "dataset": {"uri": "mem://", "sha256": "0" * 64, "rows": 4},
        "createdAt": "2026-01-01T00:00:00Z",
    }
    return write_artifact(str(out), model, metadata, build_profile(x, model.predict(x), 2, task="regression"))


def test_round_trip(tmp_path: Path) -> None:
    written = write_small(tmp_path / "a" / "m")
    metadata, profile = read_artifact(str(tmp_path / "a" / "m"))
    assert metadata == written and profile["rows"] == 4
    assert os.listdir(tmp_path / "a") == ["m"]
    assert (os.stat(tmp_path / "a" / "m").st_mode & 0o777) == 0o755
    model, _, _ = load_model(str(tmp_path / "a" / "m"))
    assert model.predict(pd.DataFrame({"a": [10.0]}))[0] == pytest.approx(21.0)


def test_mounted_output_dir_is_filled_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "mnt"
    out.mkdir()

    real_rmdir = os.rmdir

    def busy(path: str, *args: Any, **kwargs: Any) -> None:
        if path == str(out):  # a mount point cannot be removed
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", busy)
    write_small(out)
    assert sorted(os.listdir(out)) == ["metadata.json", "model.joblib", "profile.json"]
    assert os.listdir(tmp_path) == ["mnt"]  # staging removed, no partial files
    read_artifact(str(out))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "model.joblib").write_bytes(b"tampered"), "sha256"),
        (lambda d: (d / "model.joblib").unlink(), "missing"),
        (lambda d: (d / "metadata.json").unlink(), "metadata.json is missing"),
        (lambda d: (d / "profile.json").write_text("{"), "profile.json"),
        (lambda d: _edit(d / "metadata.json", formatVersion=2), "formatVersion"),
        (lambda d: _edit(d / "metadata.json", task="clustering"), "task"),
        (lambda d: _edit(d / "metadata.json", artifact={"file": "../x", "sha256": "0"}), "plain file name"),
        (lambda d: _edit(d / "metadata.json", features=[{"name": "b", "dtype": "float64"}]), "do not match"),
        (lambda d: _edit(d / "profile.json", rows=5), "add up"),
    ],
)
def test_read_artifact_rejects_damage(tmp_path: Path, damage: Any, message: str) -> None:
    out = tmp_path / "m"
    write_small(out)
    damage(out)
    with pytest.raises(ArtifactError, match=message):
        read_artifact(str(out))


def _edit(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_metadata_without_classes_is_refused_for_classification(tmp_path: Path) -> None:
    out = tmp_path / "m"
    write_small(out)
    _edit(out / "metadata.json", task="classification")
    with pytest.raises(ArtifactError, match="classes"):
        read_artifact(str(out))
