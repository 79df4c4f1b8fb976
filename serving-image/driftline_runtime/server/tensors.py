"""Open Inference Protocol V2 tensors to model input, following MLServer's sklearn runtime conventions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.server.errors import describe
from driftline_runtime.server.inputs import (
    Batch,
    assemble,
    bad,
    category_column,
    feature_list,
    float_column,
    for_feature,
    from_columns,
    from_matrix,
    require_proba,
)
from driftline_runtime.server.model import ServedModel

FLOAT_TYPES = {"FP16": np.float32, "FP32": np.float32, "FP64": np.float64}
INT_TYPES: dict[str, type[np.integer[Any]]] = {
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
}
DATATYPES = ("BOOL", *INT_TYPES, *FLOAT_TYPES, "BYTES")


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    datatype: str
    values: NDArray[Any]  # flat: float64/float32 for numeric datatypes, object for BYTES


def _cast_numeric(flat: NDArray[Any], datatype: str, label: str) -> NDArray[Any]:
    if datatype in FLOAT_TYPES:
        return flat.astype(FLOAT_TYPES[datatype], copy=False)
    if datatype == "BOOL":
        if flat.dtype.kind != "b" and not np.isin(flat, (0, 1)).all():
            raise bad(f"{label}: BOOL data must be true/false")
        return flat.astype(np.float64)
    as_float = flat.astype(np.float64)
    info = np.iinfo(INT_TYPES[datatype])
    invalid = (as_float != np.floor(as_float)) | (as_float < info.min) | (as_float > info.max)
    if invalid.any():
        k = int(np.argmax(invalid))
        raise bad(f"{label}: data[{k}] = {flat[k].item()!r} is not a valid {datatype}")
    return as_float


def _flatten(data: list[Any], datatype: str, label: str) -> NDArray[Any]:
    if datatype == "BYTES":
        try:
            elements = np.asarray(data, dtype=object).reshape(-1).tolist()
        except ValueError:
            raise bad(f"{label}: data is ragged (nested lists of different lengths)") from None
        for k, v in enumerate(elements):
            if v is not None and not isinstance(v, str | int | float):
                raise bad(f"{label}: data[{k}] is {describe(v)} (ragged data or not a string)")
        out = np.empty(len(elements), dtype=object)
        out[:] = elements
        return out
    try:
        arr = np.asarray(data)
    except ValueError:
        raise bad(f"{label}: data is ragged (nested lists of different lengths)") from None
    if arr.dtype.kind in "biuf":
        return _cast_numeric(arr.reshape(-1), datatype, label)
    # numpy turned mixed values into strings or objects: look at each original value to name the bad one.
    elements = np.asarray(data, dtype=object).reshape(-1).tolist()
    for k, v in enumerate(elements):
        if v is None and datatype in FLOAT_TYPES:
            continue
        if isinstance(v, list):
            raise bad(f"{label}: data is ragged (nested lists of different lengths)")
        if not isinstance(v, int | float):
            raise bad(f"{label}: data[{k}] is {describe(v)}, not a number ({datatype})")
    floats = float_column(elements, lambda k: f"{label}: data[{k}]")
    return _cast_numeric(floats, datatype, label)


def _tensor(raw: Any, index: int) -> Tensor:
    if not isinstance(raw, dict):
        raise bad(f"inputs[{index}] must be an object with name, shape, datatype and data")
    name = raw.get("name")
    if not isinstance(name, str):
        raise bad(f"inputs[{index}].name must be a string")
    label = f"input '{name}'"
    shape = raw.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise bad(f"{label}: shape must be a non-empty list of non-negative integers, got {describe(shape)}")
    datatype = raw.get("datatype")
    if datatype not in DATATYPES:
        raise bad(f"{label}: unsupported datatype {datatype!r} (supported: {', '.join(DATATYPES)})")
    if "data" not in raw:
        raise bad(f"{label} has no data")
    data = raw["data"]
    if not isinstance(data, list):
        raise bad(f"{label}: data must be a list (flat or nested), got {describe(data)}")
    values = _flatten(data, datatype, label)
    expected = math.prod(shape)
    if values.size != expected:
        raise bad(f"{label}: shape {shape} holds {expected} values but data has {values.size}")
    return Tensor(name, tuple(shape), datatype, values)


def decode_v2(body: dict[str, Any], model: ServedModel) -> Batch:
    if "inputs" not in body:
        raise bad('missing "inputs": send {"inputs": [{"name", "shape", "datatype", "data"}]}')
    raw = body["inputs"]
    if not isinstance(raw, list) or not raw:
        raise bad('"inputs" must be a non-empty list of tensors')
    tensors = [_tensor(t, i) for i, t in enumerate(raw)]
    if len(tensors) == 1:
        return _single_tensor(tensors[0], model)
    return _tensor_per_feature(tensors, model)


def _single_tensor(tensor: Tensor, model: ServedModel) -> Batch:
    width = len(model.features)
    shape = list(tensor.shape)
    if (len(shape) == 2 and shape[1] == width) or (len(shape) == 1 and width == 1):
        rows = shape[0]
    elif len(shape) == 2:
        raise bad(
            f"input '{tensor.name}' has shape {shape}: {shape[1]} features per row, but the model expects "
            f"{width} ({feature_list(model)})"
        )
    else:
        raise bad(
            f"input '{tensor.name}' has shape {shape}: send one [N, {width}] tensor (rows x features) "
            f"or one [N] tensor per feature"
        )

    def label(i: int, name: str) -> str:
        return f"input '{tensor.name}' row {i} feature '{name}'"

    matrix = tensor.values.reshape(rows, width)
    if tensor.datatype != "BYTES" and model.all_numeric:
        return from_matrix(model, matrix, label)
    return from_columns(model, [matrix[:, j].tolist() for j in range(width)], label)


def _tensor_per_feature(tensors: list[Tensor], model: ServedModel) -> Batch:
    names = [t.name for t in tensors]
    if sorted(names) != sorted(model.feature_names):
        raise bad(
            f"got {len(tensors)} input tensors named {', '.join(names)}: send one [N, {len(model.features)}] "
            f"tensor, or exactly one tensor per feature named {feature_list(model)}"
        )
    by_name = {t.name: t for t in tensors}
    rows = tensors[0].shape[0]
    for t in tensors:
        if t.shape not in ((rows,), (rows, 1)):
            raise bad(
                f"input '{t.name}' has shape {list(t.shape)}, but per-feature tensors must all be [N] or [N, 1] "
                f"with the same N (input '{tensors[0].name}' has N={rows})"
            )

    def label(i: int, name: str) -> str:
        return f"input '{name}' row {i}"

    columns: list[NDArray[Any]] = []
    for feature in model.features:
        t = by_name[feature.name]
        row_label = for_feature(label, feature.name)
        if feature.numeric and t.datatype != "BYTES":
            columns.append(t.values.astype(np.float64, copy=False))
        elif feature.numeric:
            columns.append(float_column(t.values.tolist(), row_label))
        else:
            columns.append(category_column(t.values.tolist(), row_label))
    return assemble(model, columns, label)


def requested_outputs(body: dict[str, Any], model: ServedModel) -> list[str]:
    """The V2 outputs asked for, MLServer-style: 'predict' by default, 'predict_proba' for classifiers."""
    raw = body.get("outputs")
    if raw is None:
        return ["predict"]
    if not isinstance(raw, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in raw):
        raise bad('"outputs" must be a list of objects like {"name": "predict"}')
    names = [o["name"] for o in raw] or ["predict"]
    for name in names:
        if name not in ("predict", "predict_proba"):
            raise bad(f"unknown output {name!r}: this model offers 'predict' and 'predict_proba'")
        if name == "predict_proba":
            require_proba(model)
    return names
