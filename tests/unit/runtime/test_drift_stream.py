"""Streaming drift: windows, eviction, the min-samples rule, and streaming == batch on random streams."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from driftline_runtime.drift import CountWindow, DriftMonitor, ProfileError, TimeWindow, _binning, parse_reference
from driftline_runtime.drift import monitor as monitor_module
from driftline_runtime.drift.reference import CategoricalColumn
from tests.unit.runtime.server_kit import categorical_profile, numeric_profile

pytestmark = pytest.mark.unit

NUMERIC = ("n0", "n1", "n2")
NAMES = (*NUMERIC, "c")
DTYPES = ("float64", "float64", "float64", "object")
CATEGORIES = ["a", "b", "c", "d", "e"]


def sample(rng: np.random.Generator, rows: int, shift: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
    scale = 1.5 if shift else 1.0
    n0 = rng.normal(5, 1, rows) * scale
    n1 = rng.uniform(2, 6, rows) * scale
    n2 = (rng.exponential(1, rows) + 1) * scale
    n0[rng.random(rows) < 0.02] = np.nan
    probs = [0.1, 0.2, 0.3, 0.2, 0.2] if shift else [0.4, 0.3, 0.15, 0.1, 0.05]
    c = rng.choice(np.array([*CATEGORIES, "unseen"], dtype=object), rows, p=[*probs[:-1], probs[-1] - 0.01, 0.01])
    c[rng.random(rows) < 0.03] = None
    return [n0, n1, n2, c], (n1 > 4 * scale).astype(np.int64)


def profile_of(columns: list[np.ndarray], predictions: np.ndarray, regression: bool) -> dict[str, Any]:
    features = [numeric_profile(n, columns[j]) for j, n in enumerate(NUMERIC)]
    features.append(categorical_profile("c", columns[3].tolist(), keep=3))
    prediction = (
        numeric_profile("__prediction__", predictions.astype(float))
        if regression
        else categorical_profile("__prediction__", predictions.tolist())
    )
    return {"formatVersion": 1, "rows": len(predictions), "features": features, "prediction": prediction}


# --- the batch side: same rows binned independently, statistics from scipy / explicit loops -----------------


def batch_numeric(profile: dict[str, Any], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    present = values[~np.isnan(values)]
    counts, _ = np.histogram(present, bins=[-np.inf, *profile["cuts"], np.inf])
    return np.append(profile["counts"], profile["missing"]), np.append(counts, values.size - present.size)


def batch_categorical(profile: dict[str, Any], values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    live = [0] * (len(profile["categories"]) + 2)
    for v in values:
        if v is None:
            live[-1] += 1
        elif str(v) in profile["categories"]:
            live[profile["categories"].index(str(v))] += 1
        else:
            live[-2] += 1
    return np.array([*profile["counts"], profile["other"], profile["missing"]]), np.array(live)


def batch_drift(profile: dict[str, Any], values: Any) -> dict[str, float]:
    if profile["kind"] == "categorical":
        ref, live = batch_categorical(profile, list(values))
    else:
        ref, live = batch_numeric(profile, np.asarray(values, dtype=float))
    p, q = ref / ref.sum(), live / live.sum()
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    out = {"psi": float(np.sum((q - p) * np.log(q / p))), "js": float(jensenshannon(ref, live, base=2))}
    if profile["kind"] == "numeric":
        k = len(profile["cuts"]) + 1
        r, v = ref[:k], live[:k]
        out["ks"] = max(abs(v[: i + 1].sum() / v.sum() - r[: i + 1].sum() / r.sum()) for i in range(k))
        edges = np.array([profile["min"], *profile["cuts"], profile["max"]])
        mids = (edges[:-1] + edges[1:]) / 2
        std = math.sqrt(np.average((mids - np.average(mids, weights=r)) ** 2, weights=r))
        out["wasserstein"] = wasserstein_distance(mids, mids, r, v) / max(std, 1e-3)
    return out


def make_monitor(profile: dict[str, Any], window: Any, min_samples: int = 1) -> DriftMonitor:
    return DriftMonitor(parse_reference(profile, NAMES, DTYPES), window, min_samples)


def feed(monitor: DriftMonitor, rng: np.random.Generator, columns: list[np.ndarray], predictions: np.ndarray) -> None:
    start = 0
    while start < len(predictions):
        stop = start + int(rng.integers(1, 150))
        monitor.observe([c[start:stop] for c in columns], predictions[start:stop])
        start = stop


@pytest.mark.parametrize("regression", [False, True], ids=["class-labels", "numeric-predictions"])
@pytest.mark.parametrize("shift", [False, True], ids=["in-distribution", "shifted"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_drift_equals_batch_drift_over_the_window(seed: int, shift: bool, regression: bool) -> None:
    rng = np.random.default_rng(seed)
    ref_columns, ref_pred = sample(rng, 3000)
    ref_pred = ref_pred * 2.5 + rng.normal(0, 1, 3000) if regression else ref_pred
    profile = profile_of(ref_columns, ref_pred, regression)
    window = 800
    monitor = make_monitor(profile, CountWindow(window, 5, parse_reference(profile, NAMES, DTYPES).total_bins))
    live_columns, live_pred = sample(rng, 2500, shift)
    live_pred = live_pred * 2.5 + rng.normal(0, 1, 2500) if regression else live_pred
    if seed == 1:  # one batch larger than the window at the end: only its newest rows are binned
        feed(monitor, rng, [c[:1200] for c in live_columns], live_pred[:1200])
        monitor.observe([c[1200:] for c in live_columns], live_pred[1200:])
    else:
        feed(monitor, rng, live_columns, live_pred)

    snap = monitor.snapshot()
    assert snap.samples == window and snap.ready
    for j, name in enumerate(NAMES):
        expected = batch_drift(profile["features"][j], live_columns[j][-window:])
        assert snap.features[name].keys() == expected.keys()
        for method, value in expected.items():
            assert snap.features[name][method] == pytest.approx(value, abs=1e-9), (name, method)
    expected_pred = batch_drift(profile["prediction"], live_pred[-window:])
    for method, value in expected_pred.items():
        assert snap.prediction[method] == pytest.approx(value, abs=1e-9), method
    for method in ("psi", "js", "ks", "wasserstein"):
        values = [v[method] for v in snap.features.values() if method in v]
        assert snap.score[method] == max(values)


def test_shifted_stream_has_high_psi_and_in_distribution_stream_low_psi() -> None:
    rng = np.random.default_rng(7)
    ref_columns, ref_pred = sample(rng, 5000)
    profile = profile_of(ref_columns, ref_pred, regression=False)
    total = parse_reference(profile, NAMES, DTYPES).total_bins

    calm = make_monitor(profile, CountWindow(1000, 5, total), min_samples=100)
    feed(calm, rng, *sample(rng, 1000))
    calm_snap = calm.snapshot()
    assert calm_snap.score["psi"] < 0.1
    assert calm_snap.drifted_share["psi"] == 0.0

    shifted = make_monitor(profile, CountWindow(1000, 5, total), min_samples=100)
    feed(shifted, rng, *sample(rng, 1000, shift=True))
    snap = shifted.snapshot()
    for name in NUMERIC:
        assert snap.features[name]["psi"] > 0.25, name
    assert snap.drifted_share["psi"] == 1.0


def test_drift_is_nan_below_min_samples_but_the_sample_count_is_not() -> None:
    rng = np.random.default_rng(3)
    columns, pred = sample(rng, 2000)
    profile = profile_of(columns, pred, regression=False)
    monitor = make_monitor(profile, CountWindow(500, 5, parse_reference(profile, NAMES, DTYPES).total_bins), 50)

    snap = monitor.snapshot()
    assert snap.samples == 0 and not snap.ready
    monitor.observe([c[:49] for c in columns], pred[:49])
    snap = monitor.snapshot()
    assert snap.samples == 49 and not snap.ready
    values = [v for f in snap.features.values() for v in f.values()]
    values += [*snap.prediction.values(), *snap.score.values(), *snap.drifted_share.values()]
    assert values and all(math.isnan(v) for v in values)

    monitor.observe([c[49:50] for c in columns], pred[49:50])
    snap = monitor.snapshot()
    assert snap.samples == 50 and snap.ready
    assert not any(math.isnan(v) for f in snap.features.values() for v in f.values())


def test_count_window_evicts_the_oldest_rows() -> None:
    rng = np.random.default_rng(0)
    window = CountWindow(5, 2, 6)
    seen = np.empty((0, 2), dtype=np.int64)
    for rows in (2, 1, 3, 0, 4, 12, 1):
        batch = np.column_stack([rng.integers(0, 3, rows), rng.integers(3, 6, rows)])
        window.add(batch)
        seen = np.concatenate([seen, batch])
        assert window.samples() == min(5, len(seen))
        assert window.counts().tolist() == np.bincount(seen[-5:].ravel(), minlength=6).tolist()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_time_window_keeps_only_the_last_seconds() -> None:
    clock = FakeClock()
    window = TimeWindow(10, 4, clock=clock)
    added: list[tuple[float, int]] = []
    for step in range(30):
        clock.now = 1000.0 + step * 0.7
        code = step % 4
        window.add(np.array([[code]]))
        added.append((clock.now, code))
        kept = [c for t, c in added if math.floor(t) > math.floor(clock.now) - 10]
        assert window.samples() == len(kept)
        assert window.counts().tolist() == np.bincount(kept, minlength=4).tolist()
    clock.now += 10
    assert window.samples() == 0 and window.counts().tolist() == [0, 0, 0, 0]


def test_long_time_windows_use_wider_buckets_and_still_expire() -> None:
    clock = FakeClock()
    window = TimeWindow(3600, 2, clock=clock)  # 300 buckets of 12 s
    window.add(np.array([[0], [1], [1]]))
    clock.now += 3500
    window.add(np.array([[0]]))
    assert window.samples() == 4 and window.counts().tolist() == [2, 2]
    clock.now += 200
    assert window.samples() == 1 and window.counts().tolist() == [1, 0]


def test_categories_are_matched_in_the_trainers_spelling_of_the_training_dtype() -> None:
    ints = CategoricalColumn("k", 0, ("1", "2"), np.array([5, 5, 0, 0]), "int", {"1": 0, "2": 1})
    assert ints.codes(np.array([1.0, 2.0, np.nan, 7.0, 2.5])).tolist() == [0, 1, 3, 2, 2]
    # Big batches take the np.unique path; it must agree with the value-by-value one.
    assert ints.codes(np.tile([1.0, 2.0, np.nan, 7.0, 2.5], 40)).tolist() == [0, 1, 3, 2, 2] * 40
    flags = CategoricalColumn("b", 0, ("True", "False"), np.array([5, 5, 0, 0]), "bool", {"True": 0, "False": 1})
    assert flags.codes(np.array([1.0, 0.0])).tolist() == [0, 1]
    words = CategoricalColumn("w", 0, ("x",), np.array([1, 0, 0]), "str", {"x": 0})
    assert words.codes(np.array(["x", None, "y"], dtype=object)).tolist() == [0, 2, 1]


def _profile() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    columns, pred = sample(rng, 500)
    return profile_of(columns, pred, regression=False)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(formatVersion=2), "formatVersion"),
        (lambda p: p["features"].reverse(), "do not match the model's features"),
        (lambda p: p["features"][0].update(cuts=[3.0, 2.0]), "strictly increasing"),
        (lambda p: p["features"][1]["counts"].append(1), "counts"),
        (lambda p: p["features"][0].update(kind="text"), "kind must be"),
        (lambda p: p["features"][3].update(categories=["a", "a", "b"]), "duplicates"),
        (lambda p: p["prediction"].update(name="pred"), "__prediction__"),
        (lambda p: p["features"][2].update(missing=-1), "missing"),
    ],
)
def test_inconsistent_profiles_are_rejected_with_the_reason(mutate: Any, message: str) -> None:
    profile = copy.deepcopy(_profile())
    mutate(profile)
    with pytest.raises(ProfileError, match=message):
        parse_reference(profile, NAMES, DTYPES)


def test_a_numeric_profile_for_a_string_feature_is_rejected() -> None:
    with pytest.raises(ProfileError, match="profiled as numeric but its dtype is 'object'"):
        parse_reference(_profile(), NAMES, ("float64", "object", "float64", "object"))


def test_queued_batches_of_mixed_dtypes_bin_as_if_added_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """observe() queues; the queue is binned together, or batch by batch when the columns do not stack."""
    monkeypatch.setattr(monitor_module, "FLUSH_SECONDS", 1e9)  # a slow machine must not flush mid-test
    rng = np.random.default_rng(5)
    columns, pred = sample(rng, 3000)
    profile = profile_of(columns, pred, regression=False)
    total = parse_reference(profile, NAMES, DTYPES).total_bins
    queued = make_monitor(profile, CountWindow(500, 5, total))
    one_by_one = make_monitor(profile, CountWindow(500, 5, total))
    live, live_pred = sample(rng, 120, shift=True)
    for start in range(0, 120, 7):
        batch = [c[start : start + 7] for c in live]
        if start % 2:  # ints in a float column, a list-built object column: the stack upcasts or falls back
            batch = [batch[0], np.round(batch[1]).astype(np.int64), batch[2], np.array(list(batch[3]), dtype=object)]
        queued.observe(batch, live_pred[start : start + 7])
        one_by_one.observe(batch, live_pred[start : start + 7])
        one_by_one.flush()
    assert queued.window.samples() < 120  # still queued: nothing binned on the request path yet
    a, b = queued.snapshot(), one_by_one.snapshot()
    assert a.samples == b.samples == 120
    assert a.features == b.features and a.prediction == b.prediction


def test_the_monitor_counts_what_each_column_alone_gives() -> None:
    """Numeric columns on both sides of the compiled binning's linear/binary-search limit, a categorical column
    between them and a numeric prediction, on the values where a slip would show (on a cut, one ulp either side,
    infinities, NaN): the window counts what each column's own searchsorted gives."""
    rng = np.random.default_rng(7)
    wide = np.sort(rng.normal(size=5000))
    profile = profile_of([wide, wide * 2, wide + 3, np.array(["a"] * 5000, dtype=object)], wide, regression=True)
    profile["features"][2] = numeric_profile("n2", wide, bins=_binning.LINEAR_CUTS + 8)
    reference = parse_reference(profile, NAMES, DTYPES)
    numeric = [c for c in reference.columns if not isinstance(c, CategoricalColumn)]
    cuts = np.concatenate([c.cuts for c in numeric])
    edge = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e300, -1e300])
    values = [rng.permutation(np.concatenate([cuts, np.nextafter(cuts, np.inf), np.nextafter(cuts, -np.inf), edge]))]
    values += [rng.permutation(values[0]) for _ in range(3)]
    rows = values[0].size
    live = [values[0], values[1], values[2], np.array(["a"] * rows, dtype=object), values[3]]
    monitor = DriftMonitor(reference, CountWindow(rows, 5, reference.total_bins), 1)
    monitor.observe(live[:-1], live[-1])
    monitor.flush()
    expected = np.zeros(reference.total_bins, dtype=np.int64)
    for column, v in zip(reference.columns, live, strict=True):
        np.add.at(expected, column.codes(v) + column.offset, 1)
    assert np.array_equal(monitor.window.counts(), expected)


