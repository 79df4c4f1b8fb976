"""The reference side of drift: profile.json turned into binning rules and reference histograms.

Each column (a feature or the prediction) owns a contiguous slice of one flat bin vector, so a whole request batch
becomes one (rows x columns) matrix of global bin indices and a window keeps a single count vector.
Numeric column bins:     [value bins 0..K-1] [missing]
Categorical column bins: [categories...] [other] [missing]
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.drift._binning import NumericBinner
from driftline_runtime.drift.methods import representative_points

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
PREDICTION = "__prediction__"

# How a numeric column's values were spelled by the trainer when it profiled them as categories (str(value) of the
# training dtype): an int64 3 is "3", a float64 3.0 is "3.0", a bool is "True".
Spelling = Literal["int", "float", "bool", "str"]


class ProfileError(ValueError):
    """profile.json is missing pieces or contradicts itself; the server refuses to start on it."""


@dataclass(frozen=True)
class NumericColumn:
    name: str
    offset: int
    cuts: FloatArray
    reference: IntArray  # value bins then missing
    points: FloatArray  # where each value bin's mass sits (for Wasserstein)
    kind: Literal["numeric"] = "numeric"

    @property
    def size(self) -> int:
        return int(self.reference.size)

    @property
    def value_bins(self) -> int:
        return int(self.cuts.size + 1)

    def codes(self, values: NDArray[Any]) -> IntArray:
        """Local bin of each value, vectorised: searchsorted(cuts, x, 'right'); NaN goes to the missing bin.

        The definition the compiled binning (Reference.binner, what the server runs) is tested against."""
        x = np.asarray(values, dtype=np.float64)
        out = np.searchsorted(self.cuts, x, side="right").astype(np.int64)
        out[np.isnan(x)] = self.value_bins
        return out


@dataclass(frozen=True)
class CategoricalColumn:
    name: str
    offset: int
    categories: tuple[str, ...]
    reference: IntArray  # categories, then other, then missing
    spelling: Spelling = "str"
    index: Mapping[str, int] = field(default_factory=dict)
    kind: Literal["categorical"] = "categorical"

    @property
    def size(self) -> int:
        return int(self.reference.size)

    @property
    def other_bin(self) -> int:
        return len(self.categories)

    @property
    def missing_bin(self) -> int:
        return len(self.categories) + 1

    def key(self, value: Any) -> str | None:
        """The profile's spelling of one live value, None when it is missing."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.spelling == "int" and isinstance(value, float | int) and float(value).is_integer():
            return str(int(value))
        if self.spelling == "float" and isinstance(value, float | int) and not isinstance(value, bool):
            return str(float(value))
        if self.spelling == "bool" and isinstance(value, float | int):
            return str(bool(value))
        return str(value)

    def codes(self, values: NDArray[Any]) -> IntArray:
        """Local bin of each value by dict lookup; distinct values are looked up once when numpy can sort them."""
        arr = np.asarray(values)
        # np.unique pays off on big batches of sortable values; a few values are quicker one by one.
        if arr.dtype.kind in "biufUS" and arr.size > 64:
            uniques, inverse = np.unique(arr, return_inverse=True)
            table = np.array([self._code(u) for u in uniques.tolist()], dtype=np.int64)
            return table[inverse.reshape(-1)]
        return np.array([self._code(v) for v in arr.tolist()], dtype=np.int64)

    def _code(self, value: Any) -> int:
        key = self.key(value)
        if key is None:
            return self.missing_bin
        return self.index.get(key, self.other_bin)


Column = NumericColumn | CategoricalColumn


@dataclass(frozen=True)
class Reference:
    """The reference histograms of every feature, in model feature order, and of the prediction (last column)."""

    features: tuple[Column, ...]
    prediction: Column
    rows: int

    @property
    def columns(self) -> tuple[Column, ...]:
        return (*self.features, self.prediction)

    @functools.cached_property
    def binner(self) -> NumericBinner:
        """Every numeric column's cuts, missing bin and offset for the compiled binning (by column position;
        categorical columns get no cuts and are never binned there)."""
        columns = self.columns
        width = max([1, *(c.cuts.size for c in columns if isinstance(c, NumericColumn))])
        cuts = np.full((len(columns), width), np.nan)
        ncuts = np.zeros(len(columns), dtype=np.int32)
        missing = np.array([c.size - 1 for c in columns], dtype=np.int32)  # each kind's missing bin is its last
        offsets = np.array([c.offset for c in columns], dtype=np.int32)
        for t, c in enumerate(columns):
            if isinstance(c, NumericColumn):
                cuts[t, : c.cuts.size] = c.cuts
                ncuts[t] = c.cuts.size
        return NumericBinner(cuts, ncuts, missing, offsets, self.total_bins)

    @functools.cached_property
    def positions(self) -> NDArray[np.intp]:
        """0 .. columns - 1: a slice of it names columns to the compiled binning without allocating."""
        return np.arange(len(self.columns), dtype=np.intp)

    @functools.cached_property
    def numeric_features(self) -> NDArray[np.intp]:
        """Positions of the numeric features: the columns of a request's matrix that the compiled binning takes."""
        return np.array([j for j, c in enumerate(self.features) if isinstance(c, NumericColumn)], dtype=np.intp)

    @property
    def total_bins(self) -> int:
        last = self.prediction
        return last.offset + last.size


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ints(value: Any, what: str) -> IntArray:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        raise ProfileError(f"{what} must be a list of non-negative integers")
    return np.asarray(value, dtype=np.int64)


