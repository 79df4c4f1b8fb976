"""Shadow traffic between two real model servers: a share of requests mirrored to the challenger with their ids, the
labels after them, both scored on the same ground truth; the challenger's answers compared with the primary's; and a
dead or slow challenger costs the primary nothing but counted drops."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from sklearn.tree import DecisionTreeClassifier

from tests.unit.runtime.server_kit import metric_lines, reference_data, running, server_state, write_model_dir

pytestmark = pytest.mark.unit


def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    return http


def v2(rid: str, rows: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {"id": rid, "inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64",
                                   "data": rows.ravel().tolist()}]}  # fmt: skip


def scrape(base: str, name: str) -> dict[str, float]:
    return metric_lines(session().get(f"{base}/metrics", timeout=10).text, name)


def wait_for(what: str, check: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_mirrored_requests_and_their_labels_reach_the_shadow(tmp_path: Path) -> None:
    shadow_sha = write_model_dir(tmp_path / "shadow", estimator=DecisionTreeClassifier(max_depth=1))
    primary_sha = write_model_dir(tmp_path / "primary")
    x = reference_data(40, seed=3)
    http = session()
    with running(server_state(tmp_path / "shadow", shadow_sha, "iris", "4", "--performance-min-samples", "10")) as sh:
        args = ("--mirror-url", sh, "--mirror-share", "1", "--performance-min-samples", "10")
        with running(server_state(tmp_path / "primary", primary_sha, "iris", "3", *args)) as base:
            answered: list[Any] = []
            for i in range(4):
                rows = x[i * 10 : (i + 1) * 10]
                if i % 2:
                    r = http.post(f"{base}/v1/models/iris:predict", json={"instances": rows.tolist()},
                                  headers={"X-Request-Id": f"r{i}"}, timeout=10)  # fmt: skip
                    answered.append(r.json()["predictions"])
                else:
                    r = http.post(f"{base}/v2/models/iris/infer", json=v2(f"r{i}", rows), timeout=10)
                    answered.append(r.json()["outputs"][0]["data"])
                assert r.status_code == 200, r.text
            # The shadow received every request under the primary's id before the labels come.
            wait_for("4 mirrored requests", lambda: scrape(sh, "driftline_predictions_total"))
            wait_for("40 rows", lambda: list(scrape(sh, "driftline_predictions_total").values()) == [40.0])
            body = {"feedback": [{"id": f"r{i}", "truth": [int(v) for v in answered[i]]} for i in range(4)]}
            assert http.post(f"{base}/v2/models/iris/feedback", json=body, timeout=10).json()["accepted"] == 4
            shadow_rows = wait_for(
                "the labels at the shadow",
                lambda: (lambda m: m if m.get('{model="iris",result="accepted",version="4"}') == 40 else None)(
                    scrape(sh, "driftline_feedback_rows_total")
                ),
            )
            assert shadow_rows
            primary = scrape(base, "driftline_shadow_requests_total")
            assert primary['{kind="infer",model="iris",result="ok",version="3"}'] == 4
            assert primary['{kind="feedback",model="iris",result="ok",version="3"}'] == 4
            agreement = scrape(base, "driftline_shadow_rows_total")
            agree = agreement['{model="iris",result="agree",version="3"}']
            disagree = agreement['{model="iris",result="disagree",version="3"}']
            assert agree + disagree == 40 and disagree > 0  # a depth-1 tree does not answer as the primary does
            # Each scores itself on the same labels: the primary is right by construction, the shadow where it agrees.
            live = scrape(sh, "driftline_live_performance")
            assert live['{metric="accuracy",model="iris",version="4"}'] == pytest.approx(agree / 40)
            assert scrape(base, "driftline_live_performance")['{metric="accuracy",model="iris",version="3"}'] == 1.0


def test_a_dead_shadow_costs_the_primary_nothing_but_counted_errors_and_drops(tmp_path: Path) -> None:
    sha = write_model_dir(tmp_path)
    args = ("--mirror-url", "http://127.0.0.1:9", "--mirror-share", "1", "--mirror-queue", "2")
    http = session()
    with running(server_state(tmp_path, sha, "iris", "3", *args)) as base:
        x = reference_data(50, seed=1)
        for i in range(50):
            r = http.post(f"{base}/v2/models/iris/infer", json=v2(f"d{i}", x[i : i + 1]), timeout=10)
            assert r.status_code == 200, r.text
        counts = wait_for(
            "every mirror counted",
            lambda: (lambda m: m if sum(m.values()) == 50 else None)(scrape(base, "driftline_shadow_requests_total")),
        )
    results = {k.split('result="')[1].split('"')[0]: v for k, v in counts.items()}
    assert results.get("ok", 0) == 0 and results["error"] >= 1 and results["error"] + results.get("dropped", 0) == 50