@pytest.mark.parametrize("regression", [False, True], ids=["labels", "regression: a numeric prediction"])
def test_batches_that_came_as_one_matrix_bin_as_their_columns_do(
    monkeypatch: pytest.MonkeyPatch, regression: bool
) -> None:
    """An all-numeric request's rows x features matrix is binned as it is (queued matrices joined in one call), one
    feature binned by binary search; mixed with a batch without a matrix, the queue joins column by column. Either
    way the window counts what the columns alone give."""
    monkeypatch.setattr(monitor_module, "FLUSH_SECONDS", 1e9)
    rng = np.random.default_rng(11)
    columns, pred = sample(rng, 3000)
    numeric = columns[:3]
    profile = profile_of(columns, pred.astype(float) * 3.5 if regression else pred, regression=regression)
    profile["features"] = profile["features"][:3]
    profile["features"][2] = numeric_profile("n2", numeric[2], bins=_binning.LINEAR_CUTS + 8)
    reference = parse_reference(profile, NUMERIC, DTYPES[:3])

    def monitor() -> DriftMonitor:
        return DriftMonitor(reference, CountWindow(400, 4, reference.total_bins), 1)

    as_matrices, as_columns, mixed = monitor(), monitor(), monitor()
    live, live_pred = sample(rng, 150, shift=True)
    live_pred = live_pred.astype(float) * 3.5 if regression else live_pred
    for start in range(0, 150, 9):
        part = [c[start : start + 9] for c in live[:3]]
        matrix = np.column_stack(part)
        as_matrices.observe([matrix[:, j] for j in range(3)], live_pred[start : start + 9], matrix)
        as_columns.observe(part, live_pred[start : start + 9])
        as_columns.flush()
        mixed.observe(part, live_pred[start : start + 9], matrix if start % 2 else None)
    assert as_matrices.window.samples() == 0, "queued: nothing binned on the request path yet"
    expected = as_columns.snapshot()
    for queued in (as_matrices, mixed):
        got = queued.snapshot()
        assert got.samples == expected.samples == 150
        assert np.array_equal(queued.window.counts(), as_columns.window.counts())
        assert got.features == expected.features and got.prediction == expected.prediction


