"""Predictions awaiting their ground truth, by request id, bounded in rows and in age.

A request's rows (its features and what the model answered) go into a ring of `capacity` rows; its id maps to where
they are. Rows are pushed out by newer ones or by age, whichever comes first: memory stays at `capacity` rows, and a
label that comes later than either finds its prediction expired. Ids of requests pushed out recently are remembered
(ids only, as many as the ring holds rows), so a late label is told "expired", not "unknown".

Labels are checked against the model (a class it knows; a finite number for regression) and joined to the stored
prediction exactly once: a second label for the same row is a duplicate and changes nothing.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.feedback.rows import ColumnRing

SMALL_BATCH = 16
MAX_ID_CHARS = 256
"""Longer request ids are served but not kept: their labels are answered as unknown."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"
    """No prediction was ever stored under the id (or its id was too long to keep)."""
    EXPIRED = "expired"
    """The prediction was stored, then pushed out by newer rows or by age."""
    DUPLICATE = "duplicate"
    """The row already has its label."""
    INVALID = "invalid"
    """The label cannot be a truth for this model, or names a row the request did not have."""


@dataclass(frozen=True)
class Joined:
    """Labelled rows, ready for the performance window."""

    columns: list[NDArray[Any]]
    predicted: NDArray[Any]
    truth: NDArray[Any]


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    message: str = ""
    joined: Joined | None = None


_Request = tuple[int, int, float]
"""A stored request: its first row's number, its rows, when it was served. A plain tuple of numbers, which the garbage
collector stops tracking: 10,000 kept objects it tracks made every full collection 3.5x longer (a dataclass, then a
NamedTuple, whose instances CPython never untracks: only exact tuples are)."""


class Labels:
    """What a model's truth may be: an index into its classes, or a finite number (regression)."""

    def __init__(self, task: str, classes: Sequence[Any]) -> None:
        self.classification = task == "classification"
        self.classes = np.asarray(classes)
        self._index = {(type(c) is bool, c): i for i, c in enumerate(self.classes.tolist())}

    @property
    def dtype(self) -> type[Any]:
        return np.int32 if self.classification else np.float64

    def encode_predictions(self, predicted: NDArray[Any]) -> NDArray[Any]:
        """The model's own predictions as stored values: class indices, or floats. Raises ValueError on a prediction
        outside the model's classes (a model whose classes the metadata misstates)."""
        if not self.classification:
            return np.asarray(predicted, dtype=np.float64)
        if len(predicted) <= SMALL_BATCH:  # a dict lookup per row beats numpy's call overhead on a few rows
            try:
                return np.array([self._index[(type(v) is bool, v)] for v in predicted.tolist()], dtype=np.int32)
            except (KeyError, TypeError):
                raise ValueError("a prediction is not among the model's classes") from None
        index = np.searchsorted(self.classes, predicted)
        inside = np.minimum(index, len(self.classes) - 1)
        if np.any(index >= len(self.classes)) or np.any(self.classes[inside] != predicted):
            raise ValueError("a prediction is not among the model's classes")
        return index.astype(np.int32)

    def encode(self, truth: Any) -> int | float:
        """One label from JSON as a stored value; ValueError says why it cannot be a truth for this model."""
        if self.classification:
            if isinstance(truth, list | dict) or truth is None:
                raise ValueError(f"a label must be one of the model's classes, got {_describe(truth)}")
            found = self._index.get((type(truth) is bool, truth))
            if found is None:
                shown = ", ".join(repr(c) for c in self.classes.tolist()[:10])
                raise ValueError(f"label {truth!r} is not one of the model's classes ({shown})")
            return found
        if isinstance(truth, bool) or not isinstance(truth, int | float) or not math.isfinite(truth):
            raise ValueError(f"a label must be a finite number for a regression model, got {_describe(truth)}")
        return float(truth)

    def decode(self, values: NDArray[Any]) -> NDArray[Any]:
        return self.classes[values] if self.classification else values


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "an object"
    return repr(value)[:40]


