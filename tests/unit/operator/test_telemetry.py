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
