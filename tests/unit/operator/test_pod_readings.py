"""The pods provider's drift arithmetic: a server's /metrics page -> one pod's drift -> the service's reading."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from driftline.decide.pod_readings import PodDrift, combine, parse

pytestmark = pytest.mark.unit


def page(values: dict[str, dict[str, float]], samples: float | None) -> str:
    """A /metrics page with the model server's drift gauges (same names and labels)."""
    reg = CollectorRegistry()
    feature = Gauge("driftline_feature_drift", "", ["model", "version", "feature", "method"], registry=reg)
    window = Gauge("driftline_drift_window_samples", "", ["model", "version"], registry=reg)
    score = Gauge("driftline_drift_score", "", ["model", "version", "method"], registry=reg)
    for name, by_method in values.items():
        for method, v in by_method.items():
            feature.labels("m", "1", name, method).set(v)
            score.labels("m", "1", method).set(99)  # never read as a feature
    if samples is not None:
        window.labels("m", "1").set(samples)
    return generate_latest(reg).decode()


def test_parse_reads_one_method_and_the_window_fill() -> None:
    got = parse(page({"a": {"psi": 0.3, "ks": 0.2}, "b": {"psi": math.nan}}, 250), "psi")
    assert got.samples == 250 and got.features["a"] == 0.3 and math.isnan(got.features["b"])
    assert parse(page({"a": {"psi": 0.3, "ks": 0.2}}, 250), "ks").features == {"a": 0.2}


@pytest.mark.parametrize("text", ["not prometheus {{{", page({"a": {"psi": 0.3}}, None), page({}, math.nan)])
def test_parse_refuses_garbage_and_a_page_without_drift(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text, "psi")


def test_combine_weights_pods_by_window_fill() -> None:
    got = combine([PodDrift({"a": 0.1, "b": math.nan}, 100), PodDrift({"a": 0.4, "b": 0.2}, 300)])
    assert got.samples == 400
    assert got.features["a"] == pytest.approx((0.1 * 100 + 0.4 * 300) / 400)
    assert got.features["b"] == pytest.approx(0.2)  # a pod without a value does not dilute the others


def test_combine_keeps_unknown_and_garbled_values_visible() -> None:
    got = combine([PodDrift({"a": math.nan}, 10), PodDrift({"a": math.inf, "b": 0.1}, 10)])
    assert math.isnan(combine([PodDrift({"a": math.nan}, 10)]).features["a"])
    assert math.isinf(got.features["a"])  # judged garbled, never averaged away
