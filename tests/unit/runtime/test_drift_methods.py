"""Drift statistics on count vectors, checked against scipy and textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from driftline_runtime.drift import methods

pytestmark = pytest.mark.unit


def random_counts(rng: np.random.Generator, bins: int, zeros: int = 2) -> np.ndarray:
    counts = rng.integers(0, 200, bins)
    counts[rng.choice(bins, zeros, replace=False)] = 0
    return counts


def psi_by_hand(ref: np.ndarray, live: np.ndarray) -> float:
    p, q = ref / ref.sum(), live / live.sum()
    total = 0.0
    for a, b in zip(p, q, strict=True):
        a, b = a or 1e-4, b or 1e-4
        total += (b - a) * math.log(b / a)
    return total


@pytest.mark.parametrize("seed", range(8))
def test_each_method_matches_its_reference_implementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bins = int(rng.integers(2, 25))
    ref, live = random_counts(rng, bins), random_counts(rng, bins)
    points = np.sort(rng.normal(0, 3, bins)) + np.arange(bins)  # strictly increasing

    assert methods.psi(ref, live) == pytest.approx(psi_by_hand(ref, live), abs=1e-12)
    assert methods.js_distance(ref, live) == pytest.approx(jensenshannon(ref, live, base=2), abs=1e-12)
    cdf_gap = max(abs(sum(live[: i + 1]) / live.sum() - sum(ref[: i + 1]) / ref.sum()) for i in range(bins))
    assert methods.ks_binned(ref, live) == pytest.approx(cdf_gap, abs=1e-12)
    std = math.sqrt(np.average((points - np.average(points, weights=ref)) ** 2, weights=ref))
    expected = wasserstein_distance(points, points, ref, live) / max(std, 1e-3)
    assert methods.wasserstein_binned(ref, live, points) == pytest.approx(expected, abs=1e-12)


def test_identical_histograms_have_no_drift() -> None:
    counts = np.array([5, 0, 7, 3])
    points = np.array([0.0, 1.0, 2.0, 3.0])
    assert methods.psi(counts, counts * 3) == 0.0
    assert methods.js_distance(counts, counts * 3) == pytest.approx(0.0, abs=1e-7)
    assert methods.ks_binned(counts, counts * 3) == pytest.approx(0.0, abs=1e-12)
    assert methods.wasserstein_binned(counts, counts * 3, points) == pytest.approx(0.0, abs=1e-12)


def test_js_distance_is_one_for_disjoint_histograms_in_base_2() -> None:
    assert methods.js_distance(np.array([4, 0]), np.array([0, 9])) == pytest.approx(1.0)


def test_empty_side_gives_nan_never_zero() -> None:
    empty, some = np.zeros(3, dtype=np.int64), np.array([1, 2, 3])
    for value in (
        methods.psi(empty, some),
        methods.psi(some, empty),
        methods.js_distance(some, empty),
        methods.ks_binned(empty, some),
        methods.wasserstein_binned(some, empty, np.array([0.0, 1.0, 2.0])),
    ):
        assert math.isnan(value)


def test_wasserstein_is_normalised_by_the_reference_std_with_evidentlys_floor() -> None:
    # All reference mass on one point: std 0, so the 1e-3 floor divides.
    value = methods.wasserstein_binned(np.array([10, 0]), np.array([0, 10]), np.array([0.0, 0.5]))
    assert value == pytest.approx(0.5 / 1e-3)


def test_representative_points_are_bin_midpoints_closed_by_min_and_max() -> None:
    points = methods.representative_points(np.array([1.0, 2.0, 4.0]), 0.0, 10.0)
    assert points.tolist() == [0.5, 1.5, 3.0, 7.0]
    # min/max inside the outer cuts are clamped to them so points stay sorted.
    assert methods.representative_points(np.array([1.0, 2.0]), 1.5, 1.8).tolist() == [1.0, 1.5, 2.0]
    assert methods.representative_points(np.array([]), 2.0, 4.0).tolist() == [3.0]
    assert methods.representative_points(np.array([0.0, 2.0]), None, None).tolist() == [-1.0, 1.0, 3.0]
