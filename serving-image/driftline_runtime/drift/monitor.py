"""Streaming drift of one served model: bins every predicted batch into a window, computes drift when asked.

observe() is the only call on the request side, and nearly free: it queues the batch. Queued batches are binned
together (one vectorised binning per column for many requests: a per-request binning of 30 columns cost a 1-row
request ~40% of its throughput) once FLUSH_ROWS rows or FLUSH_SECONDS have gathered, and always before snapshot(),
which computes every statistic lazily, at scrape time. A time window thus sees a row up to FLUSH_SECONDS late.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.drift import methods
from driftline_runtime.drift.reference import Column, NumericColumn, Reference
from driftline_runtime.drift.window import Window

NAN = float("nan")
FLUSH_ROWS = 512
FLUSH_SECONDS = 0.5


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
        self._queue: list[tuple[Sequence[NDArray[Any]], NDArray[Any]]] = []
        self._queued_rows = 0
        self._queued_since = 0.0

    def observe(self, features: Sequence[NDArray[Any]], predictions: NDArray[Any]) -> None:
        """Add one batch: `features` are the model's input columns in feature order, `predictions` its output."""
        rows = int(predictions.shape[0])
        if rows == 0:
            return
        if not self._queue:
            self._queued_since = time.monotonic()
        self._queue.append((features, predictions))
        self._queued_rows += rows
        if self._queued_rows >= FLUSH_ROWS or time.monotonic() - self._queued_since >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Bin the queued batches into the window, in arrival order."""
        queue, self._queue, self._queued_rows = self._queue, [], 0
        if len(queue) > 1:
            try:
                columns = [np.concatenate(parts) for parts in zip(*(f for f, _ in queue), strict=True)]
                queue = [(columns, np.concatenate([p for _, p in queue]))]
            except (ValueError, TypeError):  # batches whose columns do not stack (shapes, dtypes): one by one
                pass
        for features, predictions in queue:
            self._add(features, predictions)

    def _add(self, features: Sequence[NDArray[Any]], predictions: NDArray[Any]) -> None:
        rows = int(predictions.shape[0])
        keep = self.window.capacity
        if keep is not None and rows > keep:
            # Only the newest rows can stay in a count window: skip binning the rest.
            features = [column[-keep:] for column in features]
            predictions, rows = predictions[-keep:], keep
        columns, values = self.reference.columns, (*features, predictions)
        if len(values) != len(columns):
            raise ValueError(f"{len(values)} columns for a reference of {len(columns)}")
        codes = np.empty((rows, len(columns)), dtype=np.int64)
        stack = self.reference.stack
        stacked = () if stack is None else stack.positions
        if stack is not None:
            codes[:, stacked] = stack.codes([values[j] for j in stacked])
        for j, column in enumerate(columns):
            if j not in stacked:
                codes[:, j] = column.codes(values[j]) + column.offset
        self.window.add(codes)

    def snapshot(self) -> DriftSnapshot:
        self.flush()
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
