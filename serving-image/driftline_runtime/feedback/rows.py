"""A ring of rows: the features (one float64 matrix when every feature is numeric, else one array per feature, objects
for the others), plus one value column (a class index or a regression value). Memory is fixed at construction.

A numeric request is written in one slice assignment of its rows x features matrix: per-column writes cost a numpy
call per feature, 30 of them for a 30-feature model, on every request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


class ColumnRing:
    def __init__(self, capacity: int, numeric: Sequence[bool], value_dtype: type[Any]) -> None:
        self.capacity = capacity
        self.width = len(numeric)
        self.matrix: NDArray[np.float64] | None = np.empty((capacity, self.width)) if all(numeric) else None
        self.columns: list[NDArray[Any]] = (
            [] if self.matrix is not None else [np.empty(capacity, np.float64 if n else object) for n in numeric]
        )
        self.values: NDArray[Any] = np.zeros(capacity, value_dtype)

    def where(self, first: int, rows: int) -> slice | NDArray[np.intp]:
        """The slots of the rows numbered first .. first + rows - 1 (rows are numbered from 0, forever): a slice
        unless they wrap around the end."""
        start = first % self.capacity
        if start + rows <= self.capacity:
            return slice(start, start + rows)
        return np.arange(first, first + rows) % self.capacity

    def put(
        self,
        first: int,
        columns: Sequence[NDArray[Any]],
        values: NDArray[Any],
        matrix: NDArray[Any] | None = None,
    ) -> None:
        """Write rows first .. first + len(values) - 1 (at most `capacity` of them); `matrix`, the same rows as one
        rows x features array when the request came as one."""
        where = self.where(first, len(values))
        if self.matrix is not None:
            usable = matrix is not None and matrix.ndim == 2 and matrix.shape[1] == self.width
            self.matrix[where] = matrix if usable else np.column_stack(columns)
        else:
            for ring, column in zip(self.columns, columns, strict=True):
                ring[where] = column
        self.values[where] = values

    def take(self, where: slice | NDArray[np.intp]) -> tuple[list[NDArray[Any]], NDArray[Any]]:
        """Copies of the rows at `where`, column by column."""
        if self.matrix is not None:
            rows = self.matrix[where]
            return [rows[:, j].copy() for j in range(self.width)], self.values[where].copy()
        return [ring[where].copy() for ring in self.columns], self.values[where].copy()
