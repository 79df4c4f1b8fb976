"""Streaming drift of one served model: bins predicted batches into a window, computes drift when asked.

observe() is the only call on the request side, and nearly free: it queues the batch. Queued batches are binned
together (one vectorised binning for many requests: a per-request binning of 30 columns cost a 1-row request ~40% of
its throughput) after FLUSH_SECONDS, once a time window's queue holds FLUSH_ROWS rows, and always before snapshot(),
which computes every statistic lazily, at scrape time. A time window thus sees a row up to FLUSH_SECONDS late.

A count window's queue drops a batch as soon as newer queued rows fill the window: those rows would be evicted before
anyone could look, so they are never binned. Under load that is most rows (1,600 requests of 32 rows a second into a
1,000-row window: 1,000 of 25,600 rows binned per flush), and the window is exactly what binning them all would give.
"""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.drift import methods
from driftline_runtime.drift.reference import Column, NumericColumn, Reference
from driftline_runtime.drift.window import Window

NAN = float("nan")
FLUSH_ROWS = 512  # a time window bins every row: in batches of at least this many
FLUSH_SECONDS = 0.5


Queued = tuple[Sequence[NDArray[Any]], NDArray[Any], NDArray[Any] | None]
"""One observed batch: its feature columns, its predictions, and its rows x features matrix if it came as one."""


def _joined(queue: list[Queued]) -> Queued:
    """Queued batches as one: one join of their matrices when all came as matrices, else one join per column."""
    predictions = np.concatenate([p for _, p, _ in queue])
    matrices = [m for _, _, m in queue if m is not None]
    if len(matrices) == len(queue):
        matrix = np.concatenate(matrices)
        return tuple(matrix[:, j] for j in range(matrix.shape[1])), predictions, matrix
    return [np.concatenate(parts) for parts in zip(*(f for f, _, _ in queue), strict=True)], predictions, None


def _gathered(positions: tuple[int, ...], values: Sequence[NDArray[Any]], matrix: NDArray[Any] | None) -> NDArray[Any]:
    """The stacked columns as rows x columns: the request's own matrix when they are all its features, in order."""
    if matrix is not None and matrix.ndim == 2 and positions[-1] < matrix.shape[1]:  # positions ascend
        return matrix if len(positions) == matrix.shape[1] else matrix[:, positions]
    return np.column_stack([np.asarray(values[j], dtype=np.float64) for j in positions])


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
        self._queue: collections.deque[Queued] = collections.deque()
        self._queued_rows = 0
        self._queued_since = 0.0
        self.cpu_seconds = 0.0
        """CPU time spent binning and computing drift so far (the thread's own, so what drift costs the server)."""

    def observe(
        self, features: Sequence[NDArray[Any]], predictions: NDArray[Any], matrix: NDArray[Any] | None = None
    ) -> None:
        """Add one batch: `features` are the model's input columns in feature order, `predictions` its output;
        `matrix`, when the request came as one numeric array, the same features as rows x features: queued batches of
        those are joined in one call and binned without restacking their columns."""
        rows = int(predictions.shape[0])
        if rows == 0:
            return
        if not self._queue:
            self._queued_since = time.monotonic()
        self._queue.append((features, predictions, matrix))
        self._queued_rows += rows
        keep = self.window.capacity
        while keep is not None and self._queued_rows - len(self._queue[0][1]) >= keep:
            self._queued_rows -= len(self._queue.popleft()[1])
        if (keep is None and self._queued_rows >= FLUSH_ROWS) or time.monotonic() - self._queued_since >= FLUSH_SECONDS:
            self.flush()

    @property
    def pending_rows(self) -> int:
        """Rows observed and queued, not binned yet."""
        return self._queued_rows

    def flush(self) -> None:
        """Bin the queued batches into the window, in arrival order."""
        with self._charged():
            queue, self._queue, self._queued_rows = list(self._queue), collections.deque(), 0
            if len(queue) > 1:
                # Batches whose columns do not stack (shapes, dtypes) are binned one by one.
                with contextlib.suppress(ValueError, TypeError):
                    queue = [_joined(queue)]
            for features, predictions, matrix in queue:
                self._add(features, predictions, matrix)

    @contextlib.contextmanager
    def _charged(self) -> Iterator[None]:
        """Adds the thread CPU time of the block to cpu_seconds."""
        started = time.thread_time()
        try:
            yield
        finally:
            self.cpu_seconds += time.thread_time() - started

    def _add(self, features: Sequence[NDArray[Any]], predictions: NDArray[Any], matrix: NDArray[Any] | None) -> None:
        rows = int(predictions.shape[0])
        keep = self.window.capacity
        if keep is not None and rows > keep:
            # Only the newest rows can stay in a count window: skip binning the rest.
            features = [column[-keep:] for column in features]
            predictions, rows = predictions[-keep:], keep
            matrix = None if matrix is None else matrix[-keep:]
        columns, values = self.reference.columns, (*features, predictions)
        if len(values) != len(columns):
            raise ValueError(f"{len(values)} columns for a reference of {len(columns)}")
        codes = np.empty((rows, len(columns)), dtype=np.int64)
        stack = self.reference.stack
        stacked = () if stack is None else stack.positions
        if stack is not None:
            codes[:, stacked] = stack.codes(_gathered(stacked, values, matrix))
        for j, column in enumerate(columns):
            if j not in stacked:
                codes[:, j] = column.codes(values[j]) + column.offset
        self.window.add(codes)

    def snapshot(self) -> DriftSnapshot:
        self.flush()
        with self._charged():
            return self._snapshot()

    def _snapshot(self) -> DriftSnapshot:
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
