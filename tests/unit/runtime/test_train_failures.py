"""Every failure the trainer names: exit code 1, a JSON termination message with the reason, no artifact left behind."""

from __future__ import annotations

import gzip
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from driftline_runtime.train import main

pytestmark = pytest.mark.unit

LOGREG = "sklearn.linear_model.LogisticRegression"


def fail(tmp_path: Path, *args: str, reason: str, contains: tuple[str, ...] = ()) -> str:
    """Run the trainer expecting `reason`; assert the message mentions `contains` and nothing was written."""
    artifacts = tmp_path / "artifacts"
    log = tmp_path / "termination-log"
    threads = () if "--threads" in args else ("--threads", "1")  # one BLAS thread: quick on a shared machine
    code = main([*args, "--output-dir", str(artifacts / "model"), "--termination-log", str(log), *threads])
    document = json.loads(log.read_text())
    assert code == 1, document
    assert document["ok"] is False and document["reason"] == reason, document
    assert set(document) == {"ok", "reason", "message"}
    for text in contains:
        assert text in document["message"], document["message"]
    assert not artifacts.exists() or os.listdir(artifacts) == [], "no artifact nor staging directory may be left"
    return str(document["message"])


def csv(tmp_path: Path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def frame_csv(tmp_path: Path, frame: pd.DataFrame) -> str:
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    return str(path)


def numbers(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(rows, 2))
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] > 0).astype(int)})


# -- the dataset ------------------------------------------------------------------------------------------------------


