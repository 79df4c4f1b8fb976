"""Test support for the model server and drift tests: model directories in the trainer's artifact format.

Built here with sklearn + joblib + json so the server tests do not depend on the trainer's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt

FEATURES = ("f0", "f1", "f2", "f3")


def numeric_profile(name: str, values: npt.ArrayLike, bins: int = 10) -> dict[str, Any]:
    x = np.asarray(values, dtype=float)
    present = x[~np.isnan(x)]
    cuts = np.unique(np.quantile(present, [k / bins for k in range(1, bins)])).tolist()
    counts = np.bincount(np.searchsorted(cuts, present, side="right"), minlength=len(cuts) + 1)
    return {
        "name": name,
        "kind": "numeric",
        "cuts": cuts,
        "counts": counts.tolist(),
        "min": float(present.min()),
        "max": float(present.max()),
        "missing": int(x.size - present.size),
    }


def categorical_profile(name: str, values: Sequence[Any], keep: int | None = None) -> dict[str, Any]:
    present = [str(v) for v in values if v is not None]
    ranked = Counter(present).most_common()
    kept = ranked[:keep] if keep else ranked
    return {
        "name": name,
        "kind": "categorical",
        "categories": [c for c, _ in kept],
        "counts": [n for _, n in kept],
        "other": sum(n for _, n in ranked[len(kept) :]),
        "missing": len(values) - len(present),
    }


def reference_data(rows: int = 600, seed: int = 0) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [rng.normal(0, 1, rows), rng.normal(5, 2, rows), rng.uniform(0, 10, rows), rng.exponential(1, rows)]
    )


def write_model_dir(
    directory: Path,
    task: str = "classification",
    estimator: Any = None,
    rows: int = 600,
    seed: int = 0,
) -> str:
    """Fit a small model on FEATURES, write model.joblib + metadata.json + profile.json; return the sha256."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    x = reference_data(rows, seed)
    y: npt.NDArray[Any]
    if task == "classification":
        y = (x[:, 0] + 0.3 * x[:, 1] + np.random.default_rng(seed + 1).normal(0, 0.5, rows) > 1.5).astype(np.int64)
        y[x[:, 2] > 9] = 2
        model = estimator if estimator is not None else LogisticRegression(max_iter=500)
    else:
        y = 3 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2]
        model = estimator if estimator is not None else LinearRegression()
    model.fit(x, y)
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.joblib")
    sha = hashlib.sha256((directory / "model.joblib").read_bytes()).hexdigest()
    predictions = model.predict(x)
    prediction = (
        categorical_profile("__prediction__", predictions.tolist())
        if task == "classification"
        else numeric_profile("__prediction__", predictions)
    )
    metadata: dict[str, Any] = {
        "formatVersion": 1,
        "task": task,
        "target": "y",
        "features": [{"name": f, "dtype": "float64"} for f in FEATURES],
        "metrics": {},
        "estimator": type(model).__name__,
        "framework": "scikit-learn",
        "frameworkVersion": "1.x",
        "artifact": {"file": "model.joblib", "sha256": sha, "format": "joblib"},
    }
    if task == "classification":
        metadata["classes"] = model.classes_.tolist()
    profile = {
        "formatVersion": 1,
        "rows": rows,
        "features": [numeric_profile(f, x[:, j]) for j, f in enumerate(FEATURES)],
        "prediction": prediction,
    }
    (directory / "metadata.json").write_text(json.dumps(metadata))
    (directory / "profile.json").write_text(json.dumps(profile))
    return sha


def write_mixed_model_dir(directory: Path, rows: int = 400, seed: int = 0) -> str:
    """A pipeline over one numeric and one string feature (one-hot, unknown categories rejected)."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"size": rng.normal(0, 1, rows), "color": rng.choice(["red", "green", "blue"], rows)})
    y = np.where((frame["color"] == "red") | (frame["size"] > 1), "yes", "no")
    model = make_pipeline(
        ColumnTransformer([("color", OneHotEncoder(handle_unknown="error"), ["color"])], remainder="passthrough"),
        LogisticRegression(max_iter=500),
    ).fit(frame, y)
    directory.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, directory / "model.joblib")
    sha = hashlib.sha256((directory / "model.joblib").read_bytes()).hexdigest()
    metadata = {
        "formatVersion": 1,
        "task": "classification",
        "target": "label",
        "features": [{"name": "size", "dtype": "float64"}, {"name": "color", "dtype": "object"}],
        "classes": model.classes_.tolist(),
        "metrics": {},
        "estimator": "Pipeline",
        "framework": "scikit-learn",
        "frameworkVersion": "1.x",
        "artifact": {"file": "model.joblib", "sha256": sha, "format": "joblib"},
    }
    profile = {
        "formatVersion": 1,
        "rows": rows,
        "features": [numeric_profile("size", frame["size"]), categorical_profile("color", frame["color"].tolist())],
        "prediction": categorical_profile("__prediction__", model.predict(frame).tolist()),
    }
    (directory / "metadata.json").write_text(json.dumps(metadata))
    (directory / "profile.json").write_text(json.dumps(profile))
    return sha


class Exploding:
    """An "estimator" whose predict fails the way a bug would (not a bad-input error)."""

    classes_ = np.array([0, 1])

    def fit(self, x: Any, y: Any) -> Exploding:
        return self

    def predict(self, x: Any) -> Any:
        raise RuntimeError("boom")


def write_exploding_model_dir(directory: Path) -> str:
    """A model directory whose estimator fails like a bug (Exploding), its digest recorded; return the sha256."""
    write_model_dir(directory)
    joblib.dump(Exploding(), directory / "model.joblib")
    sha = hashlib.sha256((directory / "model.joblib").read_bytes()).hexdigest()
    metadata = json.loads((directory / "metadata.json").read_text())
    metadata["artifact"]["sha256"] = sha
    (directory / "metadata.json").write_text(json.dumps(metadata))
    return sha


def server_state(directory: Path, sha: str, name: str = "iris", version: str = "3", *extra: str) -> Any:
    """The server's state for a model directory, built exactly as `serve` builds it."""
    from driftline_runtime.server.main import build_state, parse_args
    from driftline_runtime.server.model import load_model

    base = ["--model-dir", str(directory), "--model-name", name, "--model-version", version]
    args = parse_args([*base, "--expected-sha256", sha, *extra])
    return build_state(load_model(directory, name, version, sha), args)


@contextlib.contextmanager
def running(state: Any) -> Iterator[str]:
    """Serve `state` in-process with aiohttp's TestServer on a background event loop; yield its base URL."""
    from aiohttp.test_utils import TestServer

    from driftline_runtime.server.app import create_app

    loop = asyncio.new_event_loop()
    started = threading.Event()
    server = TestServer(create_app(state))

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start_server())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("test server did not start")
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def metric_lines(text: str, name: str) -> dict[str, float]:
    """Samples of one metric from Prometheus text: {'{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, _, value = line[len(name) :].rpartition(" ")
            out[labels] = float(value)
    return out
