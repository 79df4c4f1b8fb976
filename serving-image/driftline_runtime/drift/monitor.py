"""Streaming drift of one served model: bins every predicted batch into a window, computes drift when asked.

observe() is the only call on the request side and costs one vectorised binning per column; all statistics are
computed lazily by snapshot(), at scrape time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.drift import methods
from driftline_runtime.drift.reference import Column, NumericColumn, Reference
from driftline_runtime.drift.window import Window

NAN = float("nan")


@dataclass(frozen=True)
class DriftSnapshot:
    samples: int
    ready: bool  # the window holds at least min_samples rows; otherwise every value below is NaN
    features: Mapping[str, Mapping[str, float]]  # feature -> method -> value (only the methods the column supports)
    prediction: Mapping[str, float]
    score: Mapping[str, float]  # method -> max over features
    drifted_share: Mapping[str, float]  # method -> share of features at or over the method's threshold


def column_methods(column: Column) -> tuple[str, ...]:
    if isinstance(column, NumericColumn):
        return methods.METHODS
    return tuple(m for m in methods.METHODS if m not in methods.ORDERED_ONLY)


def column_drift(column: Column, live: NDArray[np.int64]) -> dict[str, float]:
    """Every supported method for one column, from its slice of the live count vector."""
    ref = column.reference
    values = {methods.PSI: methods.psi(ref, live), methods.JS: methods.js_distance(ref, live)}
    if isinstance(column, NumericColumn):
        # Order-based methods look at present values only: the missing bin has no place on the axis.
        k = column.value_bins
        values[methods.KS] = methods.ks_binned(ref[:k], live[:k])
        values[methods.WASSERSTEIN] = methods.wasserstein_binned(ref[:k], live[:k], column.points)
    return values


class DriftMonitor:
    def __init__(
        self,
        reference: Reference,
        window: Window,
        min_samples: int,
        thresholds: Mapping[str, float] = methods.DEFAULT_THRESHOLDS,
    ) -> None:
        self.reference = reference
        self.window = window
        self.min_samples = min_samples
        self.thresholds = dict(thresholds)

    def observe(self, features: Sequence[NDArray[Any]], predictions: NDArray[Any]) -> None:
        """Add one batch: `features` are the model's input columns in feature order, `predictions` its output."""
        rows = int(predictions.shape[0])
        if rows == 0:
            return
        keep = self.window.capacity
        if keep is not None and rows > keep:
            # Only the newest rows can stay in a count window: skip binning the rest.
            features = [column[-keep:] for column in features]
            predictions, rows = predictions[-keep:], keep
        columns = self.reference.columns
        codes = np.empty((rows, len(columns)), dtype=np.int64)
        for j, (column, values) in enumerate(zip(columns, (*features, predictions), strict=True)):
            codes[:, j] = column.codes(values) + column.offset
        self.window.add(codes)

    def snapshot(self) -> DriftSnapshot:
        counts = self.window.counts()
        samples = self.window.samples()
        ready = samples >= self.min_samples and samples > 0

        def drift(column: Column) -> dict[str, float]:
            if not ready:
                return dict.fromkeys(column_methods(column), NAN)
            return column_drift(column, counts[column.offset : column.offset + column.size])

        features = {column.name: drift(column) for column in self.reference.features}
        score: dict[str, float] = {}
        share: dict[str, float] = {}
        for method in methods.METHODS:
            values = np.array([v[method] for v in features.values() if method in v], dtype=np.float64)
            if values.size == 0:
                continue  # no feature supports the method (e.g. KS on an all-categorical model)
            known = values[~np.isnan(values)]
            score[method] = float(known.max()) if known.size else NAN
            share[method] = (
                float(np.count_nonzero(known >= self.thresholds[method]) / known.size) if known.size else NAN
            )
        return DriftSnapshot(
            samples=samples,
            ready=ready,
            features=features,
            prediction=drift(self.reference.prediction),
            score=score,
            drifted_share=share,
        )
