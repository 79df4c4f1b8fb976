"""The pods provider's arithmetic: /metrics text -> counters -> increases -> error rate, latency quantiles, rate."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from driftline.api.rollout import MeasurementPhase, Threshold
from driftline.decide.analysis import judge
from driftline.decide.measure import (
    Counters,
    Snapshot,
    increase,
    interval_reading,
    parse,
    quantile,
    reading,
    total,
    unknown,
    value,
)

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


def served(requests: float, errors: float = 0) -> Counters:
    return Counters(requests, errors, {0.01: requests, math.inf: requests})


def test_an_interval_is_known_only_over_the_same_ready_pods_at_both_ends() -> None:
    a, b = Snapshot({"a": served(10)}), Snapshot({"a": served(30)})
    assert unknown("canary", a, b) == ""
    assert unknown("canary", a, Snapshot()) == "no ready canary pod"
    assert (
        unknown("canary", a, Snapshot({"b": served(3)}))
        == "the canary pods changed during the interval (1 gone, 1 new)"
    )
    assert "(0 gone, 1 new)" in unknown("canary", Snapshot(), Snapshot({"b": served(3)}))  # after a round with none
    assert "(1 gone, 0 new)" in unknown("canary", Snapshot({"a": served(1), "b": served(1)}), b)
    unread = Snapshot({"a": served(30)}, ("127.0.0.9:8080/metrics: timed out",))
    assert unknown("stable", a, unread) == "1 ready stable pod(s) could not be read: 127.0.0.9:8080/metrics: timed out"


LATENCY_RELATIVE = Threshold.model_validate({"max": 1.0, "relativeToStable": True})
ERROR_RATE = Threshold.model_validate({"max": 0.05})


def test_a_canary_pod_replaced_mid_interval_is_an_error_never_a_verdict() -> None:
    """The canary's only pod deleted after the interval's start, its replacement ready just before its end with three
    requests served: read as those three alone, fewer than minSamples, it was Inconclusive and aborted the canary."""
    stable = (Snapshot({"s": served(100)}), Snapshot({"s": served(140)}))
    lost = interval_reading("error-rate", (Snapshot({"a": served(100)}), Snapshot({"b": served(3)})), stable, 4.0)
    assert lost.value is None and "canary pods changed" in lost.error
    for threshold in (ERROR_RATE, LATENCY_RELATIVE):
        verdict = judge(lost, threshold, min_samples=5)
        assert verdict.phase is MeasurementPhase.ERROR and "not all known" in verdict.message
    # The next interval, over the replacement alone from its start to its end, is judged as any other.
    after = interval_reading("error-rate", (Snapshot({"b": served(3)}), Snapshot({"b": served(23)})), stable, 2.0)
    assert (after.value, after.samples, after.stable_value, after.error) == (0.0, 20, 0.0, "")
    assert judge(after, ERROR_RATE, min_samples=5).phase is MeasurementPhase.SUCCESSFUL
    # A bad canary stays a Failed one, pods lost or not: only the interval it lost a pod in goes unjudged.
    bad = interval_reading("error-rate", (Snapshot({"b": served(3)}), Snapshot({"b": served(23, 10)})), stable, 2.0)
    assert judge(bad, ERROR_RATE, min_samples=5).phase is MeasurementPhase.FAILED


def test_stable_pods_lost_leave_a_relative_threshold_an_error_and_an_absolute_one_judged() -> None:
    canary = (Snapshot({"c": served(10)}), Snapshot({"c": served(30)}))
    start = Snapshot({"s": served(100)})
    for end in (Snapshot(), Snapshot({"s2": served(1)}), Snapshot({}, ("s: connection refused",))):
        r = interval_reading("latency-p95", canary, (start, end), 2.0)
        assert r.stable_value is None and "stable" in r.stable_error and r.samples == 20
        relative = judge(r, LATENCY_RELATIVE, min_samples=5)
        assert relative.phase is MeasurementPhase.ERROR, relative  # was Inconclusive: an abort over a lost pod
        assert "could not be read" in relative.message
        assert judge(r, Threshold.model_validate({"max": 0.5}), min_samples=5).phase is MeasurementPhase.SUCCESSFUL
    # One stable pod of two replaced: the stable's value, a point of comparison, comes from the other.
    two = Snapshot({"s": served(100), "t": served(100, 0)})
    r = interval_reading("error-rate", canary, (two, Snapshot({"s": served(150, 5), "u": served(2)})), 2.0)
    assert (r.stable_value, r.stable_error) == (0.1, "")
    # A stable version that served nothing over the interval has no value to compare with: Inconclusive, as before.
    idle = interval_reading("latency-p95", canary, (start, Snapshot({"s": served(100)})), 2.0)
    assert idle.stable_error == "" and idle.stable_value is not None and math.isnan(idle.stable_value)
    assert judge(idle, LATENCY_RELATIVE, min_samples=5).phase is MeasurementPhase.INCONCLUSIVE
