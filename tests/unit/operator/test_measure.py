"""The pods provider's arithmetic: /metrics text -> counters -> increases -> error rate, latency quantiles, rate."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from driftline.decide.measure import Counters, increase, parse, quantile, reading, total, value

pytestmark = pytest.mark.unit


def page(codes: dict[str, int], latencies: list[float]) -> str:
    """A /metrics page as the model server writes it (same names, labels and buckets)."""
    reg = CollectorRegistry()
    requests = Counter("driftline_inference_requests", "", ["model", "version", "protocol", "code"], registry=reg)
    duration = Histogram(
        "driftline_inference_request_duration_seconds",
        "",
        ["model", "version", "protocol"],
        buckets=(0.001, 0.01, 0.1, 1.0),
        registry=reg,
    )
    for code, n in codes.items():
        for protocol in ("v1", "v2"):  # summed over protocols
            requests.labels("m", "2", protocol, code).inc(n)
    for s in latencies:
        duration.labels("m", "2", "v2").observe(s)
    return generate_latest(reg).decode() + "# HELP other_total x\n# TYPE other_total counter\nother_total 7\n"


def test_parse_sums_requests_errors_and_buckets_over_labels() -> None:
    c = parse(page({"200": 5, "400": 2, "503": 1}, [0.0005, 0.005, 0.05]))
    assert (c.requests, c.errors) == (16, 6)
    assert c.buckets == {0.001: 1, 0.01: 2, 0.1: 3, 1.0: 3, math.inf: 3}


def test_parse_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        parse("this is { not metrics")


def test_increase_handles_new_pods_and_counter_resets() -> None:
    before = Counters(10, 2, {1.0: 10, math.inf: 10})
    after = Counters(15, 3, {1.0: 14, math.inf: 15})
    assert increase(before, after) == Counters(5, 1, {1.0: 4, math.inf: 5})
    assert increase(None, after) == after
    restarted = Counters(3, 0, {1.0: 3, math.inf: 3})
    assert increase(before, restarted) == restarted


def test_total_adds_pods() -> None:
    got = total([Counters(1, 1, {1.0: 1}), Counters(2, 0, {1.0: 2, 2.0: 2})])
    assert got == Counters(3, 1, {1.0: 3, 2.0: 2})
    assert total([]) == Counters()


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, math.inf: 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.7, buckets) == pytest.approx(0.15)
    assert quantile(0.95, buckets) == pytest.approx(0.3)
    assert quantile(0.99, {0.1: 50.0, math.inf: 100.0}) == pytest.approx(0.1)  # in +Inf: the largest finite bound
    assert math.isnan(quantile(0.95, {}))
    assert math.isnan(quantile(0.95, {0.1: 0.0, math.inf: 0.0}))


def test_values_and_readings() -> None:
    canary = Counters(40, 10, {0.01: 40, math.inf: 40})
    stable = Counters(60, 0, {0.01: 60, math.inf: 60})
    assert value("error-rate", canary, 10) == 0.25
    assert value("request-rate", canary, 10) == 4
    assert value("latency-p95", canary, 10) == pytest.approx(0.0095)
    assert math.isnan(value("error-rate", Counters(), 10))  # no requests: undefined, never 0
    r = reading("error-rate", canary, stable, 10)
    assert (r.value, r.samples, r.stable_value) == (0.25, 40, 0.0)
    assert reading("error-rate", canary, None, 10).stable_value is None
    with pytest.raises(ValueError):
        value("accuracy", canary, 10)