def test_missing_target_column_names_it_and_the_columns(tmp_path: Path) -> None:
    data = csv(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    fail(
        tmp_path,
        "--dataset",
        data,
        "--target",
        "label",
        "--estimator",
        LOGREG,
        reason="MissingTargetColumn",
        contains=("'label'", "'a', 'b', 'y'"),
    )


def test_missing_feature_columns(tmp_path: Path) -> None:
    data = csv(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    fail(
        tmp_path,
        "--dataset",
        data,
        "--target",
        "y",
        "--features",
        "a,zz,ww",
        "--estimator",
        LOGREG,
        reason="MissingFeatureColumns",
        contains=("'zz', 'ww'",),
    )


def test_target_is_required_for_files(tmp_path: Path) -> None:
    data = csv(tmp_path, "a,b,y\n1,2,0\n3,4,1\n")
    fail(tmp_path, "--dataset", data, "--estimator", LOGREG, reason="InvalidArguments", contains=("--target", "'y'"))


def test_dataset_not_found(tmp_path: Path) -> None:
    fail(
        tmp_path,
        "--dataset",
        str(tmp_path / "nope.csv"),
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="DatasetNotFound",
        contains=("nope.csv",),
    )


def test_unknown_sklearn_dataset_lists_the_known_ones(tmp_path: Path) -> None:
    fail(
        tmp_path,
        "--dataset",
        "sklearn://california_housing",
        "--estimator",
        LOGREG,
        reason="UnknownDataset",
        contains=("'california_housing'", "breast_cancer", "diabetes", "digits", "iris", "wine"),
    )


def test_unsupported_scheme(tmp_path: Path) -> None:
    fail(
        tmp_path,
        "--dataset",
        "pvc://data/x.csv",
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="UnsupportedDatasetUri",
        contains=("pvc://",),
    )


@pytest.mark.parametrize(("text", "detail"), [("", "0 bytes"), ("a,b,y\n", "no rows")])
def test_empty_dataset(tmp_path: Path, text: str, detail: str) -> None:
    fail(
        tmp_path,
        "--dataset",
        csv(tmp_path, text),
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="EmptyDataset",
        contains=(detail,),
    )


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("cut-mid-row.csv", b"a,b,y\n1,2,0\n3,4,1\n5,6"),
        ("cut-after-comma.csv", b"a,b,y\n1,2,0\n3,4,1\n5,6,"),
        ("cut-in-quotes.csv", b'a,b,y\n1,2,0\n3,4,"1'),
        # mtime=0: the header carries no time, so the test id is the same for every collector (pytest-xdist workers)
        ("cut.csv.gz", gzip.compress(b"a,b,y\n" + b"1,2,0\n3,4,1\n" * 500, mtime=0)[:-40]),
        ("cut.json", b'[{"a": 1, "b": 2, "y": 0}, {"a": 3, "b": 4,'),
    ],
)
def test_truncated_dataset(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    fail(
        tmp_path,
        "--dataset",
        str(path),
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="TruncatedDataset",
        contains=(name,),
    )


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("too-many-fields.csv", b"a,b,y\n1,2,0\n3,4,1,9,9\n5,6,0\n", "csv"),
        ("garbage.parquet", b"this is not parquet at all", "parquet"),
        ("latin1.csv", "a,b,y\n1,2,\xe9\xe9\n".encode("latin-1"), "csv"),
    ],
)
def test_unreadable_dataset(tmp_path: Path, name: str, content: bytes, fmt: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    fail(
        tmp_path,
        "--dataset",
        str(path),
        "--format",
        fmt,
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="UnreadableDataset",
        contains=(name,),
    )


# -- the values -----------------------------------------------------------------------------------------------------


def test_non_numeric_feature_is_named(tmp_path: Path) -> None:
    frame = numbers()
    frame["colour"] = ["red", "blue"] * 20
    fail(
        tmp_path,
        "--dataset",
        frame_csv(tmp_path, frame),
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="NonNumericFeature",
        contains=("'colour'", "numbers"),
    )


def test_target_with_missing_values(tmp_path: Path) -> None:
    frame = numbers()
    frame["y"] = frame["y"].astype(float)
    frame.loc[[3, 7], "y"] = np.nan
    fail(
        tmp_path,
        "--dataset",
        frame_csv(tmp_path, frame),
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="TargetHasMissingValues",
        contains=("'y'", "2 missing"),
    )


def test_features_with_missing_values_are_named(tmp_path: Path) -> None:
    frame = numbers()
    frame.loc[[1, 2, 5], "b"] = np.nan
    fail(
        tmp_path,
        "--dataset",
        frame_csv(tmp_path, frame),
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="FeaturesHaveMissingValues",
        contains=("'b' (3 missing)", LOGREG),
    )


def test_single_class(tmp_path: Path) -> None:
    frame = numbers()
    frame["y"] = 1
    fail(
        tmp_path,
        "--dataset",
        frame_csv(tmp_path, frame),
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="SingleClass",
        contains=("'y'", "single class"),
    )


def test_continuous_target_for_a_classifier(tmp_path: Path) -> None:
    frame = numbers()
    frame["y"] = frame["a"] * 1.5 + 0.25
    fail(
        tmp_path,
        *("--dataset", frame_csv(tmp_path, frame), "--target", "y", "--estimator", LOGREG),
        reason="ContinuousTarget",
        contains=("'y'", LOGREG),
    )


def test_classifier_on_integer_valued_floats_still_trains(tmp_path: Path) -> None:
    # diabetes' target is integral floats: many classes, some only in the validation rows (no log loss for those).
    log = tmp_path / "termination-log"
    args = ["--dataset", "sklearn://diabetes", "--estimator", "sklearn.tree.DecisionTreeClassifier"]
    assert main([*args, "--output-dir", str(tmp_path / "m"), "--termination-log", str(log)]) == 0
    assert "log_loss" not in json.loads(log.read_text())["metrics"]


def test_text_target_for_a_regressor(tmp_path: Path) -> None:
    frame = numbers()
    frame["y"] = frame["y"].map({0: "low", 1: "high"})
    fail(
        tmp_path,
        "--dataset",
        frame_csv(tmp_path, frame),
        "--target",
        "y",
        "--estimator",
        "sklearn.linear_model.Ridge",
        reason="NonNumericTarget",
        contains=("'y'",),
    )


def test_too_few_rows(tmp_path: Path) -> None:
    data = csv(tmp_path, "a,b,y\n1,2,0.5\n")
    fail(
        tmp_path,
        "--dataset",
        data,
        "--target",
        "y",
        "--estimator",
        "sklearn.linear_model.Ridge",
        reason="TooFewRows",
        contains=("1 row",),
    )


def test_fit_errors_become_training_failed(tmp_path: Path) -> None:
    frame = numbers()
    frame.loc[4, "a"] = np.inf
    fail(
        tmp_path,
        "--dataset",
        frame_csv(tmp_path, frame),
        "--target",
        "y",
        "--estimator",
        LOGREG,
        reason="TrainingFailed",
        contains=(LOGREG, "infinity"),
    )


# -- the estimator --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["os.system", "subprocess.Popen", "builtins.eval", "sklearnx.Evil", "sklearn"])
def test_disallowed_estimators(tmp_path: Path, path: str) -> None:
    fail(
        tmp_path,
        "--dataset",
        "sklearn://iris",
        "--estimator",
        path,
        reason="EstimatorNotAllowed",
        contains=(repr(path), "sklearn."),
    )


def test_private_paths_are_refused_even_under_the_prefix(tmp_path: Path) -> None:
    fail(
        tmp_path,
        "--dataset",
        "sklearn://iris",
        "--estimator",
        "sklearn.__builtins__.eval",
        reason="EstimatorNotAllowed",
        contains=("public class path",),
    )


def test_allow_list_is_checked_before_importing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = tmp_path / "canary"
    (tmp_path / "driftline_canary_mod.py").write_text(f"open({str(canary)!r}, 'w').close()\nclass Thing: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fail(
        tmp_path,
        "--dataset",
        "sklearn://iris",
        "--estimator",
        "driftline_canary_mod.Thing",
        reason="EstimatorNotAllowed",
        contains=("driftline_canary_mod.Thing",),
    )
    assert "driftline_canary_mod" not in sys.modules and not canary.exists()


def test_allowed_prefixes_can_admit_more(tmp_path: Path) -> None:
    fail(
        tmp_path,
        "--dataset",
        "sklearn://iris",
        "--estimator",
        LOGREG,
        "--allowed-prefixes",
        "xgboost.,lightgbm.",
        reason="EstimatorNotAllowed",
        contains=("xgboost., lightgbm.",),
    )


def test_estimator_not_found_suggests_a_name(tmp_path: Path) -> None:
    fail(
        tmp_path,
        "--dataset",
        "sklearn://iris",
        "--estimator",
        "sklearn.linear_model.LogisticRegresion",
        reason="EstimatorNotFound",
        contains=("did you mean sklearn.linear_model.LogisticRegression",),
    )


def test_estimator_module_not_found(tmp_path: Path) -> None:
    fail(
        tmp_path,
        "--dataset",
        "sklearn://iris",
        "--estimator",
        "sklearn.nonexistent.Thing",
        reason="EstimatorNotFound",
        contains=("sklearn.nonexistent",),
    )


@pytest.mark.parametrize(
    "path", ["sklearn.preprocessing.StandardScaler", "sklearn.cluster.KMeans", "sklearn.base.clone"]
)
def test_not_an_estimator(tmp_path: Path, path: str) -> None:
    fail(tmp_path, "--dataset", "sklearn://iris", "--estimator", path, reason="NotAnEstimator", contains=(path,))


@pytest.mark.parametrize(
    ("params", "contains"),
    [
        ('{"max_iter": }', "not valid JSON"),
        ('{"C": NaN}', "NaN"),
        ("[1, 2]", "JSON object"),
        ('{"bogus": 1}', "bogus"),
        ('{"C": -1}', "'C'"),
    ],
)
def test_invalid_params(tmp_path: Path, params: str, contains: str) -> None:
    fail(
        tmp_path,
        "--dataset",
        "sklearn://iris",
        "--estimator",
        LOGREG,
        "--params",
        params,
        reason="InvalidParams",
        contains=(contains,),
    )


# -- arguments and the output directory ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (("--dataset", "sklearn://iris"), "--estimator"),
        (("--dataset", "sklearn://iris", "--estimator", LOGREG, "--validation-split", "1.5"), "--validation-split"),
        (("--dataset", "sklearn://iris", "--estimator", LOGREG, "--seed", "abc"), "--seed"),
        (("--dataset", "sklearn://iris", "--estimator", LOGREG, "--threads", "-1"), "--threads"),
    ],
)
def test_invalid_arguments(tmp_path: Path, args: tuple[str, ...], contains: str) -> None:
    fail(tmp_path, *args, reason="InvalidArguments", contains=(contains,))


