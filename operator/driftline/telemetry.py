"""The operator's own Prometheus metrics: reconciles, errors, durations, and every decision it announced."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from driftline.k8s.client import ACTING_FOR

P = ParamSpec("P")
R = TypeVar("R")

RECONCILES = Counter(
    "driftline_operator_reconciles_total", "Reconciles by kind and result (ok, error).", ["kind", "result"]
)
RECONCILE_SECONDS = Histogram(
    "driftline_operator_reconcile_duration_seconds",
    "Time one reconcile took, API calls included.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DRIFT_READING_DELAY = Histogram(
    "driftline_operator_drift_reading_delay_seconds",
    "How late each drift reading started after it was due: a reading pool that cannot keep up shows here first.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DECISIONS = Counter(
    "driftline_operator_decisions_total",
    "Decisions the operator took and announced as an Event, by the object (kind, namespace, name), the Event type "
    "and reason.",
    ["kind", "namespace", "name", "type", "reason"],
)
SERVICE_INFO = Gauge(
    "driftline_inferenceservice_info",
    "One series per InferenceService, value 1: its phase and the version it serves (empty while none), as Argo "
    "Rollouts' rollout_info.",
    ["namespace", "inferenceservice", "phase", "version"],
)

ANALYSIS = Gauge(
    "driftline_operator_analysis_measurement",
    "The latest canary analysis measurement of an InferenceService, with the bounds it was judged against: "
    "value (the canary's), stable (the stable version's, same interval), min and max (in effect).",
    ["namespace", "inferenceservice", "metric", "version", "field"],
)


def counted(kind: str, start: float) -> None:
    """A reconcile of `kind` that began at perf_counter() `start` ended well: counted as `reconciler` counts one."""
    RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - start)
    RECONCILES.labels(kind, "ok").inc()


def reconciler(kind: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count and time every call; an exception counts as an error and propagates (kopf retries with back-off)."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            token = ACTING_FOR.set(kind)
            try:
                out = fn(*args, **kwargs)
            except BaseException:
                RECONCILES.labels(kind, "error").inc()
                raise
            finally:
                ACTING_FOR.reset(token)
                RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - start)
            RECONCILES.labels(kind, "ok").inc()
            return out

        return timed

    return wrap


_LABELS = ["namespace", "inferenceservice", "method"]
DRIFT_SCORE = Gauge(
    "driftline_operator_drift_score",
    "The latest drift score the operator read for an InferenceService (largest per-feature value; NaN when the "
    "reading failed or the window held too few inputs).",
    _LABELS,
)
DRIFT_THRESHOLD = Gauge(
    "driftline_operator_drift_threshold", "The threshold the latest drift score was judged against.", _LABELS
)
DRIFT_SAMPLES = Gauge(
    "driftline_operator_drift_window_samples",
    "Inputs in the serving pods' drift windows at the latest reading (NaN when the source does not tell).",
    _LABELS,
)
DRIFT_BREACHES = Gauge("driftline_operator_drift_consecutive_breaches", "Breaching drift readings in a row.", _LABELS)
_PERFORMANCE_LABELS = ["namespace", "inferenceservice", "metric"]
LIVE_PERFORMANCE = Gauge(
    "driftline_operator_live_performance",
    "The served version's latest live performance the operator read for an InferenceService (NaN when the reading "
    "failed or the window held too few labelled rows).",
    _PERFORMANCE_LABELS,
)
LIVE_PERFORMANCE_THRESHOLD = Gauge(
    "driftline_operator_live_performance_threshold",
    "The bound the latest live performance was judged against (spec.performance.threshold, or the validation value "
    "less maxDegradation).",
    _PERFORMANCE_LABELS,
)
LIVE_PERFORMANCE_BREACHES = Gauge(
    "driftline_operator_live_performance_consecutive_breaches",
    "Breaching live performance readings in a row.",
    _PERFORMANCE_LABELS,
)

_series: dict[tuple[str, str], set[tuple[Gauge, tuple[str, ...]]]] = {}
"""The labelled series set per InferenceService, so that deleting it removes them from /metrics."""


def set_gauge(gauge: Gauge, namespace: str, name: str, labels: tuple[str, ...], value: float) -> None:
    """Set a series of a gauge whose first two labels are the InferenceService's namespace and name."""
    gauge.labels(namespace, name, *labels).set(value)
    _series.setdefault((namespace, name), set()).add((gauge, labels))


def set_info(gauge: Gauge, namespace: str, name: str, labels: tuple[str, ...]) -> None:
    """The one series of an object's info gauge (value 1): a series with other label values (the phase before) goes."""
    series = _series.setdefault((namespace, name), set())
    for old in [entry for entry in series if entry[0] is gauge and entry[1] != labels]:
        series.discard(old)
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name, *old[1])
    set_gauge(gauge, namespace, name, labels, 1.0)


def forget(namespace: str, name: str) -> None:
    """Remove every series set for an InferenceService that is gone."""
    for gauge, labels in _series.pop((namespace, name), set()):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name, *labels)
