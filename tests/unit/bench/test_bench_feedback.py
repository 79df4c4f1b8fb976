"""The feedback benchmark's pure parts: reading the server's live metrics from its exposition, the comparison with
scikit-learn (a metric the server leaves out or exports as NaN is a failure, not a match), and the on / off summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bench import feedback

pytestmark = pytest.mark.unit

EXPOSITION = """\
# HELP driftline_live_performance The model's quality on the labelled window.
# TYPE driftline_live_performance gauge
driftline_live_performance{metric="accuracy",model="m",version="1"} 0.87
driftline_live_performance{metric="f1",model="m",version="1"} 0.8980392156862745
driftline_live_performance{metric="roc_auc",model="m",version="1"} NaN
# HELP driftline_live_performance_samples Labelled rows in the live performance window.
# TYPE driftline_live_performance_samples gauge
driftline_live_performance_samples{model="m",version="1"} 2000.0
# HELP driftline_feedback_rows_total Labels received, by row and outcome.
# TYPE driftline_feedback_rows_total counter
driftline_feedback_rows_total{model="m",result="accepted",version="1"} 5.0
driftline_feedback_rows_total{model="m",result="duplicate",version="1"} 1.0
"""


def test_live_metrics_and_gauges_are_read_from_the_exposition() -> None:
    metrics = feedback.live_metrics(EXPOSITION)
    assert metrics["accuracy"] == 0.87
    assert metrics["f1"] == 0.8980392156862745
    assert math.isnan(metrics["roc_auc"])
    assert feedback.gauge(EXPOSITION, "driftline_live_performance_samples") == 2000
    assert math.isnan(feedback.gauge(EXPOSITION, "driftline_no_such_metric"))
    outcomes = {labels["result"]: v for labels, v in feedback.samples(EXPOSITION, "driftline_feedback_rows_total")}
    assert outcomes == {"accepted": 5, "duplicate": 1}


def test_a_metric_missing_or_nan_on_the_server_is_an_infinite_difference() -> None:
    ours = {"accuracy": 0.8700000000001, "f1": 0.8980392156862745, "roc_auc": 0.9, "log_loss": 0.3}
    diffs = feedback.differences(feedback.live_metrics(EXPOSITION), ours)
    assert diffs["accuracy"] == pytest.approx(1e-13, abs=1e-15)
    assert diffs["f1"] == 0
    assert diffs["roc_auc"] == math.inf  # NaN on the server
    assert diffs["log_loss"] == math.inf  # not exported
    assert not max(diffs.values()) <= feedback.TOLERANCE


def test_sklearn_metrics_name_the_servers_metrics() -> None:
    truth = np.array([0, 1, 1, 0, 1])
    predicted = np.array([0, 1, 0, 0, 1])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
    got = feedback.sklearn_metrics(truth, predicted, proba, np.array([0, 1]))
    assert set(got) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert got["accuracy"] == pytest.approx(0.8)
    assert got["f1"] == pytest.approx(0.8)  # precision 1, recall 2/3
    assert got["roc_auc"] == pytest.approx(1.0)


def run(rps: float, p99: float, cpu: float, requests: int = 1000) -> dict[str, float]:
    return {"rps": rps, "p99": p99, "server_cpu_seconds": cpu * requests, "requests": requests}


def test_summary_takes_medians_of_each_side_and_of_the_per_trial_ratios() -> None:
    pairs = [
        (run(900, 0.100, 600e-6), run(1000, 0.100, 500e-6)),
        (run(1400, 0.050, 550e-6), run(1000, 0.060, 550e-6)),
        (run(1000, 0.110, 660e-6), run(1100, 0.100, 600e-6)),
    ]
    s = feedback.summarize(pairs)
    assert s["rps_on"] == 1000 and s["rps_off"] == 1000
    # Per-trial ratios 0.9, 1.4, 0.909: their median, not the ratio of the medians (1.0).
    assert s["rps_ratio"] == pytest.approx(1000 / 1100)
    assert s["p99_ratio"] == pytest.approx(1.0)  # 1.0, 0.833, 1.1
    assert s["cpu_ratio"] == pytest.approx(1.1)  # 1.2, 1.0, 1.1
    assert s["cpu_on"] == pytest.approx(600e-6)


def test_costs_and_verdict() -> None:
    summary = {"rps_ratio": 0.97, "p99_ratio": 1.06, "cpu_ratio": 1.02}
    cost = feedback.costs(summary)
    assert cost["rps"] == pytest.approx(0.03)
    assert cost["p99"] == pytest.approx(0.06)
    assert cost["cpu_per_request"] == pytest.approx(0.02)
    assert feedback.verdict(summary) == {"rps": True, "p99": False, "cpu_per_request": True}
    assert feedback.ratio(1.0412) == "1.041x"
    assert feedback.ratio(math.nan) == "-"
