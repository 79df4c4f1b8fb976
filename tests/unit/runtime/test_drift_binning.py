"""The compiled drift binning (driftline_runtime/drift/_binning.pyx, binning.h) against its definitions: numpy's
searchsorted for the codes, a plain list of rows for a count window's ring; and its guard rails, which must raise
before anything is written."""

from __future__ import annotations

import collections
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from driftline_runtime.drift import _binning

pytestmark = pytest.mark.unit

EDGES = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e300, -1e300, 5e-324])


def tables(cuts: list[NDArray[np.float64]]) -> tuple[_binning.NumericBinner, NDArray[np.int32], NDArray[np.int32]]:
    """A binner for numeric columns with these cuts, laid out one after another as a Reference lays them out."""
    width = max([1, *(c.size for c in cuts)])
    table = np.full((len(cuts), width), np.nan)
    for t, c in enumerate(cuts):
        table[t, : c.size] = c
    ncuts = np.array([c.size for c in cuts], dtype=np.int32)
    missing = ncuts + 1  # value bins 0..ncuts, then the missing bin
    offsets = np.concatenate([[0], np.cumsum(missing + 1)[:-1]]).astype(np.int32)
    total = int(offsets[-1] + missing[-1] + 1)
    return _binning.NumericBinner(table, ncuts, missing, offsets, total), missing, offsets


def expected_codes(cuts: list[NDArray[np.float64]], values: NDArray[np.float64]) -> NDArray[np.int32]:
    _, missing, offsets = tables(cuts)
    out = np.empty(values.shape, dtype=np.int32)
    for t, c in enumerate(cuts):
        local = np.searchsorted(c, values[:, t], side="right")
        out[:, t] = np.where(np.isnan(values[:, t]), missing[t], local) + offsets[t]
    return out


@st.composite
def columns_and_values(draw: st.DrawFn) -> tuple[list[NDArray[np.float64]], NDArray[np.float64]]:
    """Up to 6 columns, each with 0 to LINEAR_CUTS + 9 cuts (both search paths), and values that sit on the cuts,
    one ulp either side of them, at the extremes, NaN, or anywhere."""
    n = draw(st.integers(1, 6))
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    cuts = [
        np.unique(np.array(draw(st.lists(finite, max_size=_binning.LINEAR_CUTS + 9)), dtype=np.float64))
        for _ in range(n)
    ]
    rows = draw(st.integers(0, 700))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pool = np.concatenate([*cuts, *(np.nextafter(c, np.inf) for c in cuts), *(np.nextafter(c, -np.inf) for c in cuts)])
    pool = np.concatenate([pool, EDGES, rng.normal(0, 1e6, 50)])
    return cuts, rng.choice(pool, size=(rows, n))


LAYOUTS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "row-major": np.ascontiguousarray,
    "column-major": np.asfortranarray,
    "every other column of a wider matrix": lambda v: np.repeat(v, 2, axis=1)[:, ::2],
    "rows reversed twice (negative strides)": lambda v: np.ascontiguousarray(v[::-1])[::-1],
}


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=60, deadline=None)
@given(case=columns_and_values())
def test_codes_are_searchsorted_right_plus_the_offset(
    layout: str, case: tuple[list[NDArray[np.float64]], NDArray[np.float64]]
) -> None:
    cuts, values = case
    binner, _, _ = tables(cuts)
    out = np.full(values.shape, -1, dtype=np.int32)
    binner.codes(LAYOUTS[layout](values), np.arange(len(cuts), dtype=np.intp), out)
    assert np.array_equal(out, expected_codes(cuts, values))


def test_codes_go_to_the_named_columns_and_leave_the_others() -> None:
    cuts = [np.array([0.0]), np.array([1.0, 2.0]), np.array([-1.0])]
    binner, _, offsets = tables(cuts)
    out = np.full((3, 3), 99, dtype=np.int32)
    binner.codes(np.array([[5.0], [1.5], [np.nan]]), np.array([1], dtype=np.intp), out)
    assert out[:, 1].tolist() == [offsets[1] + 2, offsets[1] + 1, offsets[1] + 3]
    assert (out[:, [0, 2]] == 99).all()


