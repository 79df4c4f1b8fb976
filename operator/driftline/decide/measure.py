"""The pods provider's arithmetic: the model servers' Prometheus counters, scraped at the start and the end of an
interval, become the built-in measurements (error-rate, latency-p95, latency-p99, request-rate) of one track.

An interval is measured over the same pods at both of its ends. When the canary's pods changed during it (a pod
deleted, evicted or unreadable, a replacement, a new one), its requests over the interval are not all known and the
measurement is an Error: never a verdict on a part of the interval, whose few requests would make it Inconclusive and
abort the canary over a lost pod. The stable version's value, only a point of comparison, comes from its pods read at
both ends; with none, it is unreadable.

Pure: the scraping is in driftline.metrics; this turns text into counters and two snapshots into a value.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from prometheus_client.parser import text_string_to_metric_families

from driftline.decide.analysis import Reading

REQUESTS = "driftline_inference_requests"  # the parser strips the counter's _total
DURATION = "driftline_inference_request_duration_seconds"


@dataclass(frozen=True)
class Counters:
    """One pod's inference counters (summed over protocols), or their increase over an interval."""

    requests: float = 0.0
    errors: float = 0.0
    """Requests answered with a status outside 2xx."""
    buckets: Mapping[float, float] = field(default_factory=dict)
    """Cumulative latency histogram: upper bound (le) -> requests at most that slow."""


def parse(text: str) -> Counters:
    """The counters in a /metrics page. Raises ValueError on text that is not the Prometheus format."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if family.name == REQUESTS and sample.name == f"{REQUESTS}_total":
                requests += sample.value
                if not str(sample.labels.get("code", "")).startswith("2"):
                    errors += sample.value
            elif family.name == DURATION and sample.name == f"{DURATION}_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return Counters(requests, errors, buckets)


def increase(before: Counters | None, after: Counters) -> Counters:
    """`after - before`, as Prometheus' increase(): a counter that went down was reset (the pod restarted), so all of
    `after` is new. A pod without a `before` is new too."""
    if before is None or after.requests < before.requests:
        return after
    return Counters(
        after.requests - before.requests,
        max(0.0, after.errors - before.errors),
        {le: max(0.0, v - before.buckets.get(le, 0.0)) for le, v in after.buckets.items()},
    )


def total(parts: Sequence[Counters]) -> Counters:
    buckets: dict[float, float] = {}
    for p in parts:
        for le, v in p.buckets.items():
            buckets[le] = buckets.get(le, 0.0) + v
    return Counters(sum(p.requests for p in parts), sum(p.errors for p in parts), buckets)


def quantile(q: float, buckets: Mapping[float, float]) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding the q-th request. NaN without
    requests; the largest finite bound when the quantile falls in the +Inf bucket."""
    bounds = sorted(buckets)
    count = buckets.get(math.inf, buckets[bounds[-1]] if bounds else 0.0)
    if not bounds or count <= 0:
        return math.nan
    rank = q * count
    lower, below = 0.0, 0.0
    for le in bounds:
        cum = buckets[le]
        if cum >= rank:
            if math.isinf(le):
                return lower
            if cum == below:
                return le
            return lower + (le - lower) * (rank - below) / (cum - below)
        lower, below = le, cum
    return lower


def value(metric: str, counters: Counters, seconds: float) -> float:
    """One built-in measurement of a track over an interval; NaN when it is undefined (no requests)."""
    if metric == "request-rate":
        return counters.requests / seconds if seconds > 0 else math.nan
    if metric == "error-rate":
        return counters.errors / counters.requests if counters.requests > 0 else math.nan
    if metric == "latency-p95":
        return quantile(0.95, counters.buckets)
    if metric == "latency-p99":
        return quantile(0.99, counters.buckets)
    raise ValueError(f"unknown built-in measurement {metric!r}")


@dataclass(frozen=True)
class Snapshot:
    """One track's ready pods, read at one instant."""

    pods: Mapping[str, Counters] = field(default_factory=dict)
    """Each pod's counters, by pod uid (a replacement pod has a new uid)."""
    unread: Sequence[str] = ()
    """One message per ready pod whose /metrics could not be read."""


def unknown(track: str, start: Snapshot, end: Snapshot) -> str:
    """Why a track's requests between two snapshots are not known; empty when every ready pod was read at both ends,
    the same pods. A pod read at the start and not at the end took its requests since with it; a pod read only at the
    end served a part of the interval (a replacement) or more than it (a pod unreadable at the start)."""
    if end.unread:
        return f"{len(end.unread)} ready {track} pod(s) could not be read: " + "; ".join(end.unread)
    if not end.pods:
        return f"no ready {track} pod"
    gone, new = len(set(start.pods) - set(end.pods)), len(set(end.pods) - set(start.pods))
    if gone or new:
        return f"the {track} pods changed during the interval ({gone} gone, {new} new)"
    return ""


def interval_reading(
    metric: str, canary: tuple[Snapshot, Snapshot], stable: tuple[Snapshot, Snapshot], seconds: float
) -> Reading:
    """The canary's measurement over an interval, from each track's snapshots at its start and its end: an Error when
    the canary's requests over it are not all known; the stable's value from its pods read at both ends, and none
    (with the reason) when there are none."""
    why = unknown("canary", *canary)
    if why:
        return Reading(None, error=f"{why}: the canary's requests over the interval are not all known")
    canary_inc = total([increase(canary[0].pods[uid], c) for uid, c in canary[1].pods.items()])
    start, end = stable
    both = [increase(start.pods[uid], c) for uid, c in end.pods.items() if uid in start.pods]
    stable_why = "" if both else unknown("stable", start, end) or "no stable pod read at both ends of the interval"
    return replace(reading(metric, canary_inc, total(both) if both else None, seconds), stable_error=stable_why)


def reading(metric: str, canary: Counters, stable: Counters | None, seconds: float) -> Reading:
    """The canary's value with the stable track's over the same interval, and the canary's sample count."""
    return Reading(
        value=value(metric, canary, seconds),
        samples=int(canary.requests),
        stable_value=None if stable is None else value(metric, stable, seconds),
    )


class Due(StrEnum):
    """What a measurement round does now, given the baseline it has."""

    WAIT = "Wait"
    """The interval since the baseline has not passed: nothing to read."""
    BASELINE = "Baseline"
    """No baseline for this step (a new step, a new canary, an operator restart): read one, measure nothing."""
    MEASURE = "Measure"
    """Read, and measure the increase since the baseline (the read is the next interval's baseline)."""


def due(baseline: tuple[Hashable, float] | None, key: Hashable, now: float, interval: float) -> Due:
    """`baseline`: (what it was taken for, when, in monotonic seconds); `key` names the step being measured."""
    if baseline is None or baseline[0] != key:
        return Due.BASELINE
    return Due.WAIT if now - baseline[1] < interval else Due.MEASURE
