"""Compiled tree ensembles: the trainer keeps Treelite's model of a forest or boosting only when it gives the
estimator's own answers on the validation rows, records the choice, and the server answers with it, or with
scikit-learn when it cannot."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.datasets import load_breast_cancer, load_diabetes

from driftline_runtime import trees
from driftline_runtime.artifact import read_artifact
from driftline_runtime.train import main
from tests.unit.runtime.server_kit import metric_lines, running

pytestmark = pytest.mark.unit

FOREST = "sklearn.ensemble.RandomForestClassifier"


def train(
    tmp_path: Path, estimator: str, params: str = "{}", dataset: str = "sklearn://breast_cancer", *extra: str
) -> Any:
    out, log = tmp_path / "model", tmp_path / "termination-log"
    argv = ["--dataset", dataset, "--estimator", estimator, "--params", params, "--threads", "1", *extra]
    code = main([*argv, "--output-dir", str(out), "--termination-log", str(log)])
    summary = json.loads(log.read_text())
    assert code == 0, summary
    return out, summary


def serve(out: Path, name: str = "bc") -> Any:
    from driftline_runtime.server.main import build_state, parse_args
    from driftline_runtime.server.model import load_model

    metadata, _ = read_artifact(str(out))
    sha = metadata["artifact"]["sha256"]
    args = parse_args(["--model-dir", str(out), "--model-name", name, "--model-version", "1", "--expected-sha256", sha])
    return build_state(load_model(out, name, "1", sha), args)


def v2(rows: np.ndarray[Any, Any], outputs: tuple[str, ...] = ("predict", "predict_proba")) -> dict[str, Any]:
    data = [None if np.isnan(v) else v for v in rows.ravel().tolist()]
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": data}
    return {"inputs": [tensor], "outputs": [{"name": o} for o in outputs]}


def test_a_forest_is_served_by_its_compiled_trees_with_the_estimators_own_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, summary = train(tmp_path, FOREST, '{"n_estimators": 50}')
    assert "[5/7] compiling the trees (Treelite) ... equal to the estimator within 0," in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["metadata.json", "model.joblib", "model.treelite", "profile.json"]
    metadata, _ = read_artifact(str(out))
    block = metadata["predictor"]
    assert (block["kind"], block["file"], block["inputDtype"], block["maxDifference"]) == (
        "treelite",
        "model.treelite",
        "float32",
        0.0,
    )
    assert summary["artifact"]["predictor"] == "treelite" and "predictorReason" not in summary["artifact"]
    estimator = joblib.load(out / "model.joblib")
    x = load_breast_cancer().data[:64]
    with running(serve(out)) as base:
        answer = requests.post(f"{base}/v2/models/bc/infer", json=v2(x), timeout=30).json()
        text = requests.get(f"{base}/metrics", timeout=10).text
    got = {o["name"]: np.asarray(o["data"]) for o in answer["outputs"]}
    assert got["predict"].tolist() == estimator.predict(x).tolist()
    assert np.array_equal(got["predict_proba"].reshape(64, 2), estimator.predict_proba(x))  # bit for bit
    (info,) = metric_lines(text, "driftline_model_info")
    assert 'predictor="treelite"' in info


@pytest.mark.parametrize(
    ("estimator", "dataset", "dtype"),
    [
        ("sklearn.ensemble.HistGradientBoostingClassifier", "sklearn://iris", "float64"),
        ("sklearn.ensemble.GradientBoostingRegressor", "sklearn://diabetes", "float32"),
        ("sklearn.ensemble.ExtraTreesRegressor", "sklearn://diabetes", "float32"),
    ],
)
def test_boostings_and_regressors_compile_within_the_tolerance(
    tmp_path: Path, estimator: str, dataset: str, dtype: str
) -> None:
    out, summary = train(tmp_path, estimator, '{"random_state": 0}', dataset)
    metadata, _ = read_artifact(str(out))
    assert summary["artifact"]["predictor"] == "treelite"
    assert metadata["predictor"]["kind"] == "treelite" and metadata["predictor"]["inputDtype"] == dtype
    assert metadata["predictor"]["maxDifference"] <= trees.TOLERANCE
    fitted = joblib.load(out / "model.joblib")
    x = (load_diabetes() if "diabetes" in dataset else load_breast_cancer()).data[:40]
    if "iris" in dataset:
        from sklearn.datasets import load_iris

        x = load_iris().data
    state = serve(out)
    assert state.model.predictor_kind == "treelite"
    with running(state) as base:
        answer = requests.post(f"{base}/v2/models/bc/infer", json=v2(x, ("predict",)), timeout=30).json()
    got = np.asarray(answer["outputs"][0]["data"])
    expected = np.asarray(fitted.predict(x))
    if fitted.__class__.__name__.endswith("Regressor"):
        assert np.allclose(got, expected, rtol=trees.TOLERANCE, atol=0)
    else:
        assert got.tolist() == expected.tolist()


def test_other_estimators_are_served_by_scikit_learn_and_say_nothing_more(tmp_path: Path) -> None:
    out, summary = train(tmp_path, "sklearn.linear_model.LogisticRegression", '{"max_iter": 5000}')
    metadata, _ = read_artifact(str(out))
    assert metadata["predictor"] == {"kind": "scikit-learn"}
    assert "model.treelite" not in os.listdir(out)
    assert summary["artifact"]["predictor"] == "scikit-learn" and "predictorReason" not in summary["artifact"]
    assert serve(out).model.predictor_kind == "scikit-learn"


def test_compiled_trees_that_disagree_are_not_kept_and_the_version_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trees, "agreement", lambda compiled, estimator, rows: 3.2e-5)
    out, summary = train(tmp_path, FOREST, '{"n_estimators": 10}')
    metadata, _ = read_artifact(str(out))
    reason = "the compiled trees differ by 3.2e-05 on the validation rows (tolerance 1e-06)"
    assert metadata["predictor"] == {"kind": "scikit-learn", "reason": reason}
    assert "model.treelite" not in os.listdir(out)
    assert (summary["artifact"]["predictor"], summary["artifact"]["predictorReason"]) == ("scikit-learn", reason)


def test_a_damaged_checkpoint_is_served_by_scikit_learn_not_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out, _ = train(tmp_path, FOREST, '{"n_estimators": 10}')
    (out / "model.treelite").write_bytes(b"not a treelite model")
    estimator = joblib.load(out / "model.joblib")
    state = serve(out)
    assert state.model.predictor_kind == "scikit-learn"
    assert "serving with scikit-learn, not the compiled trees" in caplog.text and "does not hash" in caplog.text
    x = load_breast_cancer().data[:5]
    with running(state) as base:
        answer = requests.post(f"{base}/v2/models/bc/infer", json=v2(x, ("predict",)), timeout=30).json()
    assert answer["outputs"][0]["data"] == estimator.predict(x).tolist()


def test_a_missing_value_is_refused_where_the_estimator_refuses_it(tmp_path: Path) -> None:
    """GradientBoosting takes no NaN in scikit-learn: its compiled trees (which could route one) refuse it alike."""
    frame = pd.DataFrame(load_breast_cancer().data[:, :4], columns=["a", "b", "c", "d"])
    frame["label"] = load_breast_cancer().target
    path = tmp_path / "bc.csv"
    frame.to_csv(path, index=False)
    gb = "sklearn.ensemble.GradientBoostingClassifier"
    out, _ = train(tmp_path, gb, '{"n_estimators": 20}', str(path), "--target", "label")
    state = serve(out)
    assert state.model.predictor_kind == "treelite"
    rows = frame[["a", "b", "c", "d"]].to_numpy()[:2].copy()
    rows[1, 2] = np.nan
    with running(state) as base:
        r = requests.post(f"{base}/v2/models/bc/infer", json=v2(rows, ("predict",)), timeout=30)
    assert r.status_code == 400 and "feature 'c' row 1: missing value" in r.json()["error"]
