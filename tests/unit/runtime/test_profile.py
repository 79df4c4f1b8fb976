"""The reference profile: quantile cuts, searchsorted counts that survive JSON, categories, and validation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline_runtime.profile import PREDICTION, bin_index, build_profile, validate_profile

pytestmark = pytest.mark.unit


def one(series: pd.Series, bins: int = 10) -> dict[str, Any]:
    profile = build_profile(pd.DataFrame({"x": series}), np.zeros(len(series)), bins)
    validate_profile(profile)
    return dict(profile["features"][0])


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False) | st.integers(-5, 5).map(float), min_size=1, max_size=200),
    bins=st.integers(1, 20),
)
def test_counts_agree_with_searchsorted_after_a_json_round_trip(values: list[float], bins: int) -> None:
    feature = json.loads(json.dumps(one(pd.Series(values), bins)))
    arr = np.asarray(values)
    expected = np.bincount(np.searchsorted(feature["cuts"], arr, side="right"), minlength=len(feature["cuts"]) + 1)
    assert feature["counts"] == expected.tolist()
    assert sum(feature["counts"]) == len(values) and feature["missing"] == 0
    assert all(a < b for a, b in zip(feature["cuts"], feature["cuts"][1:], strict=False))
    assert len(feature["cuts"]) <= bins - 1
    assert (feature["min"], feature["max"]) == (arr.min(), arr.max())


def test_cuts_are_the_deduplicated_quantiles() -> None:
    values = pd.Series(np.arange(100, dtype=float))
    feature = one(values, 4)
    assert feature["cuts"] == [24.75, 49.5, 74.25]
    assert feature["counts"] == [25, 25, 25, 25]
    ties = one(pd.Series([0] * 85 + [1] * 15), 10)  # nine quantiles, only two distinct: 0 and 1
    assert ties["cuts"] == [0.0, 1.0] and ties["counts"] == [0, 85, 15]


def test_bin_rule_edges() -> None:
    assert bin_index([1.0, 2.0], [0.5, 1.0, 1.5, 2.0, 9.0]).tolist() == [0, 1, 1, 2, 2]


def test_constant_feature_has_one_bin() -> None:
    feature = one(pd.Series([3.5] * 12))
    assert feature["cuts"] == [] and feature["counts"] == [12] and feature["min"] == feature["max"] == 3.5


def test_missing_values_are_counted_apart() -> None:
    feature = one(pd.Series([1.0, np.nan, 2.0, 3.0, np.nan]))
    assert feature["missing"] == 2 and sum(feature["counts"]) == 3
    empty = one(pd.Series([np.nan, np.nan]))
    assert empty == {"name": "x", "kind": "numeric", "cuts": [], "counts": [0], "min": None, "max": None, "missing": 2}


def test_categorical_keeps_the_fifty_most_frequent() -> None:
    values = [f"c{i:02d}" for i in range(60) for _ in range(i + 1)] + [None, None]
    feature = one(pd.Series(values, dtype="object"))
    assert feature["kind"] == "categorical" and len(feature["categories"]) == 50
    assert feature["categories"][:2] == ["c59", "c58"] and feature["counts"][:2] == [60, 59]
    assert feature["other"] == sum(range(1, 11)) and feature["missing"] == 2
    assert sum(feature["counts"]) + feature["other"] + feature["missing"] == len(values)


def test_categorical_ties_sort_by_name_and_booleans_are_spelled_like_python() -> None:
    assert one(pd.Series(["b", "a", "c", "a", "b"]))["categories"] == ["a", "b", "c"]
    flags = one(pd.Series([True, False, True]))
    assert flags["categories"] == ["True", "False"] and flags["counts"] == [2, 1]
    assert one(pd.Series(pd.Categorical(["x", "y", "x"])))["categories"] == ["x", "y"]


def test_prediction_kind_follows_the_task() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    labels = np.array([0, 1, 1])
    assert build_profile(frame, labels, task="classification")["prediction"] == {
        "name": PREDICTION,
        "kind": "categorical",
        "categories": ["1", "0"],
        "counts": [2, 1],
        "other": 0,
        "missing": 0,
    }
    assert build_profile(frame, labels, task="regression")["prediction"]["kind"] == "numeric"
    assert build_profile(frame, np.array(["n", "y", "y"]))["prediction"]["kind"] == "categorical"
    with pytest.raises(ValueError, match="one per row"):
        build_profile(frame, labels[:2])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["features"][0].update(cuts=[2.0, 1.0], counts=[1, 1, 1]), "strictly increasing"),
        (lambda p: p["features"][0].update(counts=[3]), "cuts need"),
        (lambda p: p["features"][0].update(missing=5), "add up"),
        (lambda p: p["features"][1].update(other=-1), "integer 'other'"),
        (lambda p: p["features"][0].update(kind="ordinal"), "kind"),
        (lambda p: p["prediction"].update(name="y"), PREDICTION),
        (lambda p: p.update(formatVersion=2), "formatVersion"),
    ],
)
def test_validate_profile_rejects_broken_profiles(change: Any, message: str) -> None:
    profile = build_profile(pd.DataFrame({"a": [1.0, 2.0, 3.0], "s": ["x", "y", "x"]}), [1.0, 2.0, 3.0], 3)
    validate_profile(profile)
    change(profile)
    with pytest.raises(ValueError, match=message):
        validate_profile(profile)
