"""Request payloads to model input: the batch, its columns, and KServe V1 rows (V2 tensors are in tensors.py).

Well-formed numeric batches take a vectorised fast path (one numpy conversion of the whole batch). Everything
else goes through a per-value path whose only job is to name the offending row, feature or tensor in a 400.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.server.errors import ApiError, describe
from driftline_runtime.server.model import Feature, ServedModel

RowLabel = Callable[[int], str]


@dataclass(frozen=True)
class Batch:
    rows: int
    model_input: Any  # ndarray (rows x features) when every feature is numeric, else a pandas DataFrame
    columns: tuple[NDArray[Any], ...]  # per feature in model order: numbers (NaN = missing) or objects (None)


def bad(message: str) -> ApiError:
    return ApiError(400, message)


def feature_list(model: ServedModel) -> str:
    return ", ".join(model.feature_names)


# --- columns -------------------------------------------------------------------------------------------------


def float_column(values: Sequence[Any], label: RowLabel) -> NDArray[np.float64]:
    try:
        arr = np.asarray(values)
    except ValueError:
        arr = None
    if arr is not None and arr.ndim == 1 and arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if v is None:
            out[i] = math.nan
        elif isinstance(v, int | float):
            try:
                out[i] = float(v)
            except OverflowError:
                raise bad(f"{label(i)}: the number is too large for a 64-bit float") from None
        else:
            raise bad(f"{label(i)}: expected a number, got {describe(v)}")
    return out


def category_column(values: Sequence[Any], label: RowLabel) -> NDArray[np.object_]:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out[i] = None
        elif isinstance(v, str):
            out[i] = v
        elif isinstance(v, int | float):
            out[i] = str(v)
        else:
            raise bad(f"{label(i)}: expected a string or a number, got {describe(v)}")
    return out


def for_feature(label: Callable[[int, str], str], name: str) -> RowLabel:
    return lambda i: label(i, name)


def _check_finite(column: NDArray[Any], label: RowLabel) -> None:
    infinite = np.isinf(column)
    if infinite.any():
        row = int(np.argmax(infinite))
        raise bad(f"{label(row)} is infinite; send finite numbers (null for a missing value)")


def assemble(model: ServedModel, columns: list[NDArray[Any]], label: Callable[[int, str], str]) -> Batch:
    rows = int(columns[0].shape[0])
    if rows == 0:
        raise bad("empty batch: send at least one row")
    for feature, column in zip(model.features, columns, strict=True):
        if feature.numeric:
            _check_finite(column, for_feature(label, feature.name))
    if model.all_numeric:
        return Batch(rows, np.column_stack(columns), tuple(columns))
    import pandas as pd  # only models with categorical features pay for pandas

    frame = pd.DataFrame(dict(zip(model.feature_names, columns, strict=True)), copy=False)
    return Batch(rows, frame, tuple(columns))


def from_columns(model: ServedModel, raw: list[list[Any]], label: Callable[[int, str], str]) -> Batch:
    def convert(feature: Feature, values: list[Any]) -> NDArray[Any]:
        row_label = for_feature(label, feature.name)
        return float_column(values, row_label) if feature.numeric else category_column(values, row_label)

    return assemble(model, [convert(f, v) for f, v in zip(model.features, raw, strict=True)], label)


def from_matrix(model: ServedModel, matrix: NDArray[Any], label: Callable[[int, str], str]) -> Batch:
    """A numeric (rows x features) matrix for an all-numeric model: no per-value work."""
    rows = matrix.shape[0]
    if rows == 0:
        raise bad("empty batch: send at least one row")
    infinite = np.isinf(matrix)
    if infinite.any():
        row, col = (int(x) for x in np.argwhere(infinite)[0])
        raise bad(f"{label(row, model.feature_names[col])} is infinite; send finite numbers (null for a missing value)")
    return Batch(rows, matrix, tuple(matrix[:, j] for j in range(matrix.shape[1])))


def decode_v1(body: dict[str, Any], model: ServedModel) -> Batch:
    key = "instances" if "instances" in body else "inputs" if "inputs" in body else None
    if key is None:
        raise bad('missing "instances": send {"instances": [[feature values...], ...]}')
    instances = body[key]
    if not isinstance(instances, list):
        raise bad(f'"{key}" must be a list of rows, got {describe(instances)}')
    if not instances:
        raise bad(f'empty batch: "{key}" has no rows')
    width = len(model.features)

    def label(i: int, name: str) -> str:
        return f"{key}[{i}] feature '{name}'"

    if model.all_numeric and isinstance(instances[0], list):
        try:
            matrix = np.asarray(instances)
        except ValueError:  # ragged rows; the row loop below names the short one
            matrix = None
        if matrix is not None and matrix.ndim == 2 and matrix.shape[1] == width and matrix.dtype.kind in "biuf":
            return from_matrix(model, matrix.astype(np.float64, copy=False), label)
    return from_columns(model, _rows_to_columns(instances, model, key), label)


def _rows_to_columns(instances: list[Any], model: ServedModel, key: str) -> list[list[Any]]:
    names = model.feature_names
    known = set(names)
    columns: list[list[Any]] = [[] for _ in names]
    by_position = isinstance(instances[0], list)
    for i, row in enumerate(instances):
        if isinstance(row, list) and by_position:
            if len(row) != len(names):
                raise bad(
                    f"{key}[{i}] has {len(row)} values but the model expects {len(names)} features "
                    f"({feature_list(model)})"
                )
            values = row
        elif isinstance(row, dict) and not by_position:
            missing = [n for n in names if n not in row]
            if missing:
                raise bad(f"{key}[{i}] is missing feature(s) {', '.join(map(repr, missing))}")
            unknown = [k for k in row if k not in known]
            if unknown:
                raise bad(
                    f"{key}[{i}] has unknown feature(s) {', '.join(map(repr, unknown))}; "
                    f"the model's features are {feature_list(model)}"
                )
            values = [row[n] for n in names]
        elif i == 0:
            raise bad(
                f"{key}[0] must be a list of {len(names)} feature values or an object keyed by feature name, "
                f"got {describe(row)}"
            )
        else:
            shape = "a list of feature values" if by_position else "an object keyed by feature name"
            raise bad(f"{key}[{i}] must be {shape} like {key}[0], got {describe(row)}")
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


def require_proba(model: ServedModel) -> None:
    if model.task != "classification":
        raise bad(f"predict_proba needs a classifier, but model '{model.name}' is a regression model")
    if not model.has_proba:
        raise bad(f"model '{model.name}' ({type(model.estimator).__name__}) does not provide predict_proba")
