"""The operator's own metrics count reconciles by result and time them."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from driftline.telemetry import reconciler

pytestmark = pytest.mark.unit


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_reconciles_are_counted_by_result_and_timed() -> None:
    @reconciler("Probe")
    def ok() -> int:
        return 7

    @reconciler("Probe")
    def boom() -> None:
        raise RuntimeError("api down")

    before_ok, before_err = (
        sample("driftline_operator_reconciles_total", kind="Probe", result="ok"),
        sample("driftline_operator_reconciles_total", kind="Probe", result="error"),
    )
    assert ok() == 7
    with pytest.raises(RuntimeError):
        boom()
    assert sample("driftline_operator_reconciles_total", kind="Probe", result="ok") == before_ok + 1
    assert sample("driftline_operator_reconciles_total", kind="Probe", result="error") == before_err + 1
    assert sample("driftline_operator_reconcile_duration_seconds_count", kind="Probe") >= 2


def test_a_deleted_inferenceservice_leaves_no_series_behind() -> None:
    from driftline.telemetry import ANALYSIS, DRIFT_SCORE, forget, set_gauge

    set_gauge(DRIFT_SCORE, "ns", "gone", ("psi",), 0.4)
    set_gauge(ANALYSIS, "ns", "gone", ("error-rate", "2", "value"), 0.1)
    set_gauge(DRIFT_SCORE, "ns", "kept", ("psi",), 0.1)
    labels = {"namespace": "ns", "inferenceservice": "gone", "method": "psi"}
    assert REGISTRY.get_sample_value("driftline_operator_drift_score", labels) == 0.4
    forget("ns", "gone")
    assert REGISTRY.get_sample_value("driftline_operator_drift_score", labels) is None
    analysis = {"namespace": "ns", "inferenceservice": "gone", "metric": "error-rate", "version": "2", "field": "value"}
    assert REGISTRY.get_sample_value("driftline_operator_analysis_measurement", analysis) is None
    kept = {"namespace": "ns", "inferenceservice": "kept", "method": "psi"}
    assert REGISTRY.get_sample_value("driftline_operator_drift_score", kept) == 0.1
    forget("ns", "never-seen")  # nothing to remove is fine
