"""Streaming windows of binned rows: running histograms updated in O(columns) per row, in compiled loops.

Rows arrive as a (rows x columns) matrix of global bin indices (see reference.py); a window keeps one flat count
vector over all columns' bins plus the number of rows it currently holds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.drift import _binning

IntArray = NDArray[np.int64]
Clock = Callable[[], float]
# A time window keeps at most this many buckets; longer windows use wider buckets (see TimeWindow).
MAX_TIME_BUCKETS = 300


class Window(Protocol):
    @property
    def capacity(self) -> int | None:
        """The most rows the window can hold, None when it is bounded by time instead."""
        ...

    def add(self, codes: NDArray[np.integer]) -> None: ...

    def counts(self) -> IntArray: ...

    def samples(self) -> int: ...


def _histogram(codes: NDArray[np.integer], total_bins: int) -> IntArray:
    counts = np.zeros(total_bins, dtype=np.int64)
    _binning.count(_codes(codes), counts)
    return counts


def _codes(codes: NDArray[np.integer]) -> NDArray[np.int32]:
    return np.ascontiguousarray(codes, dtype=np.int32).reshape(codes.shape[0], -1)


class CountWindow:
    """The last `size` rows: a ring buffer of their bin indices; counts add the new rows and subtract the evicted."""

    def __init__(self, size: int, columns: int, total_bins: int) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        dtype = np.int16 if total_bins <= np.iinfo(np.int16).max else np.int32
        self._ring = np.zeros((size, columns), dtype=dtype)
        self._counts = np.zeros(total_bins, dtype=np.int64)
        self._size = size
        self._next = 0
        self._filled = 0

    @property
    def capacity(self) -> int | None:
        return self._size

    def add(self, codes: NDArray[np.integer]) -> None:
        rows = codes.shape[0]
        if rows == 0:
            return
        if rows > self._size:
            codes, rows = codes[-self._size :], self._size
        # Slots below `_filled` hold live rows (before the first wrap the ring fills from 0 upwards): their codes
        # leave the counts as the new rows take their place.
        _binning.ring_add(_codes(codes), self._ring, self._counts, self._next, self._filled)
        self._next = (self._next + rows) % self._size
        self._filled = min(self._size, self._filled + rows)

    def counts(self) -> IntArray:
        return self._counts.copy()

    def samples(self) -> int:
        return self._filled


class TimeWindow:
    """The rows seen in the last `seconds` seconds, in per-second buckets.

    Windows longer than MAX_TIME_BUCKETS seconds use buckets of ceil(seconds / MAX_TIME_BUCKETS) seconds to bound
    memory, so their trailing edge moves in steps of that width. Expired buckets are subtracted lazily, on the
    next add or read.
    """

    def __init__(self, seconds: float, total_bins: int, clock: Clock = time.monotonic) -> None:
        if seconds <= 0:
            raise ValueError("window seconds must be positive")
        self._width = max(1, math.ceil(seconds / MAX_TIME_BUCKETS))
        self._slots = math.ceil(seconds / self._width)
        self._buckets = np.zeros((self._slots, total_bins), dtype=np.int64)
        self._rows = np.zeros(self._slots, dtype=np.int64)
        self._stamps = np.full(self._slots, -1, dtype=np.int64)
        self._counts = np.zeros(total_bins, dtype=np.int64)
        self._samples = 0
        self._clock = clock

    @property
    def capacity(self) -> int | None:
        return None

    def _tick(self) -> int:
        tick = int(self._clock() // self._width)
        stale = (self._stamps >= 0) & (self._stamps <= tick - self._slots)
        if stale.any():
            self._counts -= self._buckets[stale].sum(axis=0)
            self._samples -= int(self._rows[stale].sum())
            self._buckets[stale] = 0
            self._rows[stale] = 0
            self._stamps[stale] = -1
        return tick

    def add(self, codes: NDArray[np.integer]) -> None:
        rows = codes.shape[0]
        if rows == 0:
            return
        tick = self._tick()
        # After _tick the slot is either empty or already holds this tick.
        slot = tick % self._slots
        histogram = _histogram(codes, self._counts.size)
        self._stamps[slot] = tick
        self._buckets[slot] += histogram
        self._rows[slot] += rows
        self._counts += histogram
        self._samples += rows

    def counts(self) -> IntArray:
        self._tick()
        return self._counts.copy()

    def samples(self) -> int:
        self._tick()
        return self._samples
