"""Adaptive batching in the model server: concurrent requests share estimator calls, and each still gets exactly its
own rows' answer, its own errors, and its own drift rows and labels."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import aiohttp
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
)

pytestmark = pytest.mark.unit

INFER = "/v2/models/iris/infer"


def v2_body(rows: np.ndarray[Any, Any], rid: str) -> dict[str, Any]:
    data = [None if math.isnan(v) else v for v in rows.ravel().tolist()]
    return {"id": rid, "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": data}]}


async def _post_all(url: str, bodies: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def one(body: dict[str, Any]) -> tuple[int, Any]:
            async with http.post(url, json=body) as r:
                return r.status, await r.json()

        return await asyncio.gather(*(one(b) for b in bodies))


def post_concurrently(url: str, bodies: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    return asyncio.run(_post_all(url, bodies))


def histogram(text: str, name: str) -> tuple[float, float, dict[str, float]]:
    """(count, sum, {le: cumulative count}) of an unlabelled-but-for-model histogram."""
    buckets = {k.split('le="')[1].split('"')[0]: v for k, v in metric_lines(text, f"{name}_bucket").items()}
    count = sum(metric_lines(text, f"{name}_count").values())
    total = sum(metric_lines(text, f"{name}_sum").values())
    return count, total, buckets


def test_concurrent_requests_share_calls_and_each_gets_its_own_rows(model_dir: tuple[Path, str]) -> None:
    estimator = joblib.load(model_dir[0] / "model.joblib")
    x = reference_data(200, seed=7)
    sizes = [1 + (i % 3) for i in range(40)]  # 79 rows in 40 requests
    starts = np.cumsum([0, *sizes[:-1]])
    parts = [x[s : s + n] for s, n in zip(starts, sizes, strict=True)]
    state = server_state(*model_dir, "iris", "3", "--batch-max-wait-seconds", "0.2", "--drift-min-samples", "10")
    with running(state) as base:
        answers = post_concurrently(base + INFER, [v2_body(p, f"r{i}") for i, p in enumerate(parts)])
        # Each request's labels join its own rows: as many labels as it had rows, no more, no fewer.
        labels = [{"id": f"r{i}", "truth": estimator.predict(p).tolist()} for i, p in enumerate(parts)]
        label = requests.post(base + "/v2/models/iris/feedback", json={"feedback": labels}, timeout=10)
        text = requests.get(base + "/metrics", timeout=10).text
    for i, (status, body) in enumerate(answers):
        assert status == 200, body
        assert body["id"] == f"r{i}"
        assert body["outputs"][0]["data"] == estimator.predict(parts[i]).tolist()
        assert body["outputs"][0]["shape"] == [sizes[i], 1]
    calls, requests_in_calls, _ = histogram(text, "driftline_inference_batch_requests")
    _, rows_in_calls, _ = histogram(text, "driftline_inference_batch_rows")
    assert requests_in_calls == 40 and rows_in_calls == sum(sizes)
    assert calls < 40, f"{calls:g} estimator calls for 40 concurrent requests: nothing was batched"
    assert sum(metric_lines(text, "driftline_drift_window_samples").values()) == sum(sizes)  # each row once
    assert sum(metric_lines(text, "driftline_predictions_total").values()) == sum(sizes)
    assert label.status_code == 200, label.text
    assert metric_lines(text, "driftline_feedback_rows_total")['{model="iris",result="accepted",version="3"}'] == sum(
        sizes
    )


def test_a_bad_request_fails_alone_with_its_own_400(model_dir: tuple[Path, str]) -> None:
    estimator = joblib.load(model_dir[0] / "model.joblib")
    x = reference_data(30, seed=3)
    bodies = [v2_body(x[i : i + 1], f"r{i}") for i in range(30)]
    broken = x[5:6].copy()
    broken[0, 2] = math.nan  # LogisticRegression takes no missing values
    bodies[5] = v2_body(broken, "r5")
    with running(server_state(*model_dir, "iris", "3", "--batch-max-wait-seconds", "0.2")) as base:
        answers = post_concurrently(base + INFER, bodies)
        text = requests.get(base + "/metrics", timeout=10).text
    status, body = answers[5]
    assert status == 400
    assert f"feature '{FEATURES[2]}' row 0: missing value" in body["error"]
    for i, (status, body) in enumerate(answers):
        if i != 5:
            assert status == 200, body
            assert body["outputs"][0]["data"] == estimator.predict(x[i : i + 1]).tolist()
    codes = metric_lines(text, "driftline_inference_requests_total")
    assert sum(v for k, v in codes.items() if 'code="200"' in k) == 29
    assert sum(v for k, v in codes.items() if 'code="400"' in k) == 1


def test_string_features_batch_as_one_dataframe_and_an_unknown_category_fails_alone(tmp_path: Path) -> None:
    sha = write_mixed_model_dir(tmp_path)
    estimator = joblib.load(tmp_path / "model.joblib")
    colors = ["red", "green", "blue", "purple", "red", "blue"]  # purple: unseen in training, refused by the model
    bodies = [
        {"instances": [{"size": 0.1 * i, "color": c}, {"size": -0.5, "color": "green"}]} for i, c in enumerate(colors)
    ]

    async def post_v1(base: str) -> list[tuple[int, Any]]:
        async with aiohttp.ClientSession() as http:

            async def one(body: dict[str, Any]) -> tuple[int, Any]:
                async with http.post(base + "/v1/models/shop:predict", json=body) as r:
                    return r.status, await r.json()

            return await asyncio.gather(*(one(b) for b in bodies))

    with running(server_state(tmp_path, sha, "shop", "2", "--batch-max-wait-seconds", "0.2")) as base:
        answers = asyncio.run(post_v1(base))
        text = requests.get(base + "/metrics", timeout=10).text
    import pandas as pd

    for body, (status, answer) in zip(bodies, answers, strict=True):
        if body["instances"][0]["color"] == "purple":
            assert status == 422 and "the model rejected the input" in answer["error"]
        else:
            assert status == 200, answer
            assert answer["predictions"] == estimator.predict(pd.DataFrame(body["instances"])).tolist()
    calls, requests_in_calls, _ = histogram(text, "driftline_inference_batch_requests")
    assert calls < len(bodies) and requests_in_calls >= len(bodies)


def test_no_call_exceeds_max_rows_and_a_request_as_large_goes_alone(model_dir: tuple[Path, str]) -> None:
    estimator = joblib.load(model_dir[0] / "model.joblib")
    x = reference_data(40, seed=5)
    bodies = [v2_body(x[i : i + 1], f"one{i}") for i in range(20)] + [v2_body(x[20:26], "six")]
    state = server_state(*model_dir, "iris", "3", "--batch-max-rows", "4", "--batch-max-wait-seconds", "0.2")
    with running(state) as base:
        answers = post_concurrently(base + INFER, bodies)
        text = requests.get(base + "/metrics", timeout=10).text
    assert [s for s, _ in answers] == [200] * 21
    assert answers[-1][1]["outputs"][0]["data"] == estimator.predict(x[20:26]).tolist()
    calls, _, rows = histogram(text, "driftline_inference_batch_rows")
    assert rows["4.0"] == calls - 1, rows  # every call but the six-row request's had at most 4 rows
    assert rows["2.0"] < calls  # and requests were batched: some call had more than 2 rows (max wait 0.2 s)


def test_batching_off_calls_the_model_once_per_request(model_dir: tuple[Path, str]) -> None:
    x = reference_data(10, seed=2)
    bodies = [v2_body(x[i : i + 1], f"r{i}") for i in range(10)]
    with running(server_state(*model_dir, "iris", "3", "--batch-max-rows", "0")) as base:
        answers = post_concurrently(base + INFER, bodies)
        text = requests.get(base + "/metrics", timeout=10).text
    assert [s for s, _ in answers] == [200] * 10
    calls, requests_in_calls, _ = histogram(text, "driftline_inference_batch_requests")
    assert calls == requests_in_calls == 10


def test_a_batch_too_big_for_the_loop_is_predicted_off_it_with_the_same_answers(model_dir: tuple[Path, str]) -> None:
    estimator = joblib.load(model_dir[0] / "model.joblib")
    x = reference_data(16_000, seed=9)
    parts = [x[:8000], x[8000:]]  # 8,000 rows x 4 features each; together above the 50,000 values kept on the loop
    state = server_state(*model_dir, "iris", "3", "--batch-max-rows", "20000", "--batch-max-wait-seconds", "0.5")
    with running(state) as base:
        answers = post_concurrently(base + INFER, [v2_body(p, f"big{i}") for i, p in enumerate(parts)])
    for part, (status, body) in zip(parts, answers, strict=True):
        assert status == 200
        assert body["outputs"][0]["data"] == estimator.predict(part).tolist()


def test_a_model_bug_in_a_batch_is_a_500_for_each_request_and_the_server_keeps_serving(tmp_path: Path) -> None:
    sha = write_exploding_model_dir(tmp_path)
    x = reference_data(6, seed=1)
    with running(server_state(tmp_path, sha, "iris", "3", "--batch-max-wait-seconds", "0.2")) as base:
        answers = post_concurrently(base + INFER, [v2_body(x[i : i + 1], f"r{i}") for i in range(6)])
        assert requests.get(base + "/v2/health/ready", timeout=10).status_code == 200
    assert [s for s, _ in answers] == [500] * 6
    assert all("internal error" in body["error"] for _, body in answers)


def test_bad_batching_flags_are_refused(model_dir: tuple[Path, str]) -> None:
    for flags in (["--batch-max-rows", "-1"], ["--batch-max-wait-seconds", "-0.1"], ["--batch-max-wait-seconds", "5"]):
        with pytest.raises(SystemExit):
            server_state(*model_dir, "iris", "3", *flags)