def ring_model(size: int, columns: int, bins: int) -> Callable[[NDArray[np.int32]], NDArray[np.int64]]:
    """A count window written plainly: the last `size` rows in a deque, counted from scratch."""
    rows: collections.deque[list[int]] = collections.deque(maxlen=size)

    def add(codes: NDArray[np.int32]) -> NDArray[np.int64]:
        rows.extend(codes.tolist())
        return np.bincount(np.array(list(rows), dtype=np.int64).reshape(-1), minlength=bins)

    return add


@pytest.mark.parametrize("dtype", [np.int16, np.int32])
@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 23), max_size=30), seed=st.integers(0, 2**32 - 1), size=st.integers(1, 17))
def test_ring_add_keeps_the_counts_of_the_last_rows(
    dtype: type[np.int16] | type[np.int32], sizes: list[int], seed: int, size: int
) -> None:
    rng = np.random.default_rng(seed)
    columns, bins = 3, 40
    ring = np.zeros((size, columns), dtype=dtype)
    counts = np.zeros(bins, dtype=np.int64)
    model = ring_model(size, columns, bins)
    start = filled = 0
    for n in sizes:
        codes = rng.integers(0, bins, size=(n, columns)).astype(np.int32)
        expected = model(codes)
        codes = codes[-size:]  # as CountWindow.add does: a batch larger than the ring keeps its newest rows
        _binning.ring_add(codes, ring, counts, start, filled)
        start, filled = (start + len(codes)) % size, min(size, filled + len(codes))
        assert np.array_equal(counts, expected)


def test_count_adds_every_code() -> None:
    counts = np.arange(5, dtype=np.int64)
    _binning.count(np.array([[0, 4], [4, 4]], dtype=np.int32), counts)
    assert counts.tolist() == [1, 1, 2, 3, 7]


def test_the_guard_rails_raise_before_anything_is_written() -> None:
    binner, _, _ = tables([np.array([0.0]), np.array([1.0])])
    out = np.zeros((2, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="not a column of out"):
        binner.codes(np.ones((2, 1)), np.array([2], dtype=np.intp), out)
    with pytest.raises(ValueError, match="targets"):
        binner.codes(np.ones((2, 2)), np.array([0], dtype=np.intp), out)
    with pytest.raises(ValueError, match="rows out"):
        binner.codes(np.ones((3, 1)), np.array([0], dtype=np.intp), out)
    assert not out.any()

    ring, counts = np.zeros((4, 2), dtype=np.int16), np.zeros(10, dtype=np.int64)
    for codes in ([[0, 10]], [[-1, 0]]):
        with pytest.raises(ValueError, match="is not one of the 10 bins"):
            _binning.ring_add(np.array(codes, dtype=np.int32), ring, counts, 0, 0)
        with pytest.raises(ValueError, match="is not one of the 10 bins"):
            _binning.count(np.array(codes, dtype=np.int32), counts)
    with pytest.raises(ValueError, match="into a 4 x 2 ring"):
        _binning.ring_add(np.zeros((5, 2), dtype=np.int32), ring, counts, 0, 0)
    with pytest.raises(ValueError, match="into a 4 x 2 ring"):
        _binning.ring_add(np.zeros((1, 2), dtype=np.int32), ring, counts, 4, 0)
    with pytest.raises(ValueError, match="int16 ring cannot hold"):
        _binning.ring_add(np.zeros((1, 2), dtype=np.int32), ring, np.zeros(40_000, dtype=np.int64), 0, 0)
    assert not ring.any() and not counts.any()

    with pytest.raises(ValueError, match="bins outside"):
        _binning.NumericBinner(np.zeros((1, 1)), *(np.array([v], dtype=np.int32) for v in (1, 2, 0)), 2)


def test_values_whose_rows_are_not_whole_float64_steps_are_refused() -> None:
    """A field of a packed record array steps 9 bytes a row: the kernel counts in float64 elements, so it refuses."""
    packed = np.zeros(4, dtype=[("x", np.float64), ("flag", np.int8)])
    binner, _, _ = tables([np.array([0.0])])
    with pytest.raises(ValueError, match="float64 steps"):
        binner.codes(packed["x"].reshape(-1, 1), np.array([0], dtype=np.intp), np.zeros((4, 1), dtype=np.int32))
