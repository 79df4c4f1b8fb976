"""The model server's protocols in-process: KServe V1, Open Inference Protocol V2, health, metrics, drift."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import requests

from tests.unit.runtime.server_kit import (
    FEATURES,
    metric_lines,
    reference_data,
    running,
    server_state,
    write_exploding_model_dir,
    write_mixed_model_dir,
    write_model_dir,
)

pytestmark = pytest.mark.unit

ROWS = [[0.1, 5.0, 3.0, 1.0], [2.0, 6.0, 9.5, 0.2], [-1.0, 4.0, 1.0, 3.0]]


@pytest.fixture(scope="module")
def url(model_dir: tuple[Path, str]) -> Iterator[str]:
    with running(server_state(*model_dir, "iris", "3", "--drift-min-samples", "20")) as base:
        yield base


@pytest.fixture(scope="module")
def regressor_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("regressor")
    with running(server_state(directory, write_model_dir(directory, task="regression"), "prices", "1")) as base:
        yield base


@pytest.fixture(scope="module")
def mixed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("mixed")
    with running(server_state(directory, write_mixed_model_dir(directory), "shop", "2")) as base:
        yield base


def expected_predictions(model_dir: tuple[Path, str], rows: Any, method: str = "predict") -> list[Any]:
    estimator = joblib.load(model_dir[0] / "model.joblib")
    predictions: list[Any] = getattr(estimator, method)(np.asarray(rows)).tolist()
    return predictions


def test_v1_predict_with_rows_as_lists_and_as_objects(url: str, model_dir: tuple[Path, str]) -> None:
    expected = expected_predictions(model_dir, ROWS)
    r = requests.post(f"{url}/v1/models/iris:predict", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 200 and r.json() == {"predictions": expected}
    objects = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    r = requests.post(f"{url}/v1/models/iris:predict", json={"instances": objects}, timeout=30)
    assert r.status_code == 200 and r.json() == {"predictions": expected}


def test_v1_predict_proba_and_model_status(url: str, model_dir: tuple[Path, str]) -> None:
    r = requests.post(f"{url}/v1/models/iris:predict_proba", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 200
    assert np.allclose(r.json()["predictions"], expected_predictions(model_dir, ROWS, "predict_proba"), atol=1e-12)
    assert requests.get(f"{url}/v1/models/iris", timeout=30).json() == {"name": "iris", "ready": True}
    assert requests.get(f"{url}/v1/models", timeout=30).json() == {"models": ["iris"]}


def test_v2_infer_matrix_tensor_follows_mlserver_conventions(url: str, model_dir: tuple[Path, str]) -> None:
    body = {
        "id": "req-1",
        "inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP64", "data": ROWS}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    r = requests.post(f"{url}/v2/models/iris/infer", json=body, timeout=30)
    assert r.status_code == 200
    out = r.json()
    assert (out["model_name"], out["model_version"], out["id"]) == ("iris", "3", "req-1")
    predict, proba = out["outputs"]
    assert predict == {
        "name": "predict",
        "shape": [3, 1],
        "datatype": "INT64",
        "parameters": {"content_type": "np"},
        "data": expected_predictions(model_dir, ROWS),
    }
    assert proba["name"] == "predict_proba" and proba["shape"] == [3, 3] and proba["datatype"] == "FP64"
    expected_proba = np.asarray(expected_predictions(model_dir, ROWS, "predict_proba")).ravel()
    assert np.allclose(proba["data"], expected_proba, atol=1e-12)


def test_v2_infer_one_tensor_per_feature_and_versioned_path(url: str, model_dir: tuple[Path, str]) -> None:
    columns = np.asarray(ROWS).T.tolist()
    inputs = [
        {"name": name, "shape": [3, 1] if j % 2 else [3], "datatype": "FP32", "data": columns[j]}
        for j, name in enumerate(FEATURES)
    ]
    r = requests.post(f"{url}/v2/models/iris/versions/3/infer", json={"inputs": inputs[::-1]}, timeout=30)
    assert r.status_code == 200
    out = r.json()
    assert out["outputs"][0]["data"] == expected_predictions(model_dir, np.asarray(ROWS, dtype=np.float32))
    assert isinstance(out["id"], str) and out["id"]


def test_v2_flat_data_and_integer_datatypes(url: str, model_dir: tuple[Path, str]) -> None:
    rows = [[1, 5, 3, 1], [2, 6, 9, 0]]
    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "INT64", "data": [v for row in rows for v in row]}]}
    r = requests.post(f"{url}/v2/models/iris/infer", json=body, timeout=30)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == expected_predictions(model_dir, rows)


def test_v2_health_metadata_and_server_info(url: str) -> None:
    assert requests.get(f"{url}/v2/health/live", timeout=30).status_code == 200
    assert requests.get(f"{url}/v2/health/ready", timeout=30).json() == {"ready": True}
    assert requests.get(f"{url}/v2/models/iris/ready", timeout=30).status_code == 200
    assert requests.get(f"{url}/v2/models/iris/versions/3/ready", timeout=30).status_code == 200
    assert requests.get(f"{url}/v2", timeout=30).json()["name"] == "driftline-runtime"
    meta = requests.get(f"{url}/v2/models/iris", timeout=30).json()
    assert meta["name"] == "iris" and meta["versions"] == ["3"] and meta["platform"] == "sklearn"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert meta["outputs"][0]["datatype"] == "INT64"
    assert [f["name"] for f in meta["parameters"]["features"]] == list(FEATURES)
    assert meta["parameters"]["classes"] == [0, 1, 2]
    assert requests.get(f"{url}/v2/models/iris/versions/3", timeout=30).json() == meta


def test_regressor_serves_predictions_but_refuses_predict_proba(regressor_url: str) -> None:
    r = requests.post(f"{regressor_url}/v1/models/prices:predict", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 200
    assert r.json()["predictions"] == pytest.approx([3 * a - b + 0.5 * c for a, b, c, _ in ROWS])
    r = requests.post(f"{regressor_url}/v1/models/prices:predict_proba", json={"instances": ROWS}, timeout=30)
    assert r.status_code == 400 and "regression" in r.json()["error"]
    body = {"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP64", "data": ROWS}]}
    r = requests.post(f"{regressor_url}/v2/models/prices/infer", json=body, timeout=30)
    assert r.status_code == 200 and r.json()["outputs"][0]["datatype"] == "FP64"
    body["outputs"] = [{"name": "predict_proba"}]
    r = requests.post(f"{regressor_url}/v2/models/prices/infer", json=body, timeout=30)
    assert r.status_code == 400 and "predict_proba needs a classifier" in r.json()["error"]
    meta = requests.get(f"{regressor_url}/v2/models/prices", timeout=30).json()
    assert [o["name"] for o in meta["outputs"]] == ["predict"]


def test_string_features_go_to_the_model_as_a_dataframe(mixed_url: str) -> None:
    rows = [[2.0, "blue"], [0.0, "red"], [0.0, "green"]]
    r = requests.post(f"{mixed_url}/v1/models/shop:predict", json={"instances": rows}, timeout=30)
    assert r.status_code == 200 and r.json() == {"predictions": ["yes", "yes", "no"]}
    objects = [{"size": s, "color": c} for s, c in rows]
    assert requests.post(f"{mixed_url}/v1/models/shop:predict", json={"instances": objects}, timeout=30).json() == {
        "predictions": ["yes", "yes", "no"]
    }
    tensors = [
        {"name": "color", "shape": [3], "datatype": "BYTES", "data": ["blue", "red", "green"]},
        {"name": "size", "shape": [3, 1], "datatype": "FP64", "data": [2.0, 0.0, 0.0]},
    ]
    out = requests.post(f"{mixed_url}/v2/models/shop/infer", json={"inputs": tensors}, timeout=30).json()
    assert out["outputs"][0]["data"] == ["yes", "yes", "no"] and out["outputs"][0]["datatype"] == "BYTES"
    matrix = {"inputs": [{"name": "x", "shape": [3, 2], "datatype": "BYTES", "data": rows}]}
    out = requests.post(f"{mixed_url}/v2/models/shop/infer", json=matrix, timeout=30).json()
    assert out["outputs"][0]["data"] == ["yes", "yes", "no"]
    assert requests.get(f"{mixed_url}/v2/models/shop", timeout=30).json()["inputs"][0]["datatype"] == "BYTES"


def test_model_errors_on_bad_values_are_client_errors(mixed_url: str) -> None:
    r = requests.post(f"{mixed_url}/v1/models/shop:predict", json={"instances": [[1.0, "purple"]]}, timeout=30)
    assert r.status_code == 422
    assert "the model rejected the input" in r.json()["error"] and "purple" in r.json()["error"]
    r = requests.post(f"{mixed_url}/v1/models/shop:predict", json={"instances": [[1.0, "red"]]}, timeout=30)
    assert r.status_code == 200


def test_an_unexpected_model_failure_is_a_500_and_the_server_keeps_serving(tmp_path: Path) -> None:
    sha = write_exploding_model_dir(tmp_path)
    with running(server_state(tmp_path, sha)) as base:
        r = requests.post(f"{base}/v1/models/iris:predict", json={"instances": ROWS}, timeout=30)
        assert r.status_code == 500 and "internal error" in r.json()["error"]
        assert requests.get(f"{base}/v2/health/ready", timeout=30).status_code == 200
        codes = metric_lines(requests.get(f"{base}/metrics", timeout=30).text, "driftline_inference_requests_total")
        assert codes == {'{code="500",model="iris",protocol="v1",version="3"}': 1.0}


def test_request_metrics_count_requests_rows_and_codes(url: str) -> None:
    before = metric_lines(requests.get(f"{url}/metrics", timeout=30).text, "driftline_predictions_total")
    requests.post(f"{url}/v1/models/iris:predict", json={"instances": ROWS}, timeout=30)
    requests.post(f"{url}/v1/models/wrong-name:predict", json={"instances": ROWS}, timeout=30)
    text = requests.get(f"{url}/metrics", timeout=30).text
    rows = metric_lines(text, "driftline_predictions_total")
    key = '{model="iris",version="3"}'
    assert rows[key] == before.get(key, 0) + 3
    requests_total = metric_lines(text, "driftline_inference_requests_total")
    assert requests_total['{code="404",model="iris",protocol="v1",version="3"}'] >= 1
    assert all('model="iris"' in labels for labels in requests_total)
    assert metric_lines(text, "driftline_inference_request_duration_seconds_count")
    info = metric_lines(text, "driftline_model_info")
    assert len(info) == 1 and next(iter(info.values())) == 1.0 and 'sha256="' in next(iter(info))


def test_drift_metrics_are_nan_until_min_samples_then_track_the_stream(tmp_path: Path) -> None:
    sha = write_model_dir(tmp_path)
    state = server_state(tmp_path, sha, "iris", "3", "--drift-min-samples", "200", "--drift-window-size", "500")
    with running(state) as base:
        text = requests.get(f"{base}/metrics", timeout=30).text
        assert metric_lines(text, "driftline_drift_window_samples") == {'{model="iris",version="3"}': 0.0}
        scores = metric_lines(text, "driftline_drift_score")
        assert len(scores) == 4 and all(math.isnan(v) for v in scores.values())
        feature = metric_lines(text, "driftline_feature_drift")
        assert len(feature) == 4 * 4 and all(math.isnan(v) for v in feature.values())

        calm = reference_data(500, seed=11)
        requests.post(f"{base}/v1/models/iris:predict", json={"instances": calm.tolist()}, timeout=30)
        text = requests.get(f"{base}/metrics", timeout=30).text
        assert metric_lines(text, "driftline_drift_window_samples") == {'{model="iris",version="3"}': 500.0}
        assert metric_lines(text, "driftline_drift_score")['{method="psi",model="iris",version="3"}'] < 0.1
        assert metric_lines(text, "driftline_drifted_features")['{method="psi",model="iris",version="3"}'] == 0.0

        shifted = reference_data(500, seed=12) * 1.5 + 1.0
        body = {"inputs": [{"name": "x", "shape": [500, 4], "datatype": "FP64", "data": shifted.ravel().tolist()}]}
        requests.post(f"{base}/v2/models/iris/infer", json=body, timeout=30)
        text = requests.get(f"{base}/metrics", timeout=30).text
        feature = metric_lines(text, "driftline_feature_drift")
        assert all(feature[f'{{feature="{f}",method="psi",model="iris",version="3"}}'] > 0.25 for f in FEATURES)
        assert metric_lines(text, "driftline_drifted_features")['{method="psi",model="iris",version="3"}'] == 1.0
        prediction = metric_lines(text, "driftline_prediction_drift")
        assert set(prediction) == {'{method="psi",model="iris",version="3"}', '{method="js",model="iris",version="3"}'}
        assert metric_lines(text, "driftline_drift_threshold")['{method="psi",model="iris",version="3"}'] == 0.25
        # What drift cost the server so far: it grows with the work (binning 500 rows, computing drift) and stays
        # below the whole process's CPU time.
        cpu = metric_lines(text, "driftline_drift_cpu_seconds_total")['{model="iris",version="3"}']
        assert 0 < cpu < time.process_time()


def test_readiness_turns_false_when_shutdown_begins(model_dir: tuple[Path, str]) -> None:
    state = server_state(*model_dir)
    with running(state) as base:
        assert requests.get(f"{base}/v2/health/ready", timeout=30).status_code == 200
        state.ready = False
        r = requests.get(f"{base}/v2/health/ready", timeout=30)
        assert r.status_code == 503 and r.json() == {"ready": False}
        assert requests.get(f"{base}/v1/models/iris", timeout=30).status_code == 503
        assert requests.get(f"{base}/v2/models/iris/ready", timeout=30).status_code == 503
        assert requests.get(f"{base}/v2/health/live", timeout=30).status_code == 200
        # In-flight and late requests are still answered while draining.
        assert requests.post(f"{base}/v1/models/iris:predict", json={"instances": ROWS}, timeout=30).ok


def test_no_drift_serves_the_same_answers_without_drift_metrics(tmp_path: Path, model_dir: tuple[Path, str]) -> None:
    with running(server_state(*model_dir, "iris", "3", "--no-drift")) as base:
        got = requests.post(f"{base}/v1/models/iris:predict", json={"instances": ROWS}, timeout=30)
        assert got.status_code == 200 and got.json()["predictions"] == expected_predictions(model_dir, ROWS)
        text = requests.get(f"{base}/metrics", timeout=30).text
    assert metric_lines(text, "driftline_predictions_total") == {'{model="iris",version="3"}': float(len(ROWS))}
    assert "driftline_drift" not in text and "driftline_feature_drift" not in text
