"""Drift statistics between a reference histogram and a live histogram over the same bins.

Pure functions of count vectors: no I/O, no state. Every function returns NaN when either side is empty, so a
caller can never mistake "no data" for "no drift". See docs/drift.md for the definitions and how they relate to
Evidently's.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

# Evidently's convention: a zero proportion becomes 1e-4 (no renormalisation), so PSI stays finite on empty bins.
PSI_EPSILON: Final = 1e-4
# Evidently's floor for the reference standard deviation in the normalised Wasserstein distance.
WASSERSTEIN_MIN_STD: Final = 1e-3

PSI: Final = "psi"
KS: Final = "ks"
JS: Final = "js"
WASSERSTEIN: Final = "wasserstein"
METHODS: Final = (PSI, KS, JS, WASSERSTEIN)
# Methods that need ordered bins; categorical columns get only PSI and JS.
ORDERED_ONLY: Final = frozenset({KS, WASSERSTEIN})

# A column "drifts" for a method when its value is >= the threshold (Evidently's comparison).
DEFAULT_THRESHOLDS: Final[dict[str, float]] = {PSI: 0.25, KS: 0.1, JS: 0.1, WASSERSTEIN: 0.1}


def _proportions(counts: NDArray[np.integer] | FloatArray) -> FloatArray | None:
    values = np.asarray(counts, dtype=np.float64)
    total = float(values.sum())
    if total <= 0:
        return None
    proportions: FloatArray = values / total
    return proportions


def psi(reference: NDArray[np.integer], live: NDArray[np.integer], eps: float = PSI_EPSILON) -> float:
    """Population stability index: sum of (q - p) * ln(q / p), zero proportions replaced by eps."""
    p, q = _proportions(reference), _proportions(live)
    if p is None or q is None:
        return float("nan")
    p = np.where(p == 0, eps, p)
    q = np.where(q == 0, eps, q)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: NDArray[np.integer], live: NDArray[np.integer]) -> float:
    """Jensen-Shannon distance in base 2 (in [0, 1]); equals scipy.spatial.distance.jensenshannon(p, q, base=2)."""
    p, q = _proportions(reference), _proportions(live)
    if p is None or q is None:
        return float("nan")
    m = (p + q) / 2.0
    # 0 * log(0 / m) is 0 by convention; m > 0 wherever p > 0 or q > 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0)
    divergence = (kl_p.sum() + kl_q.sum()) / 2.0
    return float(np.sqrt(max(divergence, 0.0)))


def ks_binned(reference: NDArray[np.integer], live: NDArray[np.integer]) -> float:
    """Kolmogorov-Smirnov statistic on binned data: max |CDF_live - CDF_ref| at the bin boundaries."""
    p, q = _proportions(reference), _proportions(live)
    if p is None or q is None:
        return float("nan")
    return float(np.max(np.abs(np.cumsum(q) - np.cumsum(p))))


def binned_std(counts: NDArray[np.integer], points: FloatArray) -> float:
    """Standard deviation of a histogram whose mass sits at `points` (population std, like numpy's default)."""
    p = _proportions(counts)
    if p is None:
        return float("nan")
    mean = float(np.dot(p, points))
    return float(np.sqrt(max(float(np.dot(p, (points - mean) ** 2)), 0.0)))


def wasserstein_binned(reference: NDArray[np.integer], live: NDArray[np.integer], points: FloatArray) -> float:
    """Wasserstein-1 between two histograms at the same sorted `points`, divided by the reference std.

    W1 on a shared sorted support is the integral of |CDF_p - CDF_q|, which on a step function is the sum over the
    gaps between consecutive points. The divisor is max(reference std, 1e-3), as in Evidently.
    """
    p, q = _proportions(reference), _proportions(live)
    if p is None or q is None:
        return float("nan")
    gaps = np.diff(points)
    distance = float(np.sum(np.abs(np.cumsum(p)[:-1] - np.cumsum(q)[:-1]) * gaps))
    return distance / max(binned_std(reference, points), WASSERSTEIN_MIN_STD)


def representative_points(cuts: FloatArray, low: float | None, high: float | None) -> FloatArray:
    """Where each numeric bin's mass sits: the midpoint of its edges, the profile's min/max closing the outer bins.

    Outer edges are clamped so the points stay sorted even if min/max sit inside the first/last cut, and fall back
    to one bin width beyond the cuts (or +-0.5 around a lone value) when the profile has no min/max.
    """
    cuts = np.asarray(cuts, dtype=np.float64)
    if cuts.size == 0:
        if low is None or high is None:
            return np.zeros(1)
        return np.array([(low + high) / 2.0])
    width = float(cuts[-1] - cuts[0]) / max(cuts.size - 1, 1) or 1.0
    lo = cuts[0] - width if low is None else min(low, float(cuts[0]))
    hi = cuts[-1] + width if high is None else max(high, float(cuts[-1]))
    edges = np.concatenate(([lo], cuts, [hi]))
    return (edges[:-1] + edges[1:]) / 2.0
