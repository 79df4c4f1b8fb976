"""The built-in trainer end to end, in-process through `main(argv)`: real fits on small bundled or generated data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from driftline_runtime.artifact import read_artifact
from driftline_runtime.train import main
from driftline_runtime.train.threads import cpu_budget

pytestmark = pytest.mark.unit

LOGREG = "sklearn.linear_model.LogisticRegression"


def run(tmp_path: Path, *args: str, out: str = "model") -> tuple[int, dict[str, Any], Path]:
    """Train into tmp_path/artifacts/<out>; returns (exit code, termination document, output dir)."""
    out_dir = tmp_path / "artifacts" / out
    log = tmp_path / "termination-log"
    # One BLAS thread: this suite shares two cores with other work, where extra BLAS threads only spin.
    code = main([*args, "--output-dir", str(out_dir), "--termination-log", str(log), "--threads", "1"])
    return code, json.loads(log.read_text()), out_dir


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_breast_cancer_logistic_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, summary, out = run(
        tmp_path,
        *("--dataset", "sklearn://breast_cancer", "--estimator", LOGREG, "--params", '{"max_iter": 5000}'),
        *("--artifact-uri", "pvc://models/breast-cancer/abc123"),
    )
    assert code == 0, summary
    assert sorted(os.listdir(out)) == ["metadata.json", "model.joblib", "profile.json"]
    assert os.listdir(out.parent) == ["model"]  # no staging directory left beside it
    metadata, profile = read_artifact(str(out))

    assert summary["ok"] is True and summary["task"] == metadata["task"] == "classification"
    assert summary["metrics"] == metadata["metrics"]
    assert metadata["metrics"]["accuracy"] > 0.9
    assert set(metadata["metrics"]) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert all(type(v) is float and np.isfinite(v) for v in metadata["metrics"].values())
    digest = sha256(out / "model.joblib")
    assert summary["artifact"] == {
        "storageUri": "pvc://models/breast-cancer/abc123",
        "sha256": digest,
        "format": "joblib",
        "framework": "scikit-learn",
        "frameworkVersion": metadata["frameworkVersion"],
        "predictor": "scikit-learn",
    }
    assert metadata["artifact"] == {"file": "model.joblib", "sha256": digest, "format": "joblib"}
    assert metadata["classes"] == [0, 1]
    assert metadata["params"] == {"max_iter": 5000, "random_state": 42}
    assert metadata["dataset"]["uri"] == summary["dataset"]["uri"] == "sklearn://breast_cancer"
    assert metadata["dataset"]["rows"] == 569
    assert len(metadata["dataset"]["sha256"]) == 64
    assert set(metadata["libraries"]) == {"python", "numpy", "pandas", "scikit-learn", "joblib"}
    assert metadata["createdAt"].endswith("Z")
    assert len(json.dumps(summary, separators=(",", ":"))) < 4096

    # The profile describes exactly the training split: same split, same searchsorted bins.
    frame = load_breast_cancer(as_frame=True).frame
    x_train, _, _, _ = train_test_split(
        frame.drop(columns="target"), frame["target"], test_size=0.2, random_state=42, stratify=frame["target"]
    )
    assert profile["rows"] == len(x_train) == metadata["split"]["trainRows"]
    assert [f["name"] for f in profile["features"]] == [f["name"] for f in metadata["features"]] == list(x_train)
    for feature in profile["features"]:
        values = x_train[feature["name"]].to_numpy()
        assert sum(feature["counts"]) + feature["missing"] == len(x_train)
        expected = np.bincount(
            np.searchsorted(feature["cuts"], values, side="right"), minlength=len(feature["cuts"]) + 1
        )
        assert feature["counts"] == expected.tolist()
        assert feature["cuts"] == np.unique(np.quantile(values, np.arange(1, 10) / 10)).tolist()
        assert (feature["min"], feature["max"]) == (values.min(), values.max())

    model = joblib.load(out / "model.joblib")
    predicted = pd.Series(model.predict(x_train)).astype(str).value_counts()
    prediction = profile["prediction"]
    assert prediction["name"] == "__prediction__" and prediction["kind"] == "categorical"
    assert dict(zip(prediction["categories"], prediction["counts"], strict=True)) == predicted.to_dict()

    lines = capsys.readouterr().out.splitlines()
    assert [line[:5] for line in lines if line.startswith("[")] == [f"[{i}/6]" for i in range(1, 7)]
    assert lines[1].startswith("[1/6] loading dataset sklearn://breast_cancer ...") and lines[1].endswith("s")
    assert json.loads(lines[-1]) == summary


def test_diabetes_ridge_regression(tmp_path: Path) -> None:
    code, summary, out = run(
        tmp_path,
        "--dataset",
        "sklearn://diabetes",
        "--estimator",
        "sklearn.linear_model.Ridge",
        "--params",
        '{"alpha": 0.1}',
    )
    assert code == 0, summary
    metadata, profile = read_artifact(str(out))
    assert metadata["task"] == summary["task"] == "regression"
    assert set(metadata["metrics"]) == {"rmse", "mae", "r2"}
    assert metadata["metrics"]["r2"] > 0.3 and 0 < metadata["metrics"]["mae"] < metadata["metrics"]["rmse"] < 100
    assert "classes" not in metadata
    assert metadata["params"] == {"alpha": 0.1, "random_state": 42}
    assert profile["prediction"]["kind"] == "numeric"
    assert sum(profile["prediction"]["counts"]) == profile["rows"] == 353


def test_iris_multiclass_metrics(tmp_path: Path) -> None:
    code, summary, out = run(
        tmp_path, "--dataset", "sklearn://iris", "--estimator", "sklearn.tree.DecisionTreeClassifier"
    )
    assert code == 0, summary
    metadata, _ = read_artifact(str(out))
    assert set(metadata["metrics"]) == {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    assert metadata["classes"] == [0, 1, 2]
    assert metadata["params"] == {"random_state": 42}
    assert metadata["split"]["stratified"] is True


def _classification_frame(rows: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    x1 = rng.normal(size=rows)
    x2 = rng.uniform(0, 10, size=rows)
    flag = rng.random(rows) < 0.3
    label = np.where(x1 + 0.2 * x2 + flag > 1.0, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "flag": flag, "label": label})


def test_csv_file_with_string_labels_and_bool_feature(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _classification_frame().to_csv(path, index=False)
    code, summary, out = run(
        tmp_path,
        *("--dataset", str(path), "--dataset-ref", "pvc://data/data.csv", "--target", "label"),
        *("--estimator", LOGREG, "--artifact-uri", "pvc://models/m/1"),
    )
    assert code == 0, summary
    metadata, profile = read_artifact(str(out))
    assert metadata["dataset"] == {
        "uri": "pvc://data/data.csv",
        "sha256": sha256(path),
        "rows": 120,
        "format": "csv",
    }
    assert metadata["classes"] == ["no", "yes"]
    assert metadata["features"] == [
        {"name": "x1", "dtype": "float64"},
        {"name": "x2", "dtype": "float64"},
        {"name": "flag", "dtype": "bool"},
    ]
    flag = profile["features"][2]
    assert flag["kind"] == "categorical" and set(flag["categories"]) == {"True", "False"}
    assert set(profile["prediction"]["categories"]) <= {"yes", "no"}
    assert summary["features"] == ["x1", "x2", "flag"]


def test_features_option_selects_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    _classification_frame().to_csv(path, index=False)
    code, summary, out = run(
        tmp_path, "--dataset", f"file://{path}", "--target", "label", "--features", "x2, x1", "--estimator", LOGREG
    )
    assert code == 0, summary
    metadata, profile = read_artifact(str(out))
    assert [f["name"] for f in metadata["features"]] == ["x2", "x1"] == [f["name"] for f in profile["features"]]


@pytest.mark.parametrize("fmt", ["parquet", "json", "jsonl"])
def test_other_formats(tmp_path: Path, fmt: str) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    frame["y"] = 3 * frame["a"] - frame["b"] + rng.normal(scale=0.1, size=80)
    path = tmp_path / f"data.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=fmt == "jsonl")
    code, summary, out = run(
        tmp_path, "--dataset", str(path), "--target", "y", "--estimator", "sklearn.linear_model.LinearRegression"
    )
    assert code == 0, summary
    metadata, _ = read_artifact(str(out))
    assert metadata["dataset"]["format"] == fmt and metadata["dataset"]["sha256"] == sha256(path)
    assert metadata["metrics"]["r2"] > 0.99


def test_estimator_that_handles_nan_trains_on_missing_values(tmp_path: Path) -> None:
    frame = _classification_frame(200)
    frame.loc[::10, "x2"] = np.nan
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    code, summary, out = run(
        tmp_path,
        *("--dataset", str(path), "--target", "label"),
        *("--estimator", "sklearn.ensemble.HistGradientBoostingClassifier", "--params", '{"max_iter": 20}'),
    )
    assert code == 0, summary
    _, profile = read_artifact(str(out))
    x2 = profile["features"][1]
    assert x2["missing"] > 0 and sum(x2["counts"]) + x2["missing"] == profile["rows"]


def test_existing_empty_output_dir_is_filled(tmp_path: Path) -> None:
    (tmp_path / "artifacts" / "model").mkdir(parents=True)
    code, summary, out = run(
        tmp_path, "--dataset", "sklearn://wine", "--estimator", "sklearn.tree.DecisionTreeClassifier"
    )
    assert code == 0, summary
    read_artifact(str(out))
    assert os.listdir(tmp_path / "artifacts") == ["model"]


def test_summary_stays_under_4096_bytes_with_huge_params(tmp_path: Path) -> None:
    # DummyClassifier validates `constant` as any string but ignores it unless strategy="constant".
    params = json.dumps({"strategy": "prior", "constant": "x" * 20_000})
    code, summary, out = run(
        tmp_path, "--dataset", "sklearn://digits", "--estimator", "sklearn.dummy.DummyClassifier", "--params", params
    )
    assert code == 0
    assert len((tmp_path / "termination-log").read_bytes()) < 4096
    assert summary["truncated"] is True
    assert summary["params"] == {"strategy": "prior", "random_state": 42}  # only the long value went
    assert summary["featureCount"] == 64 and summary["features"][:2] == ["pixel_0_0", "pixel_0_1"]
    assert summary["artifact"]["sha256"] == sha256(out / "model.joblib")
    metadata, _ = read_artifact(str(out))
    assert metadata["params"]["constant"] == "x" * 20_000  # the artifact keeps everything


def test_summary_stays_under_4096_bytes_with_huge_uris(tmp_path: Path) -> None:
    long_uri = "pvc://models/" + "very-long-name/" * 300
    code, summary, out = run(
        tmp_path,
        *("--dataset", "sklearn://iris", "--dataset-ref", long_uri, "--artifact-uri", long_uri),
        *("--estimator", "sklearn.dummy.DummyClassifier", "--params", json.dumps({"constant": "y" * 5000})),
    )
    assert code == 0
    assert len((tmp_path / "termination-log").read_bytes()) < 4096
    assert summary["truncated"] is True and summary["artifact"]["storageUri"].startswith("pvc://models/very-long-name/")
    assert summary["artifact"]["sha256"] == sha256(out / "model.joblib")


def test_missing_termination_log_directory_only_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    code = main(
        [
            *("--dataset", "sklearn://iris", "--estimator", "sklearn.tree.DecisionTreeClassifier"),
            *("--output-dir", str(out), "--termination-log", str(tmp_path / "no-such-dir" / "termination-log")),
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["ok"] is True
    assert not (tmp_path / "no-such-dir").exists()


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--allowed-prefixes" in capsys.readouterr().out


def test_console_script_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "driftline-runtime"
    out, log = tmp_path / "out" / "m", tmp_path / "termination-log"
    result = subprocess.run(
        [
            str(exe),
            "train",
            *("--dataset", "sklearn://iris", "--estimator", "sklearn.tree.DecisionTreeClassifier"),
            *("--params", '{"max_depth": 3}', "--output-dir", str(out), "--termination-log", str(log)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(log.read_text())
    assert summary["ok"] is True and summary["artifact"]["sha256"] == sha256(out / "model.joblib")
    assert "[6/6] writing artifact" in result.stdout


@pytest.mark.parametrize(("cpu_max", "cap"), [("150000 100000\n", 2), ("50000 100000\n", 1), ("max 100000\n", None)])
def test_cpu_budget_honours_the_cgroup_quota(tmp_path: Path, cpu_max: str, cap: int | None) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max)
    cpus = len(os.sched_getaffinity(0))
    assert cpu_budget(str(tmp_path / "cpu.max")) == min(cpus, cap or cpus)
    assert cpu_budget(str(tmp_path / "absent")) == cpus
