"""Ground truth joined to served predictions: the bounded store (ids, count and age limits, duplicates, labels a
model cannot have), and live performance as a client would check it: scraped from a real server's /metrics, equal to
scikit-learn's metrics on the rows the client was answered for and the labels it sent."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from sklearn.linear_model import LogisticRegression

from driftline_runtime import scoring
from driftline_runtime.feedback import Outcome, PredictionStore
from driftline_runtime.feedback.evaluation import LabelledWindow
from driftline_runtime.feedback.store import Labels
from tests.unit.runtime.server_kit import metric_lines, reference_data, running, server_state, write_model_dir

pytestmark = pytest.mark.unit


def store(capacity: int = 10, max_age: float = 60.0, task: str = "classification") -> PredictionStore:
    classes = (0, 1, 2) if task == "classification" else ()
    return PredictionStore(capacity, max_age, [True, True], Labels(task, classes))


def cols(rows: int, start: float = 0.0) -> list[np.ndarray[Any, Any]]:
    x = np.arange(start, start + rows, dtype=float)
    return [x, -x]


def test_a_label_joins_its_prediction_once() -> None:
    s = store()
    assert s.add("a", cols(3), np.array([0, 1, 2]), now=0)
    r = s.join("a", [2, 1, 0], None, now=1)
    assert r.outcome is Outcome.ACCEPTED and r.joined is not None
    assert r.joined.truth.tolist() == [2, 1, 0] and r.joined.predicted.tolist() == [0, 1, 2]
    assert r.joined.columns[0].tolist() == [0.0, 1.0, 2.0]
    assert s.join("a", [2, 1, 0], None, now=1).outcome is Outcome.DUPLICATE
    assert s.join("a", 1, 2, now=1).outcome is Outcome.DUPLICATE


def test_rows_of_a_request_are_labelled_one_by_one() -> None:
    s = store()
    s.add("a", cols(3), np.array([0, 1, 2]), now=0)
    assert s.join("a", 1, 2, now=0).outcome is Outcome.ACCEPTED
    assert s.join("a", 1, 2, now=0).outcome is Outcome.DUPLICATE
    assert s.join("a", 0, 0, now=0).outcome is Outcome.ACCEPTED
    assert s.join("a", 0, 3, now=0).outcome is Outcome.INVALID  # no row 3
    assert s.join("a", [0, 1], None, now=0).outcome is Outcome.INVALID  # two labels for three rows
    assert s.join("a", 0, None, now=0).outcome is Outcome.INVALID  # one bare label for three rows


def test_unknown_expired_by_count_and_by_age() -> None:
    s = store(capacity=4, max_age=10)
    s.add("old", cols(2), np.array([0, 1]), now=0)
    s.add("mid", cols(2), np.array([0, 1]), now=1)
    s.add("new", cols(1), np.array([2]), now=2)  # pushes "old" out of the 4-row ring
    assert s.join("nope", 0, None, now=3).outcome is Outcome.UNKNOWN
    expired = s.join("old", [0, 1], None, now=3)
    assert expired.outcome is Outcome.EXPIRED and "last 4 rows" in expired.message
    assert s.join("mid", [0, 1], None, now=3).outcome is Outcome.ACCEPTED
    assert s.join("new", 2, None, now=13).outcome is Outcome.EXPIRED  # 11 s old, max age 10 s
    assert s.held == 0


def test_labels_the_model_cannot_have_are_invalid() -> None:
    s = store()
    s.add("a", cols(1), np.array([1]), now=0)
    for bad in (3, "1", True, None, [1], {"x": 1}, 1.5):
        r = s.join("a", bad, 0, now=0)
        assert r.outcome is Outcome.INVALID, bad
        assert r.message
    assert s.join(7, 1, None, now=0).outcome is Outcome.INVALID  # the id is not a string
    assert s.join("a", 1, True, now=0).outcome is Outcome.INVALID  # a boolean is not a row number
    assert s.join("a", 1.0, None, now=0).outcome is Outcome.ACCEPTED  # JSON 1.0 is the class 1
    reg = store(task="regression")
    reg.add("r", cols(1), np.array([0.5]), now=0)
    for bad in ("1", float("inf"), float("nan"), True, None):
        assert reg.join("r", bad, None, now=0).outcome is Outcome.INVALID, bad
    assert reg.join("r", 2, None, now=0).outcome is Outcome.ACCEPTED


def test_memory_stays_bounded_under_a_flood_of_ids() -> None:
    s = store(capacity=100)
    for i in range(10_000):
        s.add(f"id-{i}", cols(1, i), np.array([i % 3]), now=i * 1e-3)
        s.join(f"unknown-{i}", 0, None, now=i * 1e-3)
    assert s.held == 100
    assert len(s._requests) == 100 and len(s._order) == 100 and len(s._gone) <= 100
    assert s.join("id-9999", 0, None, now=10).outcome is Outcome.ACCEPTED
    assert s.join("id-9000", 0, None, now=10).outcome is Outcome.UNKNOWN  # forgotten even as expired


def test_a_reused_id_names_its_newest_request_and_rows_wrap_around() -> None:
    s = store(capacity=5)
    s.add("same", cols(3, 0), np.array([0, 0, 0]), now=0)
    s.add("same", cols(3, 10), np.array([1, 1, 1]), now=1)  # wraps: slots 3, 4, 0
    assert s.held == 3
    r = s.join("same", [1, 1, 1], None, now=2)
    assert r.joined is not None and r.joined.columns[0].tolist() == [10.0, 11.0, 12.0]
    assert not s.add("big", cols(6), np.zeros(6, dtype=int), now=2)  # more rows than the ring: not kept
    assert not s.add("x" * 300, cols(1), np.array([0]), now=2)  # an id too long to keep


def test_the_window_keeps_the_newest_labelled_rows_in_order() -> None:
    w = LabelledWindow(4, [True, True], np.int32)
    w.add(cols(3), np.array([0, 1, 2]), np.array([0, 0, 0]))
    w.add(cols(3, 3), np.array([1, 1, 1]), np.array([2, 2, 2]))
    columns, predicted, truth = w.rows()
    assert w.samples == 4
    assert columns[0].tolist() == [2.0, 3.0, 4.0, 5.0] and truth.tolist() == [0, 2, 2, 2]
    assert predicted.tolist() == [2, 1, 1, 1]
    w.add(cols(9, 100), np.zeros(9, dtype=np.int32), np.ones(9, dtype=np.int32))
    assert w.rows()[0][0].tolist() == [105.0, 106.0, 107.0, 108.0]


# --- Through a real server, as a client sees it. ---------------------------------------------------------------------


def _serve_and_label(tmp_path: Path, task: str, extra: tuple[str, ...] = ()) -> tuple[dict[str, float], dict[str, Any]]:
    """Predict 300 rows in requests of every shape (V2 with an id, V2 without, V1 with X-Request-Id), label them as
    the model's own rules would but with 20% flipped, and return the server's live metrics and the client's record."""
    sha = write_model_dir(tmp_path, task=task)
    x = reference_data(300, seed=7)
    rng = np.random.default_rng(3)
    http = requests.Session()
    http.trust_env = False
    answered: list[Any] = []
    truth: list[Any] = []
    args = ("--performance-min-samples", "50", "--performance-window-size", "1000", *extra)
    with running(server_state(tmp_path, sha, "iris", "3", *args)) as base:
        for start in range(0, 300, 10):
            chunk = x[start : start + 10]
            kind = (start // 10) % 3
            if kind == 0:
                body = {
                    "id": f"req-{start}",
                    "inputs": [{"name": "x", "shape": [10, 4], "datatype": "FP64", "data": chunk.ravel().tolist()}],
                }
                r = http.post(f"{base}/v2/models/iris/infer", json=body, timeout=10)
                assert r.json()["id"] == f"req-{start}" and r.headers["X-Request-Id"] == f"req-{start}"
                got = r.json()["outputs"][0]["data"]
            elif kind == 1:
                body = {"inputs": [{"name": "x", "shape": [10, 4], "datatype": "FP64", "data": chunk.ravel().tolist()}]}
                r = http.post(f"{base}/v2/models/iris/infer", json=body, timeout=10)
                got = r.json()["outputs"][0]["data"]
            else:
                r = http.post(
                    f"{base}/v1/models/iris:predict",
                    json={"instances": chunk.tolist()},
                    headers={"X-Request-Id": f"v1-{start}"},
                    timeout=10,
                )
                got = r.json()["predictions"]
            assert r.status_code == 200, r.text
            rid = r.headers["X-Request-Id"]
            if task == "classification":
                labels = [int(v) if rng.random() > 0.2 else int((v + 1) % 3) for v in got]
            else:
                labels = [float(v) + float(rng.normal(0, 1)) for v in got]
            answered += got
            truth += labels
            if kind == 0:  # row by row, in one batch
                fb = {"feedback": [{"id": rid, "row": i, "truth": t} for i, t in enumerate(labels)]}
                r = http.post(f"{base}/v2/models/iris/feedback", json=fb, timeout=10)
                assert r.json()["accepted"] == 10, r.text
            elif kind == 1:
                r = http.post(
                    f"{base}/v2/models/iris/versions/3/feedback", json={"id": rid, "truth": labels}, timeout=10
                )
                assert r.status_code == 200 and r.json() == {"accepted": 10}, r.text
            else:
                r = http.post(f"{base}/v1/models/iris:feedback", json={"id": rid, "truth": labels}, timeout=10)
                assert r.status_code == 200, r.text
        text = http.get(f"{base}/metrics", timeout=10).text
    live = {
        k.split('metric="')[1].split('"')[0]: v for k, v in metric_lines(text, "driftline_live_performance").items()
    }
    return live, {"x": x, "answered": answered, "truth": truth, "text": text}


def test_live_classification_metrics_equal_scikit_learns_on_the_same_rows(tmp_path: Path) -> None:
    import joblib

    live, seen = _serve_and_label(tmp_path, "classification")
    model = joblib.load(tmp_path / "model.joblib")
    expected = scoring.score(
        "classification", seen["truth"], seen["answered"], model.classes_, model.predict_proba(seen["x"])
    )
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    assert set(live) == {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    assert live["accuracy"] == pytest.approx(accuracy_score(seen["truth"], seen["answered"]), abs=1e-9)
    assert live["f1_macro"] == pytest.approx(f1_score(seen["truth"], seen["answered"], average="macro"), abs=1e-9)
    proba = model.predict_proba(seen["x"])
    assert live["log_loss"] == pytest.approx(log_loss(seen["truth"], proba, labels=model.classes_), abs=1e-9)
    for name, value in expected.items():
        assert live[name] == pytest.approx(value, abs=1e-9), name
    assert 0.6 < live["accuracy"] < 0.95  # a fifth of the labels were flipped
    assert metric_lines(seen["text"], "driftline_live_performance_samples") == {'{model="iris",version="3"}': 300.0}
    rows = metric_lines(seen["text"], "driftline_feedback_rows_total")
    assert rows['{model="iris",result="accepted",version="3"}'] == 300.0


def test_live_regression_metrics_equal_scikit_learns_on_the_same_rows(tmp_path: Path) -> None:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    live, seen = _serve_and_label(tmp_path, "regression")
    assert set(live) == {"rmse", "mae", "r2"}
    assert live["mae"] == pytest.approx(mean_absolute_error(seen["truth"], seen["answered"]), abs=1e-9)
    assert live["rmse"] == pytest.approx(math.sqrt(mean_squared_error(seen["truth"], seen["answered"])), abs=1e-9)
    assert live["r2"] == pytest.approx(r2_score(seen["truth"], seen["answered"]), abs=1e-9)


def test_below_min_samples_live_metrics_are_nan(tmp_path: Path) -> None:
    live, _ = _serve_and_label(tmp_path, "classification", ("--performance-min-samples", "1000"))
    assert live and all(math.isnan(v) for v in live.values())


def test_binary_metrics_and_the_trainer_agree(tmp_path: Path) -> None:
    """A binary classifier is scored by f1 (the greater class positive) and roc_auc, as the trainer scores it."""
    x = reference_data(200)
    y = np.where(x[:, 0] > 0, "yes", "no")
    model = LogisticRegression().fit(x, y)
    got = scoring.score("classification", y, model.predict(x), model.classes_, model.predict_proba(x))
    assert set(got) == {"accuracy", "f1", "roc_auc", "log_loss"}
    from sklearn.metrics import f1_score, roc_auc_score

    assert got["f1"] == pytest.approx(f1_score(y, model.predict(x), pos_label="yes"), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y == "yes", model.predict_proba(x)[:, 1]), abs=1e-12)
    one_class = scoring.score("classification", ["yes"] * 5, ["yes"] * 5, model.classes_, model.predict_proba(x[:5]))
    assert "roc_auc" not in one_class  # undefined on one class: left out, never a made-up number


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("model")
    sha = write_model_dir(directory)
    with running(server_state(directory, sha, "iris", "3", "--feedback-max-rows", "20")) as base:
        http = requests.Session()
        http.trust_env = False
        yield base, http


def _predict(base: str, http: requests.Session, rid: str, rows: int = 1) -> list[Any]:
    r = http.post(
        f"{base}/v2/models/iris/infer",
        timeout=10,
        json={
            "id": rid,
            "inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP64", "data": [1.0, 5.0, 3.0, 1.0] * rows}],
        },
    )
    assert r.status_code == 200, r.text
    return list(r.json()["outputs"][0]["data"])


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"id": "nobody", "truth": 1}, 404, "no prediction with id 'nobody'"),
        ({"id": "one", "truth": 7}, 422, "label 7 is not one of the model's classes (0, 1, 2)"),
        ({"id": "one", "truth": 1, "extra": 2}, 400, "unknown field(s) extra"),
        ({"truth": 1}, 400, "no 'id'"),
        ({"feedback": "x"}, 400, '"feedback" must be a list'),
        ({"feedback": [{"id": "one"}]}, 400, "feedback[0] has no 'truth'"),
    ],
)
def test_bad_labels_get_a_4xx_naming_the_problem(served: Any, body: Any, status: int, words: str) -> None:
    base, http = served
    _predict(base, http, "one")
    r = http.post(f"{base}/v2/models/iris/feedback", json=body, timeout=10)
    assert r.status_code == status and words in r.json()["error"], r.text


