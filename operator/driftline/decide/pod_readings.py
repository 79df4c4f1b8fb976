"""The pods provider's arithmetic for the monitors: each serving pod's gauges (drift per feature, live performance per
metric), combined across pods into one reading.

Pure: the scraping is in driftline.metrics.pods. Each pod's window holds only the rows that pod served (or had
labelled), so the service's value is the mean of the pods' values weighted by their window fill. For accuracy that is
exact; for F1, AUC and log loss, a close estimate (pods' windows are random samples of the same traffic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from driftline.decide.monitor import Reading


@dataclass(frozen=True)
class Gauges:
    """Where a monitor's per-pod values are in a /metrics page."""

    family: str
    key: str
    """The label naming each value (a feature, a metric)."""
    samples: str
    """The gauge of the pod's window fill."""
    select: str = ""
    """A label that must equal the value asked for (drift's method), if any."""


DRIFT = Gauges("driftline_feature_drift", "feature", "driftline_drift_window_samples", select="method")
PERFORMANCE = Gauges("driftline_live_performance", "metric", "driftline_live_performance_samples")


@dataclass(frozen=True)
class PodDrift:
    features: dict[str, float]
    """Name -> value (a feature's drift of one method; a live metric), NaN while the pod's window is below its
    minimum."""
    samples: int


def parse(text: str, selected: str = "", gauges: Gauges = DRIFT) -> PodDrift:
    """One pod's values of `gauges` (for drift, of the method `selected`). Raises ValueError on text that is not the
    Prometheus format or that lacks the window gauge (not a Driftline server, or that monitor is off)."""
    features: dict[str, float] = {}
    samples: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == gauges.family and gauges.key in labels:
                if not gauges.select or labels.get(gauges.select) == selected:
                    features[labels[gauges.key]] = float(sample.value)
            elif sample.name == gauges.samples:
                samples = float(sample.value)
    if samples is None or math.isnan(samples) or samples < 0 or math.isinf(samples):
        raise ValueError(f"no valid {gauges.samples} gauge (got {samples!r})")
    return PodDrift(features, int(samples))


def combine(pods: Sequence[PodDrift]) -> Reading:
    """The service's reading: per feature, the pods' finite values averaged with their window fill as weights (NaN
    when no pod has one); the samples are the pods' sum. A value that is infinite or negative is kept as it is, so
    the assessment calls it garbled instead of averaging it away."""
    names = sorted({name for pod in pods for name in pod.features})
    features: dict[str, float] = {}
    for name in names:
        weighted = total = 0.0
        bad: float | None = None
        for pod in pods:
            v = pod.features.get(name, math.nan)
            if math.isinf(v) or v < 0:
                bad = v
            elif not math.isnan(v) and pod.samples > 0:
                weighted += v * pod.samples
                total += pod.samples
        features[name] = bad if bad is not None else (weighted / total if total > 0 else math.nan)
    return Reading(features=features, samples=sum(p.samples for p in pods))