def test_a_count_window_never_bins_rows_it_would_evict_unseen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued rows that newer queued rows push out of a count window are dropped unbinned: the window after a scrape
    is what binning every batch would give, for at most the window's rows (plus one batch) of binning work."""
    monkeypatch.setattr(monitor_module, "FLUSH_SECONDS", 1e9)
    rng = np.random.default_rng(13)
    columns, pred = sample(rng, 3000)
    profile = profile_of(columns, pred, regression=False)
    total = parse_reference(profile, NAMES, DTYPES).total_bins
    lazy = make_monitor(profile, CountWindow(50, 5, total))
    eager = make_monitor(profile, CountWindow(50, 5, total))
    binned: list[int] = []
    add = lazy.window.add
    monkeypatch.setattr(lazy.window, "add", lambda codes: (binned.append(len(codes)), add(codes)))
    live, live_pred = sample(rng, 700, shift=True)
    for start in range(0, 700, 7):
        batch = [c[start : start + 7] for c in live]
        lazy.observe(batch, live_pred[start : start + 7])
        assert lazy.pending_rows < 50 + 7, "the queue holds no more than the window can"
        eager.observe(batch, live_pred[start : start + 7])
        eager.flush()
    a, b = lazy.snapshot(), eager.snapshot()
    assert sum(binned) <= 50 + 7, f"binned {sum(binned)} of 700 rows into a 50-row window"
    assert a.samples == b.samples == 50
    assert np.array_equal(lazy.window.counts(), eager.window.counts())
    assert a.features == b.features and a.prediction == b.prediction
