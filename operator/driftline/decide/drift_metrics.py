"""The pods provider's drift arithmetic: each serving pod's drift gauges, combined across pods into one reading.

Pure: the scraping is in driftline.metrics.pods. Each pod's window holds only the inputs that pod served, so the
service's value of a feature is the mean of the pods' values weighted by their window fill.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from driftline.decide.drift import Reading

FEATURE = "driftline_feature_drift"
SAMPLES = "driftline_drift_window_samples"


@dataclass(frozen=True)
class PodDrift:
    features: dict[str, float]
    """Feature -> value of one method (NaN while the pod's window is below its minimum)."""
    samples: int


def parse(text: str, method: str) -> PodDrift:
    """One pod's drift gauges for `method`. Raises ValueError on text that is not the Prometheus format or that
    lacks the window gauge (not a Driftline server, or drift is off)."""
    features: dict[str, float] = {}
    samples: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == FEATURE and sample.labels.get("method") == method and "feature" in sample.labels:
                features[sample.labels["feature"]] = float(sample.value)
            elif sample.name == SAMPLES:
                samples = float(sample.value)
    if samples is None or math.isnan(samples) or samples < 0 or math.isinf(samples):
        raise ValueError(f"no valid {SAMPLES} gauge (got {samples!r})")
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