class PredictionStore:
    def __init__(self, capacity: int, max_age: float, numeric: Sequence[bool], labels: Labels) -> None:
        self.capacity = capacity
        self.max_age = max_age
        self.labels = labels
        self._ring = ColumnRing(capacity, numeric, labels.dtype)
        self._labelled = np.zeros(capacity, dtype=bool)
        self._next = 0  # the number of the next row stored
        self._requests: dict[str, _Request] = {}
        self._order: collections.deque[tuple[str, int]] = collections.deque()  # (id, first row), oldest first
        self._gone: collections.OrderedDict[str, None] = collections.OrderedDict()

        self.held = 0
        """Rows whose labels can still be joined (labelled already or not)."""

    def add(
        self,
        request_id: str,
        columns: Sequence[NDArray[Any]],
        predicted: NDArray[Any],
        now: float,
        matrix: NDArray[Any] | None = None,
    ) -> bool:
        """Keep a served request's rows under its id (`matrix`: the same rows as one array, when they came as one);
        False when they are not kept (too many rows or too long an id). A client that reuses an id replaces its
        earlier request."""
        rows = len(predicted)
        if rows == 0 or rows > self.capacity or len(request_id) > MAX_ID_CHARS:
            return False
        values = self.labels.encode_predictions(predicted)
        first = self._next
        self._ring.put(first, columns, values, matrix)
        self._labelled[self._ring.where(first, rows)] = False
        self._next += rows
        replaced = self._requests.get(request_id)
        self.held += rows - (replaced[1] if replaced is not None else 0)
        self._requests[request_id] = (first, rows, now)
        self._gone.pop(request_id, None)
        self._order.append((request_id, first))
        self._evict(now)
        return True

    def _evict(self, now: float) -> None:
        oldest_kept = self._next - self.capacity
        while self._order:
            request_id, first = self._order[0]
            current = self._requests.get(request_id)
            if current is not None and current[0] == first:
                if first >= oldest_kept and now - current[2] <= self.max_age:
                    return
                del self._requests[request_id]
                self.held -= current[1]
                self._gone[request_id] = None
                if len(self._gone) > self.capacity:
                    self._gone.popitem(last=False)
            self._order.popleft()

    def join(self, request_id: Any, truth: Any, row: Any, now: float) -> Result:
        """Join a label to a stored prediction: `truth` for row `row` of the request, or, with `row` None, a list with
        one label per row (a bare label for a one-row request)."""
        if not isinstance(request_id, str):
            return Result(Outcome.INVALID, f'"id" must be a string, got {_describe(request_id)}')
        self._evict(now)
        request = self._requests.get(request_id)
        if request is None:
            if request_id in self._gone:
                return Result(Outcome.EXPIRED, self._expired(request_id))
            return Result(Outcome.UNKNOWN, f"no prediction with id {request_id[:80]!r} was served here")
        first, rows, _ = request
        if row is not None:
            if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < rows:
                msg = f'"row" must be an integer in 0..{rows - 1}, got {_describe(row)}'
                return Result(Outcome.INVALID, msg)
            offsets, labels = [row], [truth]
        elif isinstance(truth, list):
            if len(truth) != rows:
                msg = f'"truth" has {len(truth)} labels for a request of {rows} rows (or send "row" with one)'
                return Result(Outcome.INVALID, msg)
            offsets, labels = list(range(rows)), truth
        elif rows == 1:
            offsets, labels = [0], [truth]
        else:
            return Result(Outcome.INVALID, f'the request had {rows} rows: send "truth" as a list, or a "row"')
        try:
            encoded = np.asarray([self.labels.encode(t) for t in labels], dtype=self.labels.dtype)
        except ValueError as e:
            return Result(Outcome.INVALID, str(e))
        where = self._ring.where(first + offsets[0], len(offsets))
        if self._labelled[where].any():
            return Result(Outcome.DUPLICATE, f"the prediction with id {request_id[:80]!r} already has its label")
        self._labelled[where] = True
        columns, predicted = self._ring.take(where)
        return Result(Outcome.ACCEPTED, joined=Joined(columns, predicted, encoded))

    def _expired(self, request_id: str) -> str:
        return (
            f"the prediction with id {request_id[:80]!r} has expired: labels are joined only while the prediction is "
            f"among the last {self.capacity} rows and younger than {self.max_age:g}s"
        )
