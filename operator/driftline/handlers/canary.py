"""The canary's measurements: read the metric providers for one analysis round, and step the canary (decide.canary).

A pods-provider measurement is the increase of the servers' counters over one interval, so it needs the counters at
the interval's start. Those baselines live in this process only: after an operator restart, or at the start of each
step, the first read is a baseline and the first measurement comes one interval later. Nothing is lost but time.
Each round's read is the next interval's baseline, so an interval over which a track's pods changed (decide.measure:
an Error, never a verdict) is followed by one measured over the pods now there.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from driftline import config
from driftline.api import constants as c
from driftline.api.fields import parse_duration
from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.api.rollout import AnalysisMetric
from driftline.decide import canary, measure
from driftline.decide.analysis import Reading
from driftline.decide.serving import Rollout, Version
from driftline.k8s import objects
from driftline.metrics import pods as pods_provider
from driftline.metrics import prometheus
from driftline.telemetry import ANALYSIS, set_gauge


@dataclass(frozen=True)
class _Baseline:
    key: tuple[str, int, int, str]  # (InferenceService uid, canary version, step, analysis startedAt)
    at: float  # time.monotonic()
    canary: measure.Snapshot
    stable: measure.Snapshot


_baselines: dict[tuple[str, str], _Baseline] = {}
"""Per InferenceService (namespace, name): the counters at the start of the interval being measured. Guarded by the
InferenceService's lock, which every caller holds."""


def step(
    isvc: dict[str, Any],
    spec: InferenceServiceSpec,
    stable: Version,
    target: Version,
    canary_rollout: Rollout | None,
    measure_now: bool,
    now: str,
) -> canary.CanaryPlan:
    """One step of the canary; with `measure_now` (the analysis timer), a measurement round first when one is due."""
    analysis = (isvc.get("status") or {}).get("analysis")
    rnd: list[dict[str, Any]] = []
    if measure_now:
        at_step = canary.measuring(spec, analysis, canary_rollout, target.version)
        if at_step is not None:
            rnd = _round(isvc, spec, stable.version, target.version, at_step, now)
    return canary.advance(spec, stable.version, target, canary_rollout, analysis, rnd, now)


def forget(namespace: str, name: str) -> None:
    _baselines.pop((namespace, name), None)


def _scrape(namespace: str, name: str, track: str, port: int) -> measure.Snapshot:
    pods = objects.list_pods(namespace, f"{c.LABEL_INFERENCE_SERVICE}={name},{c.LABEL_TRACK}={track}")
    counters, errors = pods_provider.scrape_all(pods_provider.ready_pods(pods), port)
    return measure.Snapshot(counters, tuple(errors))


def _round(
    isvc: dict[str, Any], spec: InferenceServiceSpec, stable_version: int, version: int, at_step: int, now: str
) -> list[dict[str, Any]]:
    """The measurements of every analysis metric over the interval that just ended, or none when it has not."""
    meta = isvc["metadata"]
    ns, name = meta["namespace"], meta["name"]
    analysis = spec.rollout.canary_or_default().analysis
    started_at = str(((isvc.get("status") or {}).get("analysis") or {}).get("startedAt") or "")
    key = (str(meta["uid"]), version, at_step, started_at)  # a later canary of the same version starts afresh
    base = _baselines.get((ns, name))
    started = time.monotonic()
    when = measure.due(None if base is None else (base.key, base.at), key, started, parse_duration(analysis.interval))
    if when is measure.Due.WAIT:
        return []
    uses_pods = any(m.provider.prometheus is None for m in analysis.metrics)
    canary_now = _scrape(ns, name, c.TRACK_CANARY, spec.port) if uses_pods else measure.Snapshot()
    stable_now = _scrape(ns, name, c.TRACK_STABLE, spec.port) if uses_pods else measure.Snapshot()
    _baselines[(ns, name)] = _Baseline(key, started, canary_now, stable_now)
    if when is measure.Due.BASELINE or base is None:
        return []
    seconds = started - base.at
    out = []
    for metric in analysis.metrics:
        if metric.provider.prometheus is not None:
            reading = _prometheus(metric, ns, name, spec.model, version, stable_version)
        else:
            reading = measure.interval_reading(
                metric.name, (base.canary, canary_now), (base.stable, stable_now), seconds
            )
        out.append(canary.measurement(metric, reading, analysis.min_samples, at_step, now))
    for m in out:
        for field in ("value", "stableValue", "min", "max"):
            labels = (m["metric"], str(version), field.removesuffix("Value"))
            set_gauge(ANALYSIS, ns, name, labels, m.get(field, math.nan))  # NaN: not read, or no such bound
    return out


def _prometheus(
    metric: AnalysisMetric, namespace: str, name: str, model: str, version: int, stable_version: int
) -> Reading:
    source = metric.provider.prometheus
    if source is None:
        return Reading(None, error="no prometheus source")

    def ask(v: int) -> float:
        values = {"namespace": namespace, "name": name, "model": model, "version": str(v)}
        promql = prometheus.render_query(source.query, values)
        return prometheus.query(str(source.url), promql, allowed=config.current().allowed_prometheus_urls)

    try:
        value = ask(version)
    except prometheus.QueryError as e:
        return Reading(None, error=str(e))
    stable_value: float | None = None
    stable_error = ""
    if metric.threshold.relative_to_stable:
        try:
            stable_value = ask(stable_version)
        except prometheus.QueryError as e:
            stable_error = str(e)  # an Error: missing metrics are never a verdict on the canary
    return Reading(value, None, stable_value, stable_error=stable_error)
