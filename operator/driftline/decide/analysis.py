"""Canary analysis with Argo Rollouts' semantics, as pure functions (after Argo's analysis.go: judge each measurement,
then assess each metric against its limits, then the worst metric wins).

Where Driftline is stricter than Argo Rollouts:

- a value that is missing, NaN or infinite, or that came with an error, is an Error, never a success;
- fewer requests than `minSamples` over the interval make a measurement Inconclusive, never Successful;
- a relative threshold with no stable value is Inconclusive when the stable version served nothing to compare with,
  and an Error when its value could not be read (its pods unreadable, or replaced during the interval): missing
  metrics are never a verdict on the canary;
- a step whose measurements are all taken but of which none succeeded does not pass: all errors is Failed (Argo
  Rollouts once passed a run in which every measurement errored), otherwise it is Inconclusive;
- each interval's measurements of all metrics form one round whose phase is the worst of them, and the limits count
  rounds: a metric failing in one round and another in the next are two failures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from driftline.api.rollout import AnalysisPhase, AnalysisSpec, MeasurementPhase, Threshold
from driftline.decide.numbers import apart


@dataclass(frozen=True)
class Reading:
    """What a metric provider read for one metric over one interval."""

    value: float | None
    samples: int | None = None
    """Requests the canary served over the interval (None when the provider cannot tell, e.g. a Prometheus query)."""
    stable_value: float | None = None
    error: str = ""
    stable_error: str = ""
    """Why the stable version's value could not be read (a relative threshold then has nothing to judge against)."""


@dataclass(frozen=True)
class Judgement:
    phase: MeasurementPhase
    min: float | None
    max: float | None
    """The bounds in effect (a relative threshold resolved against the stable value)."""
    message: str = ""


def judge(reading: Reading, threshold: Threshold, min_samples: int) -> Judgement:
    """The verdict on one measurement."""
    if reading.error:
        return Judgement(MeasurementPhase.ERROR, threshold.min, threshold.max, reading.error)
    if reading.samples is not None and reading.samples < min_samples:
        msg = f"{reading.samples} requests in the interval, fewer than minSamples {min_samples}"
        return Judgement(MeasurementPhase.INCONCLUSIVE, threshold.min, threshold.max, msg)
    value = reading.value
    if value is None or not math.isfinite(value):
        return Judgement(MeasurementPhase.ERROR, threshold.min, threshold.max, f"no usable value ({value})")
    lo, hi = threshold.min, threshold.max
    if threshold.relative_to_stable:
        if reading.stable_error:
            msg = f"relative threshold, but the stable version's value could not be read: {reading.stable_error}"
            return Judgement(MeasurementPhase.ERROR, None, None, msg)
        base = reading.stable_value
        if base is None or not math.isfinite(base):
            msg = f"relative threshold, but the stable version's value is unusable ({base})"
            return Judgement(MeasurementPhase.INCONCLUSIVE, None, None, msg)
        lo = None if lo is None else base + lo
        hi = None if hi is None else base + hi
    if lo is not None and value < lo:
        return Judgement(MeasurementPhase.FAILED, lo, hi, "{} is below the minimum {}".format(*apart(value, lo, 6)))
    if hi is not None and value > hi:
        return Judgement(MeasurementPhase.FAILED, lo, hi, "{} is above the maximum {}".format(*apart(value, hi, 6)))
    return Judgement(MeasurementPhase.SUCCESSFUL, lo, hi)


@dataclass(frozen=True)
class Tally:
    """Measurements of one step so far, by phase, with the trailing run of errors."""

    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    @property
    def taken(self) -> int:
        return self.successful + self.failed + self.inconclusive + self.errors

    def add(self, phase: MeasurementPhase) -> Tally:
        err = phase is MeasurementPhase.ERROR
        return Tally(
            self.successful + (phase is MeasurementPhase.SUCCESSFUL),
            self.failed + (phase is MeasurementPhase.FAILED),
            self.inconclusive + (phase is MeasurementPhase.INCONCLUSIVE),
            self.errors + err,
            self.consecutive_errors + 1 if err else 0,
        )


def tally(phases: Sequence[MeasurementPhase]) -> Tally:
    out = Tally()
    for p in phases:
        out = out.add(p)
    return out


def assess(t: Tally, spec: AnalysisSpec) -> tuple[AnalysisPhase, str]:
    """A step's verdict so far: a limit exceeded ends it at once; otherwise it runs until `count` measurements are
    taken, and passes only if one of them succeeded."""
    if t.failed > spec.failure_limit:
        return AnalysisPhase.FAILED, f"{t.failed} failed measurements, more than failureLimit {spec.failure_limit}"
    if t.inconclusive > spec.inconclusive_limit:
        msg = f"{t.inconclusive} inconclusive measurements, more than inconclusiveLimit {spec.inconclusive_limit}"
        return AnalysisPhase.INCONCLUSIVE, msg
    if t.consecutive_errors > spec.consecutive_error_limit:
        msg = f"{t.consecutive_errors} errors in a row, more than consecutiveErrorLimit {spec.consecutive_error_limit}"
        return AnalysisPhase.ERROR, msg
    if t.taken < spec.count:
        return AnalysisPhase.RUNNING, ""
    if t.successful == 0:
        if t.errors == t.taken:
            return AnalysisPhase.FAILED, f"all {t.errors} measurements errored"
        return AnalysisPhase.INCONCLUSIVE, f"none of {t.taken} measurements succeeded"
    return AnalysisPhase.SUCCESSFUL, ""


_WORST_FIRST = (
    MeasurementPhase.FAILED,
    MeasurementPhase.ERROR,
    MeasurementPhase.INCONCLUSIVE,
    MeasurementPhase.SUCCESSFUL,
)


def worst(phases: Sequence[MeasurementPhase]) -> MeasurementPhase:
    """One measurement round's phase: the worst of its metrics' (every metric must pass), so a step's limits count
    rounds. Stricter than Argo Rollouts, which counts each metric's failures apart. No metric at all is an Error."""
    return min(phases, key=_WORST_FIRST.index) if phases else MeasurementPhase.ERROR


def aborts(phase: AnalysisPhase) -> bool:
    """Failed, Error and Inconclusive all abort the canary: no person waits to resume an inconclusive one."""
    return phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR, AnalysisPhase.INCONCLUSIVE)