def _count(value: Any, what: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProfileError(f"{what} must be a non-negative integer")
    return value


def _optional_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value):
        raise ProfileError(f"{what} must be a finite number or null")
    return float(value)


def _column(raw: Any, offset: int, spelling: Spelling, where: str) -> Column:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where} must be an object")
    name, kind = raw.get("name"), raw.get("kind")
    if not isinstance(name, str):
        raise ProfileError(f"{where}.name must be a string")
    where = f"{where} ({name!r})"
    if kind == "numeric":
        cuts_raw = raw.get("cuts")
        if not isinstance(cuts_raw, list) or not all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in cuts_raw
        ):
            raise ProfileError(f"{where}.cuts must be a list of numbers")
        cuts = np.asarray(cuts_raw, dtype=np.float64)
        if not np.all(np.isfinite(cuts)) or np.any(np.diff(cuts) <= 0):
            raise ProfileError(f"{where}.cuts must be finite and strictly increasing")
        counts = _ints(raw.get("counts"), f"{where}.counts")
        if counts.size != cuts.size + 1:
            raise ProfileError(f"{where} has {cuts.size} cuts so needs {cuts.size + 1} counts, got {counts.size}")
        missing = _count(raw.get("missing"), f"{where}.missing")
        low = _optional_float(raw.get("min"), f"{where}.min")
        high = _optional_float(raw.get("max"), f"{where}.max")
        return NumericColumn(
            name=name,
            offset=offset,
            cuts=cuts,
            reference=np.append(counts, missing),
            points=representative_points(cuts, low, high),
        )
    if kind == "categorical":
        categories = raw.get("categories")
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise ProfileError(f"{where}.categories must be a list of strings")
        if len(set(categories)) != len(categories):
            raise ProfileError(f"{where}.categories has duplicates")
        counts = _ints(raw.get("counts"), f"{where}.counts")
        if counts.size != len(categories):
            raise ProfileError(f"{where} has {len(categories)} categories but {counts.size} counts")
        other = _count(raw.get("other"), f"{where}.other")
        missing = _count(raw.get("missing"), f"{where}.missing")
        return CategoricalColumn(
            name=name,
            offset=offset,
            categories=tuple(categories),
            reference=np.append(counts, [other, missing]).astype(np.int64),
            spelling=spelling,
            index={c: i for i, c in enumerate(categories)},
        )
    raise ProfileError(f"{where}.kind must be 'numeric' or 'categorical', got {kind!r}")


def spelling_of(dtype: str) -> Spelling:
    """The str() spelling of a training dtype's values (see Spelling)."""
    lowered = dtype.lower()
    if lowered.startswith(("int", "uint")):
        return "int"
    if lowered.startswith("float"):
        return "float"
    if lowered.startswith("bool"):
        return "bool"
    return "str"


def parse_reference(profile: Any, feature_names: Sequence[str], feature_dtypes: Sequence[str]) -> Reference:
    """Validate profile.json against the model's features (same names, same order) and build the Reference."""
    if not isinstance(profile, dict):
        raise ProfileError("profile.json must hold a JSON object")
    if profile.get("formatVersion") != 1:
        raise ProfileError(f"profile.json formatVersion {profile.get('formatVersion')!r} is not supported (expected 1)")
    raw_features = profile.get("features")
    if not isinstance(raw_features, list):
        raise ProfileError("profile.json features must be a list")
    names = [f.get("name") if isinstance(f, dict) else None for f in raw_features]
    if names != list(feature_names):
        raise ProfileError(f"profile.json features {names} do not match the model's features {list(feature_names)}")
    columns: list[Column] = []
    offset = 0
    for i, (raw, dtype) in enumerate(zip(raw_features, feature_dtypes, strict=True)):
        column = _column(raw, offset, spelling_of(dtype), f"features[{i}]")
        if isinstance(column, NumericColumn) and spelling_of(dtype) == "str":
            raise ProfileError(f"features[{i}] ({column.name!r}) is profiled as numeric but its dtype is {dtype!r}")
        columns.append(column)
        offset += column.size
    prediction = _column(profile.get("prediction"), offset, "str", "prediction")
    if prediction.name != PREDICTION:
        raise ProfileError(f"prediction profile must be named {PREDICTION!r}, got {prediction.name!r}")
    rows = _count(profile.get("rows"), "rows")
    return Reference(features=tuple(columns), prediction=prediction, rows=rows)