def test_duplicate_and_expired_labels_are_told_apart(served: Any) -> None:
    base, http = served
    _predict(base, http, "first")
    truth = _predict(base, http, "twice")[0]
    assert http.post(f"{base}/v2/models/iris/feedback", json={"id": "twice", "truth": truth}, timeout=10).ok
    again = http.post(f"{base}/v2/models/iris/feedback", json={"id": "twice", "truth": truth}, timeout=10)
    assert again.status_code == 409 and "already has its label" in again.json()["error"]
    _predict(base, http, "flood", rows=20)  # pushes "first" out of the 20-row store
    late = http.post(f"{base}/v1/models/iris:feedback", json={"id": "first", "truth": 0}, timeout=10)
    assert late.status_code == 410 and "has expired" in late.json()["error"], late.text


def test_a_batch_of_labels_is_counted_by_outcome(served: Any) -> None:
    base, http = served
    truth = _predict(base, http, "b1")[0]
    body = {
        "feedback": [
            {"id": "b1", "truth": truth},
            {"id": "b1", "truth": truth},
            {"id": "zz", "truth": 0},
            {"id": "b1", "truth": "x"},
        ]
    }
    r = http.post(f"{base}/v2/models/iris/feedback", json=body, timeout=10)
    assert r.status_code == 200, r.text
    got = r.json()
    assert {k: got[k] for k in ("accepted", "duplicate", "unknown", "invalid", "expired")} == {
        "accepted": 1,
        "duplicate": 1,
        "unknown": 1,
        "invalid": 1,
        "expired": 0,
    }
    assert any("feedback[2]" in e for e in got["errors"])
    text = http.get(f"{base}/metrics", timeout=10).text
    assert metric_lines(text, "driftline_feedback_rows_total")['{model="iris",result="unknown",version="3"}'] >= 1


def test_the_labelled_window_is_served_as_csv_for_a_retrain(served: Any) -> None:
    import io

    import pandas as pd

    base, http = served
    truth = _predict(base, http, "csv-1")[0]
    assert http.post(f"{base}/v2/models/iris/feedback", json={"id": "csv-1", "truth": truth}, timeout=10).ok
    r = http.get(f"{base}/v2/models/iris/feedback/rows", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv"), r.text
    rows = pd.read_csv(io.StringIO(r.text))
    assert list(rows.columns) == ["f0", "f1", "f2", "f3", "y"]
    assert rows.iloc[-1].tolist() == [1.0, 5.0, 3.0, 1.0, truth]
    assert http.get(f"{base}/v2/models/other/feedback/rows", timeout=10).status_code == 404
