"""The reference profile: per-feature histograms of the training split, enough to score drift without the data.

Numeric features get quantile bins. The bin rule is `numpy.searchsorted(cuts, x, side="right")`, and the stored
counts are recomputed with exactly that rule, so a server binning live values the same way compares like with like.
Categorical features (strings, booleans, categories) get the most frequent values, compared as `str(value)`.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FORMAT_VERSION = 1
MAX_CATEGORIES = 50
PREDICTION = "__prediction__"


def is_categorical(series: pd.Series) -> bool:
    return bool(pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series))


def bin_index(cuts: Sequence[float], values: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """The bin of each value: 0 below cuts[0], i for cuts[i-1] <= x < cuts[i], len(cuts) at or above cuts[-1]."""
    return np.searchsorted(np.asarray(cuts, dtype=float), np.asarray(values, dtype=float), side="right")


def numeric_profile(name: str, series: pd.Series, bins: int) -> dict[str, Any]:
    values = series.to_numpy(dtype=float, na_value=np.nan)
    present = values[~np.isnan(values)]
    finite = present[np.isfinite(present)]
    cuts: list[float] = []
    # A constant feature keeps one bin: a cut at its only value would leave an always-empty bin below it.
    if finite.size and finite.min() < finite.max() and bins > 1:
        quantiles = np.quantile(finite, [k / bins for k in range(1, bins)])
        cuts = [float(c) for c in np.unique(quantiles)]
    counts = np.bincount(bin_index(cuts, present), minlength=len(cuts) + 1)
    return {
        "name": name,
        "kind": "numeric",
        "cuts": cuts,
        "counts": [int(c) for c in counts],
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "missing": int(values.size - present.size),
    }


def categorical_profile(name: str, series: pd.Series) -> dict[str, Any]:
    missing = series.isna().to_numpy()
    tally = Counter(str(v) for v in series[~missing].tolist())
    ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    kept = ranked[:MAX_CATEGORIES]
    return {
        "name": name,
        "kind": "categorical",
        "categories": [value for value, _ in kept],
        "counts": [count for _, count in kept],
        "other": sum(count for _, count in ranked[MAX_CATEGORIES:]),
        "missing": int(missing.sum()),
    }


def feature_profile(name: str, series: pd.Series, bins: int) -> dict[str, Any]:
    return categorical_profile(name, series) if is_categorical(series) else numeric_profile(name, series, bins)


def build_profile(
    frame: pd.DataFrame, predictions: npt.ArrayLike, bins: int = 10, *, task: str | None = None
) -> dict[str, Any]:
    """Profile every column of `frame` (in order) and the model's predictions on it.

    `task="classification"` profiles predictions as class labels even when they are integers; without a task the
    predictions' dtype decides.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    predicted = pd.Series(np.asarray(predictions), name=PREDICTION)
    if predicted.ndim != 1 or len(predicted) != len(frame):
        raise ValueError(f"predictions must be one per row: got {len(predicted)} for {len(frame)} rows")
    if task == "classification":
        prediction = categorical_profile(PREDICTION, predicted)
    elif task == "regression":
        prediction = numeric_profile(PREDICTION, predicted, bins)
    else:
        prediction = feature_profile(PREDICTION, predicted, bins)
    return {
        "formatVersion": FORMAT_VERSION,
        "rows": len(frame),
        "features": [feature_profile(str(name), frame[name], bins) for name in frame.columns],
        "prediction": prediction,
    }


def validate_profile(profile: Any) -> None:
    """Raise ValueError when a profile (ours or a bring-your-own trainer's) breaks the contract."""
    if not isinstance(profile, dict) or profile.get("formatVersion") != FORMAT_VERSION:
        raise ValueError(f"profile formatVersion must be {FORMAT_VERSION}")
    rows = profile.get("rows")
    if not isinstance(rows, int) or not _is_count(rows):
        raise ValueError("profile rows must be a non-negative integer")
    features = profile.get("features")
    if not isinstance(features, list):
        raise ValueError("profile features must be a list")
    for feature in [*features, profile.get("prediction")]:
        _validate_feature(feature, rows)
    if profile["prediction"]["name"] != PREDICTION:
        raise ValueError(f"profile prediction must be named {PREDICTION!r}")


def _validate_feature(feature: Any, rows: int) -> None:
    if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
        raise ValueError("every feature profile needs a name")
    name, kind, counts = feature["name"], feature.get("kind"), feature.get("counts")
    if not isinstance(counts, list) or not all(_is_count(c) for c in counts) or not _is_count(feature.get("missing")):
        raise ValueError(f"feature {name!r}: counts and missing must be non-negative integers")
    total = sum(counts) + feature["missing"]
    if kind == "numeric":
        cuts = feature.get("cuts")
        if not isinstance(cuts, list) or not all(_is_finite(c) for c in cuts):
            raise ValueError(f"feature {name!r}: cuts must be finite numbers")
        if any(a >= b for a, b in itertools.pairwise(cuts)):
            raise ValueError(f"feature {name!r}: cuts must be strictly increasing")
        if len(counts) != len(cuts) + 1:
            raise ValueError(f"feature {name!r}: {len(cuts)} cuts need {len(cuts) + 1} counts, got {len(counts)}")
    elif kind == "categorical":
        categories = feature.get("categories")
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise ValueError(f"feature {name!r}: categories must be strings")
        if len(categories) != len(counts) or not _is_count(feature.get("other")):
            raise ValueError(f"feature {name!r}: one count per category and an integer 'other' are required")
        total += feature["other"]
    else:
        raise ValueError(f"feature {name!r}: kind must be 'numeric' or 'categorical', got {kind!r}")
    if total != rows:
        raise ValueError(f"feature {name!r}: counts add up to {total}, the profile has {rows} rows")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
