"""A ring of rows held column by column: each feature in its own array (float64 for numeric features, objects for
the others), plus one value column (a class index or a regression value). Memory is fixed at construction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


class ColumnRing:
    def __init__(self, capacity: int, numeric: Sequence[bool], value_dtype: type[Any]) -> None:
        self.capacity = capacity
        self.columns: list[NDArray[Any]] = [np.empty(capacity, np.float64 if n else object) for n in numeric]
        self.values: NDArray[Any] = np.zeros(capacity, value_dtype)

    def where(self, first: int, rows: int) -> slice | NDArray[np.intp]:
        """The slots of the rows numbered first .. first + rows - 1 (rows are numbered from 0, forever): a slice
        unless they wrap around the end."""
        start = first % self.capacity
        if start + rows <= self.capacity:
            return slice(start, start + rows)
        return np.arange(first, first + rows) % self.capacity

    def put(self, first: int, columns: Sequence[NDArray[Any]], values: NDArray[Any]) -> None:
        """Write rows first .. first + len(values) - 1 (at most `capacity` of them)."""
        where = self.where(first, len(values))
        for ring, column in zip(self.columns, columns, strict=True):
            ring[where] = column
        self.values[where] = values

    def take(self, where: slice | NDArray[np.intp]) -> tuple[list[NDArray[Any]], NDArray[Any]]:
        """Copies of the rows at `where`."""
        return [ring[where].copy() for ring in self.columns], self.values[where].copy()