def test_output_dir_not_empty(tmp_path: Path) -> None:
    out = tmp_path / "artifacts" / "model"
    out.mkdir(parents=True)
    (out / "old.txt").write_text("x")
    log = tmp_path / "termination-log"
    code = main(
        ["--dataset", "sklearn://iris", "--estimator", LOGREG, "--output-dir", str(out), "--termination-log", str(log)]
    )
    assert code == 1
    assert json.loads(log.read_text())["reason"] == "OutputDirNotEmpty"
    assert os.listdir(out) == ["old.txt"] and os.listdir(out.parent) == ["model"]


def test_output_dir_under_a_file_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    log = tmp_path / "termination-log"
    argv = ["--dataset", "sklearn://iris", "--estimator", LOGREG, "--termination-log", str(log)]
    assert main([*argv, "--output-dir", str(tmp_path / "afile" / "sub" / "model")]) == 1
    assert json.loads(log.read_text())["reason"] == "InvalidOutputDir"
    assert "[1/6]" not in capsys.readouterr().out  # refused before loading anything


def test_write_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import joblib

    def broken_dump(model: object, path: str) -> None:
        Path(path).write_bytes(b"half a model")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(joblib, "dump", broken_dump)
    fail(
        tmp_path,
        "--dataset",
        "sklearn://iris",
        "--estimator",
        LOGREG,
        reason="ArtifactWriteFailed",
        contains=("No space left",),
    )


def test_failure_message_is_bounded(tmp_path: Path) -> None:
    columns = ",".join(f"column_with_a_long_name_{i}" for i in range(500))
    data = csv(tmp_path, columns + "\n" + ",".join("1" * 500) + "\n")
    message = fail(tmp_path, "--dataset", data, "--target", "y", "--estimator", LOGREG, reason="MissingTargetColumn")
    assert len((tmp_path / "termination-log").read_bytes()) < 4096
    assert "(500 in all)" in message


class SigtermOnFit(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Behaves like a pod being deleted in the middle of training."""

    def fit(self, x: object, y: object) -> SigtermOnFit:
        os.kill(os.getpid(), signal.SIGTERM)
        return self

    def predict(self, x: object) -> object:
        return None


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    fail(
        tmp_path,
        *("--dataset", "sklearn://iris", "--estimator", f"{__name__}.SigtermOnFit", "--allowed-prefixes", __name__),
        reason="Terminated",
        contains=("SIGTERM",),
    )
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
