"""The feedback benchmark's pure parts: reading the server's live metrics from its exposition, the comparison with
scikit-learn (a metric the server leaves out or exports as NaN is a failure, not a match), the on / off summary, and
the mirroring counters."""

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


def test_verdict_judges_only_the_costs_named() -> None:
    summary = {"rps_ratio": 0.97, "p99_ratio": 1.04, "cpu_ratio": 1.2}
    assert feedback.verdict(summary, judged=feedback.MIRROR_JUDGED) == {"rps": True, "p99": True}


MIRRORING = """\
# TYPE driftline_predictions counter
driftline_predictions_total{model="m",version="1"} 1000.0
# TYPE driftline_shadow_requests counter
driftline_shadow_requests_total{kind="infer",model="m",result="ok",version="1"} 190.0
driftline_shadow_requests_total{kind="infer",model="m",result="dropped",version="1"} 8.0
driftline_shadow_requests_total{kind="feedback",model="m",result="ok",version="1"} 50.0
# TYPE driftline_shadow_rows counter
driftline_shadow_rows_total{model="m",result="agree",version="1"} 189.0
driftline_shadow_rows_total{model="m",result="disagree",version="1"} 1.0
# TYPE driftline_shadow_request_duration_seconds histogram
driftline_shadow_request_duration_seconds_bucket{le="+Inf",model="m",version="1"} 190.0
driftline_shadow_request_duration_seconds_count{model="m",version="1"} 190.0
driftline_shadow_request_duration_seconds_sum{model="m",version="1"} 3.8
"""


def test_mirror_counts_read_mirrored_requests_not_labels_and_zero_for_a_result_never_counted() -> None:
    counts = feedback.mirror_counts(MIRRORING)
    want = {"ok": 190, "dropped": 8, "error": 0, "agree": 189, "disagree": 1, "predictions": 1000, "seconds": 3.8}
    assert counts == pytest.approx(want)
    # A server that never mirrored (no shadow series yet) counts zeros, not an error.
    assert feedback.mirror_counts("") == dict.fromkeys(feedback.MIRROR_COUNTS, 0.0)
    assert feedback.minus(counts, {"ok": 90, "predictions": 500})["ok"] == 100
    assert feedback.minus(counts, {"ok": 90, "predictions": 500})["dropped"] == 8


def test_mirror_summary_sums_the_runs_and_takes_the_median_of_the_shadows_cpu_per_request() -> None:
    def span(ok: float, dropped: float, predictions: float, shadow: float, cpu: float) -> dict[str, object]:
        primary = {**dict.fromkeys(feedback.MIRROR_COUNTS, 0.0), "ok": ok, "dropped": dropped}
        # 30 ms an answer while the load ran, then 100 more sent after it (the queue draining) at 2 ms each.
        primary["predictions"], primary["seconds"] = predictions, (ok - 100) * 0.030 + 100 * 0.002
        return {
            "primary": primary,
            "under_load": {**primary, "ok": ok - 100, "seconds": (ok - 100) * 0.030},
            "load_seconds": 5.0,
            "shadow": {**dict.fromkeys(feedback.MIRROR_COUNTS, 0.0), "predictions": shadow},
            "shadow_cpu_seconds": cpu,
        }

    got = feedback.mirror_summary(
        [span(190, 10, 1000, 190, 0.095), span(400, 0, 2000, 400, 0.4), span(200, 0, 1000, 0, 0.01)]
    )
    assert got["ok"] == 790 and got["dropped"] == 10 and got["offered"] == 800
    assert got["offered_share"] == pytest.approx(0.2)
    assert got["dropped_share"] == pytest.approx(10 / 800)
    # 500 us and 1000 us; the third run's shadow answered nothing: left out, not a NaN in the median.
    assert got["shadow_cpu_per_request"] == pytest.approx(750e-6)
    assert got["answer_seconds_under_load"] == pytest.approx(0.030)
    assert got["answer_seconds_after"] == pytest.approx(0.002)
    assert got["sent_per_second_under_load"] == pytest.approx((790 - 300) / 15)
    assert got["queued_at_load_end"] == 100
    assert math.isnan(feedback.mirror_summary([])["offered_share"])
