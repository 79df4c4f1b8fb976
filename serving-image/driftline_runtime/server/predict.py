"""Calling the estimator, model errors turned into client errors (batching.py decides when, and on which thread)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.server.errors import ApiError
from driftline_runtime.server.inputs import Batch
from driftline_runtime.server.model import ServedModel

# Below this many input values a thread hop costs more than the prediction; above it, keep the loop free for
# probes and scrapes while the model works.
OFFLOAD_VALUES = 50_000
MAX_MESSAGE = 500


def _first_missing(model: ServedModel, batch: Batch) -> str | None:
    for feature, column in zip(model.features, batch.columns, strict=True):
        missing = np.isnan(column) if feature.numeric else np.array([v is None for v in column.tolist()], dtype=bool)
        if missing.any():
            return f"feature '{feature.name}' row {int(np.argmax(missing))}"
    return None


def _diagnose(error: Exception, model: ServedModel, batch: Batch) -> ApiError:
    """400 when the input has a missing value (the request's own fault, told by the data, not by the model's
    wording), else 422: well-formed input that this model cannot take."""
    said = str(error).strip().replace("\n", " ")[:MAX_MESSAGE]
    where = _first_missing(model, batch)
    if where is not None:
        return ApiError(400, f"{where}: missing value (null/NaN), which this model does not accept (model: {said})")
    return ApiError(422, f"the model rejected the input: {type(error).__name__}: {said}")


def call_estimator(model: ServedModel, batch: Batch, method: str) -> NDArray[Any]:
    try:
        answers = model.estimator if model.predictor is None else model.predictor
        return np.asarray(getattr(answers, method)(batch.model_input))
    except (ValueError, TypeError, KeyError, IndexError) as e:
        # What an estimator raises on input it cannot take (wrong category, NaN, ...). Anything else is ours: 500.
        raise _diagnose(e, model, batch) from e


def jsonable(values: NDArray[Any]) -> Any:
    """What orjson serialises fastest: numeric arrays as-is (OPT_SERIALIZE_NUMPY), anything else as lists."""
    if values.dtype.kind in "biuf":
        return np.ascontiguousarray(values)
    return values.tolist()


def datatype_of(values: NDArray[Any]) -> str:
    """The V2 datatype of a numpy array, as MLServer's NumpyCodec names it."""
    kind, size = values.dtype.kind, values.dtype.itemsize
    if kind == "f":
        return {2: "FP16", 4: "FP32"}.get(size, "FP64")
    if kind in "iu":
        return f"{'U' if kind == 'u' else ''}INT{size * 8}"
    if kind == "b":
        return "BOOL"
    return "BYTES"


def scores(model: ServedModel, columns: list[NDArray[Any]]) -> tuple[NDArray[Any] | None, NDArray[Any] | None]:
    """The model's predict_proba for rows kept column by column (the live performance window), or, for a binary
    classifier without probabilities, its decision_function; (None, None) when it has neither or fails on them."""
    if model.all_numeric:
        rows: Any = np.column_stack(columns)
    else:
        import pandas as pd

        rows = pd.DataFrame(dict(zip(model.feature_names, columns, strict=True)), copy=False)
    for method in ("predict_proba", "decision_function"):
        if method == "decision_function" and len(model.classes) != 2:
            break
        func = getattr(model.estimator, method, None)
        if func is None:
            continue
        try:
            out = np.asarray(func(rows))
        except (AttributeError, ValueError, TypeError, KeyError, IndexError):
            continue
        return (out, None) if method == "predict_proba" else (None, out)
    return None, None
