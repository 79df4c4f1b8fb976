"""Drift computation: the model server's streaming drift against Evidently and scipy, on the same data.

Datasets: 10k, 100k and 1M rows x 20 numeric features; the reference is N(0, 1), the current rows shift feature j by
0.05 j in mean and 1 + 0.02 j in scale, and feature 19 by another +3 (far enough that some of its bins empty out).

Driftline, on the model server's own code path: the profile is built like the trainer builds it
(`profile.build_profile`, 10 quantile bins, prediction = feature 0 as a regressor's output), parsed into a Reference
like the server parses it, and the current rows are fed through `DriftMonitor.observe` in batches of 1000 rows into a
count window as large as the dataset; `snapshot()` (what a scrape computes) is timed on its own.

Peers, installed from PyPI into bench/.venv-peers at the versions of bench/requirements-peers.txt and run in a
subprocess (bench/drift_peer.py): Evidently's `psi` and `ks` stat tests per column (what its DataDriftPreset runs),
a whole Evidently Report with DataDriftPreset(method=psi / ks), and scipy's ks_2samp. Evidently's PSI is also run on
Driftline's own bins (the bin indices given as values: with <= 20 distinct values Evidently bins one value per bin),
where the two PSIs must agree to 1e-6.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench import peers
from bench.harness import Result, Row, load_average, ratio_text, say
from driftline_runtime.drift.monitor import DriftMonitor
from driftline_runtime.drift.reference import NumericColumn, Reference, parse_reference
from driftline_runtime.drift.window import CountWindow
from driftline_runtime.profile import build_profile

NAME = "drift"
DESCRIPTION = "drift computation (PSI, KS) vs Evidently 0.7 and scipy ks_2samp on 10k/100k/1M rows x 20 features"
DEFAULT_TRIALS = 3
NEEDS_CLUSTER = False

SIZES = (10_000, 100_000, 1_000_000)
FEATURES = 20
BINS = 10  # the trainer's default --profile-bins
BATCH = 1000  # rows per observe() call, i.e. per predicted request batch
PSI_TOLERANCE = 1e-6
TARGET_SPEEDUP = 100.0
# Above this many seconds for one whole Evidently Report at 100k rows, the 1M Report is skipped (it scales linearly).
REPORT_CAP_SECONDS = 60.0
PEER_SCRIPT = Path(__file__).with_name("drift_peer.py")

PEER_TASKS = {
    "evidently_psi": "Evidently psi stat test x20 (own bins)",
    "evidently_psi_same_bins": "Evidently psi stat test x20, Driftline's bins",
    "evidently_report_psi": "Evidently Report(DataDriftPreset psi)",
    "evidently_ks": "Evidently ks stat test x20 (p-value)",
    "evidently_report_ks": "Evidently Report(DataDriftPreset ks)",
    "scipy_ks_2samp": "scipy ks_2samp x20",
}


def dataset(rows: int, seed: int = 0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((rows, FEATURES))
    j = np.arange(FEATURES)
    loc = 0.05 * j
    loc[-1] += 3.0
    cur = rng.standard_normal((rows, FEATURES)) * (1.0 + 0.02 * j) + loc
    return ref, cur


@dataclass
class Driftline:
    profile_seconds: float
    observe_seconds: list[float]
    snapshot_seconds: list[float]
    psi: list[float]
    ks: list[float]
    ref_codes: NDArray[np.int64]
    cur_codes: NDArray[np.int64]
    empty_bin_features: list[int] = field(default_factory=list)

    @property
    def ingest(self) -> float:
        return statistics.median(self.observe_seconds)

    @property
    def scrape(self) -> float:
        return statistics.median(self.snapshot_seconds)


def run_driftline(ref: NDArray[np.float64], cur: NDArray[np.float64], trials: int) -> Driftline:
    names = [f"f{j}" for j in range(FEATURES)]
    t0 = time.perf_counter()
    profile = build_profile(pd.DataFrame(ref, columns=names), ref[:, 0], BINS, task="regression")
    profile_seconds = time.perf_counter() - t0
    # Through JSON, as the server reads profile.json.
    reference: Reference = parse_reference(json.loads(json.dumps(profile)), names, ["float64"] * FEATURES)
    rows = cur.shape[0]
    columns = [np.ascontiguousarray(cur[:, j]) for j in range(FEATURES)]
    prediction = columns[0]
    observe_seconds, snapshot_seconds = [], []
    snapshot = None
    for _ in range(trials):
        window = CountWindow(rows, len(reference.columns), reference.total_bins)
        monitor = DriftMonitor(reference, window, min_samples=100)
        t0 = time.perf_counter()
        for start in range(0, rows, BATCH):
            end = start + BATCH
            monitor.observe([c[start:end] for c in columns], prediction[start:end])
        observe_seconds.append(time.perf_counter() - t0)
        for _ in range(5):
            t0 = time.perf_counter()
            snapshot = monitor.snapshot()
            snapshot_seconds.append(time.perf_counter() - t0)
    assert snapshot is not None and snapshot.samples == rows
    features = [c for c in reference.features if isinstance(c, NumericColumn)]
    ref_codes = np.stack([c.codes(ref[:, j]) for j, c in enumerate(features)], axis=1)
    cur_codes = np.stack([c.codes(cur[:, j]) for j, c in enumerate(features)], axis=1)
    empty = [
        j
        for j, c in enumerate(features)
        if (np.bincount(cur_codes[:, j], minlength=c.value_bins)[: c.value_bins] == 0).any()
        or (c.reference[: c.value_bins] == 0).any()
    ]
    return Driftline(
        profile_seconds=profile_seconds,
        observe_seconds=observe_seconds,
        snapshot_seconds=snapshot_seconds,
        psi=[snapshot.features[n]["psi"] for n in names],
        ks=[snapshot.features[n]["ks"] for n in names],
        ref_codes=ref_codes,
        cur_codes=cur_codes,
        empty_bin_features=empty,
    )


def run_peers(
    ref: NDArray[np.float64], ours: Driftline, cur: NDArray[np.float64], tasks: dict[str, int]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="driftline-bench-drift-") as tmp:
        d = Path(tmp)
        np.save(d / "ref.npy", ref)
        np.save(d / "cur.npy", cur)
        np.save(d / "ref_codes.npy", ours.ref_codes)
        np.save(d / "cur_codes.npy", ours.cur_codes)
        (d / "tasks.json").write_text(json.dumps({"tasks": tasks}))
        return peers.run_script(PEER_SCRIPT, str(d))


def _max_abs(a: list[float], b: list[float], skip: list[int] | None = None) -> float:
    keep = [j for j in range(len(a)) if not skip or j not in skip]
    if not keep:
        return float("nan")
    return float(max(abs(a[j] - b[j]) for j in keep))


@dataclass
class DriftResult(Result):
    lines: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        header = ("rows", "peer", "peer s", "Driftline s", "ratio", "vs scrape", "max |diff|")
        cells = [header]
        for line in self.lines:
            cells.append(
                (
                    _size(line["rows"]),
                    line["peer"],
                    _secs(line["peer_seconds"]),
                    _secs(line["driftline_seconds"]),
                    ratio_text(line.get("ratio")),
                    ratio_text(line.get("ratio_vs_scrape")),
                    _diff(line.get("max_abs_diff")),
                )
            )
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
        out = []
        for n, c in enumerate(cells):
            out.append(
                "  ".join(
                    [
                        c[0].rjust(widths[0]),
                        c[1].ljust(widths[1]),
                        *(x.rjust(w) for x, w in zip(c[2:], widths[2:], strict=True)),
                    ]
                ).rstrip()
            )
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        title = f"== {self.benchmark} ({self.started}, {self.seconds:.0f}s; {self.extra.get('load', '')}) =="
        notes = [f"  * {n}" for n in self.notes]
        return "\n".join([title, *out, *notes])

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "comparisons": self.lines}


def _size(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}k"


def _secs(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.3g} ms" if x < 1 else f"{x:.3g} s"


def _diff(x: float | None) -> str:
    return "" if x is None else f"{x:.2g}"


def run(env: object, trials: int | None) -> Result:
    trials = trials or DEFAULT_TRIALS
    result = DriftResult(NAME, rows=[])
    result.extra["load"] = load_average()
    result.extra["peers"] = peers.versions()
    result.extra["setup"] = {"features": FEATURES, "bins": BINS, "batch_rows": BATCH, "sizes": list(SIZES)}
    peers.ensure_venv()
    report_100k = 0.0
    for rows in SIZES:
        say(f"{_size(rows)} rows: data and Driftline")
        ref, cur = dataset(rows)
        ours = run_driftline(ref, cur, trials)
        tasks = list(PEER_TASKS)
        peer_trials = trials if rows < 1_000_000 else 1
        if rows >= 1_000_000 and report_100k > REPORT_CAP_SECONDS:
            tasks = [t for t in tasks if not t.startswith("evidently_report")]
            result.notes.append(f"Evidently Report skipped at 1M rows: {report_100k:.0f} s at 100k, above the cap")
        # A whole Report takes seconds even at 10k rows: one trial of it; the stat tests get `trials` below 1M.
        plan = {t: 1 if t.startswith("evidently_report") else peer_trials for t in tasks}
        say(f"{_size(rows)} rows: peers {plan}")
        got = run_peers(ref, ours, cur, plan)
        result.extra["peer_versions_seen"] = got["versions"]
        if rows == 100_000:
            report_100k = max(statistics.median(got[t]["seconds"]) for t in tasks if t.startswith("evidently_report"))
        total = ours.ingest + ours.scrape
        size = _size(rows)
        result.rows += [
            Row(f"{size} Driftline profile (trainer, once)", [ours.profile_seconds], ratio=False),
            Row(f"{size} Driftline observe, all rows", ours.observe_seconds, ratio=False),
            Row(f"{size} Driftline snapshot", ours.snapshot_seconds, ratio=False),
        ]
        result.lines.append(
            {
                "rows": rows,
                "peer": f"Driftline observe ({BATCH}-row batches; {ours.ingest / rows * 1e9:.0f} ns/row)",
                "peer_seconds": None,
                "driftline_seconds": ours.ingest,
            }
        )
        result.lines.append(
            {
                "rows": rows,
                "peer": "Driftline snapshot (scrape)",
                "peer_seconds": None,
                "driftline_seconds": ours.scrape,
            }
        )
        for task in tasks:
            seconds = statistics.median(got[task]["seconds"])
            values = got[task]["values"]
            result.rows.append(Row(f"{size} {PEER_TASKS[task]}", got[task]["seconds"], ratio=False))
            line: dict[str, Any] = {
                "rows": rows,
                "task": task,
                "peer": PEER_TASKS[task],
                "peer_seconds": seconds,
                "driftline_seconds": total,
                "ratio": seconds / total,
                "ratio_vs_scrape": seconds / ours.scrape,
                "peer_values": values,
            }
            if task in ("evidently_psi", "evidently_report_psi"):
                line["max_abs_diff"] = _max_abs(ours.psi, values)
                line["compares"] = "psi, different bins (Sturges over ref+cur vs our 10 reference quantile bins)"
                line["driftline_values"] = ours.psi
            elif task == "evidently_psi_same_bins":
                line["max_abs_diff"] = _max_abs(ours.psi, values)
                line["max_abs_diff_no_empty_bin"] = _max_abs(ours.psi, values, ours.empty_bin_features)
                line["empty_bin_features"] = ours.empty_bin_features
                line["compares"] = "psi on the same bins"
                line["driftline_values"] = ours.psi
            elif task == "scipy_ks_2samp":
                line["max_abs_diff"] = _max_abs(ours.ks, values)
                line["binned_d_is_lower_bound"] = all(d <= v + 1e-12 for d, v in zip(ours.ks, values, strict=True))
                line["compares"] = "KS statistic D: binned (ours) vs raw values (scipy)"
                line["driftline_values"] = ours.ks
            result.lines.append(line)
    _conclude(result)
    return result


def _conclude(result: DriftResult) -> None:
    same = [x for x in result.lines if x.get("task") == "evidently_psi_same_bins"]
    worst = max(x["max_abs_diff"] for x in same)
    clean = max(x["max_abs_diff_no_empty_bin"] for x in same)
    empties = {_size(x["rows"]): x["empty_bin_features"] for x in same if x["empty_bin_features"]}
    result.notes.append(
        f"PSI on the same bins: max |diff| {clean:.2g} over features with no empty bin (target {PSI_TOLERANCE:g}: "
        f"{'ok' if clean <= PSI_TOLERANCE else 'MISSED'}); {worst:.2g} over all features"
        + (f"; features with an empty bin: {empties}" if empties else "")
    )
    ks = [x for x in result.lines if x.get("task") == "scipy_ks_2samp"]
    result.notes.append(
        "KS: binned D <= ks_2samp's D on every feature and size: "
        + ("yes" if all(x["binned_d_is_lower_bound"] for x in ks) else "NO")
    )
    big = [x for x in result.lines if x.get("task") == "evidently_psi" and x["rows"] == max(SIZES)]
    if big:
        x = big[0]
        result.notes.append(
            f"speed-up over Evidently's psi at {_size(x['rows'])}: {x['ratio']:.1f}x end to end (observe every row + "
            f"snapshot), {x['ratio_vs_scrape']:.0f}x at scrape time (target {TARGET_SPEEDUP:.0f}x)"
        )
    result.notes.append(
        "ratio = peer s / Driftline (observe all rows + one snapshot); vs scrape = peer s / snapshot alone"
    )


if __name__ == "__main__":  # python -m bench.drift: no cluster needed
    import datetime as dt

    started = time.monotonic()
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    res = run(None, None)
    res.started, res.seconds = stamp, time.monotonic() - started
    print(res.table(), flush=True)
    print(f"  -> {res.write()}", flush=True)
