"""Live performance: the last `size` labelled rows, scored at scrape time as the trainer scored its validation split.

Accuracy and F1 score the predictions clients were answered with. Log loss and ROC AUC need the model's scores, which
requests do not keep: they are computed for the window's rows when it is scored, once per change of the window, by
the `scores` function the server passes (predict_proba, or decision_function), so no request pays for them.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime import scoring
from driftline_runtime.feedback.rows import ColumnRing
from driftline_runtime.feedback.store import Labels, Outcome, PredictionStore, Result

NAN = float("nan")
Scores = Callable[[list[NDArray[Any]]], tuple[NDArray[Any] | None, NDArray[Any] | None]]
"""Feature columns -> (predict_proba, decision_function), either None where the model has none."""


def metric_names(task: str, classes: Sequence[Any]) -> tuple[str, ...]:
    """The metrics a model is scored by, in the order they are exported."""
    if task != "classification":
        return scoring.REGRESSION
    return ("accuracy", "f1" if len(classes) == 2 else "f1_macro", "roc_auc", "log_loss")


@dataclass(frozen=True)
class PerformanceSnapshot:
    samples: int
    """Labelled rows in the window."""
    ready: bool
    """The window holds at least min_samples rows; below, every metric is NaN."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Every metric of the model's task; NaN when not ready or undefined for the rows (one class for AUC)."""


class LabelledWindow:
    """The newest `size` labelled rows, in the order their labels came."""

    def __init__(self, size: int, numeric: Sequence[bool], dtype: type[Any]) -> None:
        self._ring = ColumnRing(size, numeric, dtype)
        self._truth = np.zeros(size, dtype)
        self._next = 0
        self.changes = 0

    @property
    def samples(self) -> int:
        return min(self._next, self._ring.capacity)

    def add(self, columns: Sequence[NDArray[Any]], predicted: NDArray[Any], truth: NDArray[Any]) -> None:
        size = self._ring.capacity
        rows = len(truth)
        if rows > size:
            columns, predicted, truth = [c[-size:] for c in columns], predicted[-size:], truth[-size:]
            self._next += rows - size
        self._ring.put(self._next, columns, predicted)
        self._truth[self._ring.where(self._next, len(truth))] = truth
        self._next += len(truth)
        self.changes += 1

    def rows(self) -> tuple[list[NDArray[Any]], NDArray[Any], NDArray[Any]]:
        """(feature columns, predicted, truth), oldest first."""
        count = self.samples
        where = self._ring.where(self._next - count, count)
        columns, predicted = self._ring.take(where)
        return columns, predicted, self._truth[where].copy()


class LiveEvaluation:
    """Joins labels to stored predictions and scores the labelled window."""

    def __init__(
        self,
        task: str,
        classes: Sequence[Any],
        numeric: Sequence[bool],
        scores: Scores,
        store_rows: int,
        max_age: float,
        window: int,
        min_samples: int,
    ) -> None:
        self.task = task
        self.labels = Labels(task, classes)
        self.store = PredictionStore(store_rows, max_age, numeric, self.labels)
        self.window = LabelledWindow(window, numeric, self.labels.dtype)
        self.min_samples = min_samples
        self.names = metric_names(task, classes)
        self.outcomes: collections.Counter[Outcome] = collections.Counter()
        """Labelled rows by outcome (a request's labels sent as a list count once per row)."""
        self._scores = scores
        self._cached: tuple[int, PerformanceSnapshot] | None = None

    def keep(
        self,
        request_id: str,
        columns: Sequence[NDArray[Any]],
        predicted: NDArray[Any],
        now: float,
        matrix: NDArray[Any] | None = None,
    ) -> bool:
        return self.store.add(request_id, columns, predicted, now, matrix)

    def label(self, request_id: Any, truth: Any, row: Any, now: float) -> Result:
        result = self.store.join(request_id, truth, row, now)
        joined = result.joined
        rows = len(joined.truth) if joined is not None else len(truth) if isinstance(truth, list) and row is None else 1
        self.outcomes[result.outcome] += max(rows, 1)
        if joined is not None:
            self.window.add(joined.columns, joined.predicted, joined.truth)
        return result

    def labelled(self) -> tuple[list[NDArray[Any]], NDArray[Any]]:
        """The window's feature columns and their labels (as the model names its classes), oldest first: the
        live data a retrain learns from."""
        columns, _, truth = self.window.rows()
        return columns, self.labels.decode(truth)

    def snapshot(self) -> PerformanceSnapshot:
        if self._cached is not None and self._cached[0] == self.window.changes:
            return self._cached[1]
        samples = self.window.samples
        ready = samples >= self.min_samples and samples > 0
        metrics = dict.fromkeys(self.names, NAN)
        if ready:
            columns, predicted, truth = self.window.rows()
            proba, decision = self._scores(columns) if self.task == "classification" else (None, None)
            classes = self.labels.classes
            scored = scoring.score(
                self.task, self.labels.decode(truth), self.labels.decode(predicted), classes, proba, decision
            )
            metrics.update((name, value) for name, value in scored.items() if name in metrics and math.isfinite(value))
        snap = PerformanceSnapshot(samples, ready, metrics)
        self._cached = (self.window.changes, snap)
        return snap
