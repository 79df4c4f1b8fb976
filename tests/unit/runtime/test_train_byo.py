"""The bring-your-own trainer example honours the contract: its output passes the same reader as the built-in one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest

from driftline_runtime.artifact import read_artifact

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[3] / "examples" / "byo-trainer" / "train.py"


def test_byo_example_writes_a_valid_artifact(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"size": rng.normal(10, 2, 150), "colour": rng.choice(["red", "green", "blue"], 150)})
    frame["label"] = np.where((frame["size"] > 10) | (frame["colour"] == "red"), "keep", "drop")
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    out, log = tmp_path / "artifacts" / "m" / "1", tmp_path / "termination-log"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            *("--dataset", str(data), "--dataset-ref", "pvc://data/data.csv", "--target", "label"),
            *("--output-dir", str(out), "--artifact-uri", "pvc://models/m/1", "--termination-log", str(log)),
            *("--estimator", "ignored.By.Byo", "--params", '{"C": 2.0}'),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    metadata, profile = read_artifact(str(out))
    summary = json.loads(log.read_text())
    assert summary["ok"] is True and summary["artifact"]["sha256"] == metadata["artifact"]["sha256"]
    assert summary["artifact"]["storageUri"] == "pvc://models/m/1"
    assert metadata["classes"] == ["drop", "keep"] and metadata["metrics"]["accuracy"] > 0.8
    assert [f["kind"] for f in profile["features"]] == ["numeric", "categorical"]
    assert profile["prediction"]["kind"] == "categorical"
    model = joblib.load(out / "model.joblib")
    assert set(model.predict(frame[["size", "colour"]].head(5))) <= {"drop", "keep"}
