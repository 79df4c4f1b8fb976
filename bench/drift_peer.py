"""The peers' side of `bench/drift.py`, run by the peer virtualenv's python (bench/.venv-peers), never imported by us.

`python drift_peer.py DIR`: DIR holds ref.npy and cur.npy (rows x features, float64), ref_codes.npy and cur_codes.npy
(Driftline's bin index of every value, same shape) and tasks.json ({"tasks": {name: trials}}). Prints one JSON
object: per task, the per-feature values of the last trial and the wall time of every trial (data already loaded,
imports done; only the computation is timed).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def main(directory: Path) -> dict[str, Any]:
    import evidently
    import scipy
    from evidently import Report
    from evidently.legacy.calculations.stattests import ks_stat_test, psi_stat_test
    from evidently.legacy.core import ColumnType
    from evidently.presets import DataDriftPreset
    from scipy.stats import ks_2samp

    config = json.loads((directory / "tasks.json").read_text())
    ref, cur = np.load(directory / "ref.npy"), np.load(directory / "cur.npy")
    names = [f"f{j}" for j in range(ref.shape[1])]
    ref_df, cur_df = pd.DataFrame(ref, columns=names), pd.DataFrame(cur, columns=names)
    ref_codes = pd.DataFrame(np.load(directory / "ref_codes.npy"), columns=names)
    cur_codes = pd.DataFrame(np.load(directory / "cur_codes.npy"), columns=names)

    def per_column(fn: Callable[[str], float]) -> Callable[[], list[float]]:
        return lambda: [float(fn(c)) for c in names]

    def report(method: str) -> Callable[[], list[float]]:
        def run() -> list[float]:
            snapshot = Report([DataDriftPreset(method=method)]).run(cur_df, ref_df)
            values = {}
            for metric in snapshot.dict()["metrics"]:
                column = metric["config"].get("column")
                if metric["config"]["type"].endswith("ValueDrift") and column in names:
                    values[column] = float(metric["value"])
            return [values[c] for c in names]

        return run

    num = ColumnType.Numerical
    tasks: dict[str, Callable[[], list[float]]] = {
        # The stat tests a DataDriftPreset runs per column, called as it calls them (threshold None = the default).
        "evidently_psi": per_column(lambda c: psi_stat_test(ref_df[c], cur_df[c], num, None).drift_score),
        "evidently_ks": per_column(lambda c: ks_stat_test(ref_df[c], cur_df[c], num, None).drift_score),
        # Driftline's bins given to Evidently: the bin indices as values. With <= 20 distinct values Evidently's
        # get_binned_data makes one bin per value, so its PSI runs on exactly our bins.
        "evidently_psi_same_bins": per_column(
            lambda c: psi_stat_test(ref_codes[c], cur_codes[c], num, None).drift_score
        ),
        "scipy_ks_2samp": per_column(lambda c: ks_2samp(ref_df[c].to_numpy(), cur_df[c].to_numpy()).statistic),
        # The whole thing, as a user runs it: a Report with the data drift preset.
        "evidently_report_psi": report("psi"),
        "evidently_report_ks": report("ks"),
    }
    out: dict[str, Any] = {"versions": {"evidently": evidently.__version__, "scipy": scipy.__version__}}
    out["versions"] |= {"numpy": np.__version__, "pandas": pd.__version__}
    for name, trials in config["tasks"].items():
        seconds, values = [], []
        for _ in range(trials):
            t0 = time.perf_counter()
            values = tasks[name]()
            seconds.append(time.perf_counter() - t0)
        out[name] = {"seconds": seconds, "values": values}
    return out


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
