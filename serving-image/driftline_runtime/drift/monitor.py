"""Streaming drift of one served model: bins predicted batches into a window, computes drift when asked.

observe() is the only call on the request side, and nearly free: it queues the batch. Queued batches are binned
after FLUSH_SECONDS, once a time window's queue holds FLUSH_ROWS rows, and always before snapshot(), which computes
every statistic lazily, at scrape time. A time window thus sees a row up to FLUSH_SECONDS late. Binning is compiled
(_binning.pyx): small queued batches are joined first, so many 1-row requests cost one call; a large batch is binned
as it came, in chunks of CHUNK_BYTES of codes, so a backlog at a scrape never builds one big temporary.

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
from driftline_runtime.drift.reference import CategoricalColumn, Column, NumericColumn, Reference
from driftline_runtime.drift.window import Window

NAN = float("nan")
FLUSH_ROWS = 512  # a time window bins every row: in batches of at least this many
FLUSH_SECONDS = 0.5
JOIN_ROWS = 1024  # consecutive queued batches are joined until they hold this many rows, then binned in one call
CHUNK_BYTES = 512 * 1024  # codes binned per call (rows x columns x 4 bytes): one reused buffer in the CPU's cache


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


def _groups(queue: Sequence[Queued]) -> Iterator[list[Queued]]:
    """The queue in arrival order, cut into runs of consecutive batches holding at least JOIN_ROWS rows."""
    group: list[Queued] = []
    rows = 0
    for batch in queue:
        group.append(batch)
        rows += len(batch[1])
        if rows >= JOIN_ROWS:
            yield group
            group, rows = [], 0
    if group:
        yield group


def _floats(values: NDArray[Any]) -> NDArray[np.float64]:
    return np.asarray(values, dtype=np.float64)


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
        self._chunk_rows = max(64, CHUNK_BYTES // (4 * len(reference.columns)))
        self._scratch = np.empty((0, len(reference.columns)), dtype=np.int32)
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
            for group in _groups(queue):
                if len(group) > 1:
                    # Batches whose columns do not stack (shapes, dtypes) are binned one by one.
                    with contextlib.suppress(ValueError, TypeError):
                        group = [_joined(group)]
                for features, predictions, matrix in group:
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
        if len(features) + 1 != len(self.reference.columns):
            raise ValueError(f"{len(features) + 1} columns for a reference of {len(self.reference.columns)}")
        keep = self.window.capacity
        first = 0 if keep is None else max(0, rows - keep)  # only the newest rows can stay in a count window
        for start in range(first, rows, self._chunk_rows):
            stop = min(start + self._chunk_rows, rows)
            self.window.add(
                self._codes(
                    [column[start:stop] for column in features],
                    predictions[start:stop],
                    None if matrix is None else matrix[start:stop],
                )
            )

    def _codes(
        self, features: Sequence[NDArray[Any]], predictions: NDArray[Any], matrix: NDArray[Any] | None
    ) -> NDArray[np.int32]:
        """rows x columns of global bin indices: numeric columns through the compiled binning (a request's matrix in
        one call when it holds every feature), categorical ones by their lookup."""
        reference = self.reference
        binner, columns, numeric = reference.binner, reference.columns, reference.numeric_features
        rows = int(predictions.shape[0])
        if self._scratch.shape[0] < rows:
            self._scratch = np.empty((rows, len(columns)), dtype=np.int32)
        codes = self._scratch[:rows]  # the window copies the codes it keeps
        if matrix is not None and matrix.ndim == 2 and matrix.shape[1] == len(reference.features):
            binner.codes(_floats(matrix if numeric.size == matrix.shape[1] else matrix[:, numeric]), numeric, codes)
        else:
            for j in numeric.tolist():
                binner.codes(_floats(features[j]).reshape(-1, 1), reference.positions[j : j + 1], codes)
        for j, (column, values) in enumerate(zip(columns, (*features, predictions), strict=True)):
            if isinstance(column, CategoricalColumn):
                codes[:, j] = column.codes(values) + column.offset
        if isinstance(reference.prediction, NumericColumn):
            last = len(columns) - 1
            binner.codes(_floats(predictions).reshape(-1, 1), reference.positions[last:], codes)
        return codes

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
