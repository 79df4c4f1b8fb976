"""The drift benchmark's own accounting: every row it claims to have binned is binned inside the span it reports as
end to end, and the scrape-time figure holds no binning. Binning is lazy (observe only queues), so a benchmark that
flushed before starting its clock, or timed snapshots after an untimed one, would report work it left out: that is
how bench/drift.py published figures 100x too good until 2026-12-04."""

from __future__ import annotations

import time
from typing import Any

import pytest
from bench import drift

from driftline_runtime.drift.monitor import DriftMonitor

pytestmark = pytest.mark.unit

ROWS = 5_000
TRIALS = 2


@pytest.fixture
def binned(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float, int]]:
    """(start, end, rows) of every binning the monitor does: _add is where queued rows become window counts."""
    calls: list[tuple[float, float, int]] = []
    real = DriftMonitor._add

    def add(self: DriftMonitor, features: Any, predictions: Any, matrix: Any) -> None:
        started = time.perf_counter()
        real(self, features, predictions, matrix)
        calls.append((started, time.perf_counter(), len(predictions)))

    monkeypatch.setattr(DriftMonitor, "_add", add)
    return calls


def inside(call: tuple[float, float, int], spans: list[tuple[float, float]]) -> bool:
    return any(start <= call[0] and call[1] <= end for start, end in spans)


def test_end_to_end_holds_every_binning_and_the_scrape_figure_none(binned: list[tuple[float, float, int]]) -> None:
    ref, cur = drift.dataset(ROWS)
    ours = drift.run_driftline(ref, cur, TRIALS)
    assert len(ours.spans) == len(ours.end_to_end) == TRIALS
    assert sum(rows for *_, rows in binned) == TRIALS * ROWS, "every row observed is binned"
    outside = [c for c in binned if not inside(c, ours.spans)]
    assert not outside, f"{len(outside)} binnings outside the end-to-end span"
    overlapping = [c for c in binned if any(s < c[1] and c[0] < e for s, e in ours.scrape_spans)]
    assert not overlapping, "the scrape-time figure includes binning"
    assert len(ours.scrape) == TRIALS * drift.SCRAPES
    # The binning figure is the flushes' time within the span: more than nothing, less than the whole.
    assert all(0 < b < e for b, e in zip(ours.binning, ours.end_to_end, strict=True))


def test_the_small_batch_path_bins_every_row_within_its_span(binned: list[tuple[float, float, int]]) -> None:
    ref, cur = drift.dataset(ROWS)
    per_row, spans = drift.run_small_batches(ref, cur, 32, TRIALS)
    assert len(per_row) == len(spans) == TRIALS
    assert sum(rows for *_, rows in binned) == TRIALS * ROWS
    assert all(inside(c, spans) for c in binned)
    assert all(p * ROWS == pytest.approx(e - s) for p, (s, e) in zip(per_row, spans, strict=True))
