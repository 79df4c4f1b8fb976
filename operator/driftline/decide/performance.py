"""What a live performance reading means: the served version's metric on labelled rows, judged against the policy's
floor (`threshold`) or against the version's own validation metric (`maxDegradation`); what it sets off is the
monitors' shared run (decide.monitor).

Missing or too few labels never act: a window below `minSamples` labelled rows, or a NaN metric (the servers export
NaN below their own minimum, or where the rows do not define the metric, e.g. AUC over one class), is
InsufficientSamples; a reading that errored, a metric the pods do not export, or a relative bound with no validation
value to be relative to, is an Error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from driftline.api.inferenceservice import RetrainSpec
from driftline.api.monitor import Assessment
from driftline.api.performance import LOWER_IS_BETTER, PerformanceSpec
from driftline.decide import monitor
from driftline.decide.monitor import Reading, Retrains, Served
from driftline.decide.numbers import apart


def bound(spec: PerformanceSpec, validation: float | None) -> float | None:
    """The value the metric must not be worse than; None when it is relative and there is no validation value."""
    if spec.threshold is not None:
        return spec.threshold
    if validation is None or spec.max_degradation is None:
        return None
    lower = spec.metric in LOWER_IS_BETTER
    # 12 digits: 0.96 - 0.05 is 0.91 to a person, not 0.9099999999999999.
    return round(validation + spec.max_degradation if lower else validation - spec.max_degradation, 12)


def assess(spec: PerformanceSpec, reading: Reading, validation: float | None, version: int | None) -> monitor.Verdict:
    """`validation`: the served version's validation value of the metric (ModelVersion status.metrics), if any."""
    metric = spec.metric.value
    limit = bound(spec, validation)
    facts: dict[str, Any] = {
        "metric": metric,
        "value": None,
        "threshold": None if limit is None else round(limit, 6),
        "validation": validation if spec.max_degradation is not None else None,
    }

    def verdict(assessment: Assessment, message: str) -> monitor.Verdict:
        return monitor.Verdict(assessment, message, facts)

    if reading.error:
        return verdict(Assessment.ERROR, reading.error)
    if reading.score is not None:
        value = reading.score
    elif metric in reading.features:
        value = reading.features[metric]
    else:
        exported = ", ".join(sorted(reading.features)) or "none"
        return verdict(Assessment.ERROR, f"no live {metric} among the metrics read (the pods export: {exported})")
    if math.isinf(value):
        return verdict(Assessment.ERROR, f"garbled live {metric} {value} (must be finite)")
    if limit is None:
        which = f"version {version}" if version is not None else "the served version"
        msg = f"{which} records no validation {metric}: maxDegradation has nothing to be relative to (set threshold)"
        return verdict(Assessment.ERROR, msg)
    if reading.samples is not None and reading.samples < spec.min_samples:
        msg = (
            f"{reading.samples} labelled rows in the live window, fewer than minSamples {spec.min_samples}: not judged"
        )
        return verdict(Assessment.INSUFFICIENT_SAMPLES, msg)
    if math.isnan(value):
        msg = f"live {metric} is NaN: no serving pod's window holds minSamples labelled rows, or they do not define it"
        return verdict(Assessment.INSUFFICIENT_SAMPLES, msg)
    facts["value"] = round(value, 6)
    lower = spec.metric in LOWER_IS_BETTER
    worse = value > limit if lower else value < limit
    shown, shown_limit = apart(value, limit)
    side = ("above" if worse else "within") if lower else ("below" if worse else "within")
    msg = f"live {metric} {shown} {side} threshold {shown_limit}"
    if spec.max_degradation is not None and validation is not None:
        sign = "+" if lower else "-"
        msg += f" (validation {validation:.6g} {sign} maxDegradation {spec.max_degradation:g})"
    if reading.samples is not None:
        msg += f" over {reading.samples} labelled rows"
    return verdict(Assessment.BREACH if worse else Assessment.OK, msg)


def decide(
    spec: PerformanceSpec,
    retrain: RetrainSpec | None,
    reading: Reading,
    validation: float | None,
    last: Mapping[str, Any],
    served: Served,
    retrains: Retrains,
    now: str,
) -> monitor.MonitorPlan:
    """`last` is the previous status.performance."""
    verdict = assess(spec, reading, validation, served.active_version)
    return monitor.run(spec, monitor.PERFORMANCE, verdict, reading.samples, retrain, last, served, retrains, now)
