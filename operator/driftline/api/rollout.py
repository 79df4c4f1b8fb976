"""How an InferenceService moves to a new version: Rolling, or Canary steps judged by an analysis (Argo Rollouts'
semantics), and the analysis results in status."""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, field_validator

from driftline.api.base import ApiModel, FieldError, StatusModel, rule
from driftline.api.common import MetricSource, pods_source
from driftline.api.constants import ANALYSIS_MEASUREMENTS_CAP
from driftline.api.fields import Bool, Duration, Float, Int, MetricName, Timestamp, parse_duration

BUILTIN_POD_METRICS: Final = ("error-rate", "latency-p95", "latency-p99", "request-rate")
"""Measurements the pods provider computes from the serving pods' /metrics over one interval."""


class RolloutStrategy(StrEnum):
    """How traffic moves to a new version."""

    ROLLING = "Rolling"
    CANARY = "Canary"


class Threshold(ApiModel):
    """The range a measurement must fall in to count as Successful."""

    min: Float | None = None
    """Lowest passing value (inclusive)."""
    max: Float | None = None
    """Highest passing value (inclusive)."""
    relative_to_stable: Bool = False
    """When true, min and max are offsets from the stable version's value measured over the same interval: max 0.01
    on error-rate means at most the stable version's error rate plus one point. A stable version that served nothing
    over the interval makes the measurement Inconclusive; a stable value that cannot be read (its pods unreadable or
    replaced during the interval, its query failing) makes it an Error."""

    @rule("has(self.min) || has(self.max)", "set min, max or both", reason=FieldError.REQUIRED, field_path=".max")
    def _bounded(self) -> bool:
        return self.min is not None or self.max is not None

    @rule("!has(self.min) || !has(self.max) || self.min <= self.max", "min must not exceed max", field_path=".min")
    def _ordered(self) -> bool:
        return self.min is None or self.max is None or self.min <= self.max


class AnalysisMetric(ApiModel):
    """One measurement an analysis takes of the canary at every interval."""

    name: MetricName
    """What to measure. With the pods provider one of the built-in measurements: error-rate (share of non-2xx
    responses), latency-p95 and latency-p99 (seconds), request-rate (requests per second). With prometheus, a
    label for the query's result."""
    provider: MetricSource = Field(default_factory=pods_source, json_schema_extra={"default": {"pods": {}}})
    """Where the value comes from: the serving pods (default) or a Prometheus query."""
    threshold: Threshold
    """The passing range; absolute, or relative to the stable version."""

    @rule(
        "(has(self.provider) && has(self.provider.prometheus)) || self.name in "
        + "["
        + ", ".join(f"'{m}'" for m in BUILTIN_POD_METRICS)
        + "]",
        "the pods provider measures only " + ", ".join(BUILTIN_POD_METRICS) + "; use prometheus for other metrics",
        field_path=".name",
    )
    def _builtin_for_pods(self) -> bool:
        return self.provider.prometheus is not None or self.name in BUILTIN_POD_METRICS

    @rule(
        "has(self.provider.prometheus) || self.threshold.relativeToStable || "
        "[has(self.threshold.min) ? self.threshold.min : 0.0, has(self.threshold.max) ? self.threshold.max : 0.0]"
        ".all(v, v >= 0.0 && (self.name != 'error-rate' || v <= 1.0))",
        "the threshold lies outside what the pods provider can measure: error-rate is a share, 0..1 (max 0.05 is "
        "5%), latencies and request-rate are never below 0",
        field_path=".threshold",
    )
    def _threshold_measurable(self) -> bool:
        if self.provider.prometheus is not None or self.threshold.relative_to_stable:
            return True
        bounds = [b for b in (self.threshold.min, self.threshold.max) if b is not None]
        return all(b >= 0 and (self.name != "error-rate" or b <= 1) for b in bounds)


def _default_analysis_metrics() -> list[AnalysisMetric]:
    return [AnalysisMetric(name="error-rate", threshold=Threshold(max=0.05))]


class InconclusivePolicy(StrEnum):
    """What a step whose analysis is Inconclusive does (too few requests to judge, as with no traffic at all)."""

    PAUSE = "Pause"
    ROLLBACK = "Rollback"
    PROMOTE = "Promote"


class AnalysisSpec(ApiModel):
    """How each canary step is judged, with Argo Rollouts' semantics. At every step the analysis takes `count`
    measurements, `interval` apart. A measurement is Successful inside the threshold, Failed outside it, Inconclusive
    below minSamples or when a relative threshold has no stable value to compare with, and Error when the value (or a
    relative threshold's stable value) cannot be read (NaN, empty, unreachable, or pods replaced during the interval).
    NaN, empty or errored results never count as success."""

    interval: Duration = "30s"
    """Time between two measurements."""
    count: Annotated[Int, Field(ge=1, le=100)] = 5
    """Measurements per step. The step passes when all are taken and no limit below was exceeded."""
    failure_limit: Annotated[Int, Field(ge=0, le=100)] = 0
    """Failed measurements tolerated per step; one more aborts the canary."""
    inconclusive_limit: Annotated[Int, Field(ge=0, le=100)] = 0
    """Inconclusive measurements tolerated per step; one more ends the step Inconclusive, which aborts the canary
    (fail-safe: no person is waiting to resume it)."""
    consecutive_error_limit: Annotated[Int, Field(ge=0, le=100)] = 4
    """Errors in a row tolerated; one more aborts the canary. A step in which every measurement errored fails too."""
    on_inconclusive: InconclusivePolicy = InconclusivePolicy.PAUSE
    """What an Inconclusive step does. Pause (the default): the canary stays at its step, the service says why
    (AnalysisPaused, with the requests seen against minSamples) and the step is measured again, so it goes on by itself
    once traffic comes; a good version is never rolled back for lack of traffic (Argo Rollouts pauses too). Rollback:
    the canary is aborted. Promote: the step passes."""
    min_samples: Annotated[Int, Field(ge=0, le=1_000_000_000)] = 20
    """Fewest requests the canary must have served in an interval for a measurement to be judged; fewer make it
    Inconclusive, never Successful."""
    metrics: Annotated[list[AnalysisMetric], Field(min_length=1, max_length=10)] = Field(
        default_factory=_default_analysis_metrics,
        json_schema_extra={
            "default": [{"name": "error-rate", "provider": {"pods": {}}, "threshold": {"max": 0.05}}],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    """What to measure, each name once; every metric must pass. Defaults to error-rate at most 5%."""

    @rule(
        "duration(self.interval) >= duration('1s')",
        "interval must be at least 1s: the analysis would measure without pause",
        field_path=".interval",
    )
    def _interval_positive(self) -> bool:
        return parse_duration(self.interval) >= 1

    @rule(
        "self.failureLimit < self.count",
        "failureLimit must be below count: a step takes count measurements, so it could never fail",
        field_path=".failureLimit",
    )
    def _can_fail(self) -> bool:
        return self.failure_limit < self.count

    @rule(
        "self.inconclusiveLimit < self.count",
        "inconclusiveLimit must be below count: a step takes count measurements, so it could never be inconclusive",
        field_path=".inconclusiveLimit",
    )
    def _can_be_inconclusive(self) -> bool:
        return self.inconclusive_limit < self.count

    @field_validator("metrics")
    @classmethod
    def _names_once(cls, metrics: list[AnalysisMetric]) -> list[AnalysisMetric]:
        names = [m.name for m in metrics]
        if len(set(names)) != len(names):
            raise ValueError("metrics: Duplicate value: each metric name may be used once")
        return metrics


class CanaryStep(ApiModel):
    """One step of a canary."""

    weight: Annotated[Int, Field(ge=1, le=99)]
    """Share of traffic, in percent, the canary gets during this step (1..99). Without a service mesh the share is
    approximated by the share of ready replicas."""


def _default_steps() -> list[CanaryStep]:
    return [CanaryStep(weight=20), CanaryStep(weight=50)]


class CanarySpec(ApiModel):
    """Canary settings: the steps and the analysis run at each."""

    steps: Annotated[list[CanaryStep], Field(min_length=1, max_length=10)] = Field(
        default_factory=_default_steps, json_schema_extra={"default": [{"weight": 20}, {"weight": 50}]}
    )
    """Traffic weights to go through, strictly increasing. After the last step passes the canary becomes
    stable (100%)."""
    analysis: AnalysisSpec = AnalysisSpec()
    """The analysis run at every step."""

    @rule(
        "self.steps.map(s, s.weight).isSorted() && self.steps.all(s, self.steps.exists_one(t, t.weight == s.weight))",
        "steps must have strictly increasing weights, e.g. 10, 25, 50",
        field_path=".steps",
    )
    def _increasing(self) -> bool:
        weights = [s.weight for s in self.steps]
        return all(a < b for a, b in itertools.pairwise(weights))


class RolloutSpec(ApiModel):
    """How the InferenceService moves to a new version."""

    strategy: RolloutStrategy = RolloutStrategy.ROLLING
    """Rolling replaces the pods in place (a Deployment rolling update); Canary runs the new version next to the
    stable one and raises its share step by step while an analysis watches it."""
    canary: CanarySpec | None = None
    """Canary steps and analysis (strategy Canary only; the defaults apply when empty)."""
    progress_deadline_seconds: Annotated[Int, Field(ge=30, le=86400)] = 600
    """How long the new version may take to become ready; past it the rollout is rolled back."""

    @rule(
        "self.strategy == 'Canary' || !has(self.canary)",
        "canary settings need strategy: Canary",
        field_path=".canary",
        reason=FieldError.FORBIDDEN,
    )
    def _canary_only_with_canary(self) -> bool:
        return self.strategy is RolloutStrategy.CANARY or self.canary is None

    def canary_or_default(self) -> CanarySpec:
        """The canary settings in effect."""
        return self.canary if self.canary is not None else CanarySpec()


# --- Status. ---------------------------------------------------------------------------------------------------------


class MeasurementPhase(StrEnum):
    """The verdict on one measurement."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class AnalysisPhase(StrEnum):
    """The verdict on a canary step's analysis so far; the worst measurement phase past its limit wins."""

    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class Measurement(StatusModel):
    """One measurement of a canary, with the bounds it was judged against."""

    metric: str
    """Name of the analysis metric."""
    time: Timestamp
    """When it was taken."""
    step: int | None = None
    """Index of the canary step (from 0)."""
    phase: MeasurementPhase
    """Successful, Failed, Inconclusive or Error."""
    value: float | None = None
    """Measured value of the canary; absent when it could not be read."""
    stable_value: float | None = None
    """Value of the stable version over the same interval, for relative thresholds."""
    min: float | None = None
    """Lowest passing value in effect (a relative threshold resolved against stableValue)."""
    max: float | None = None
    """Highest passing value in effect."""
    samples: int | None = None
    """Requests the canary served over the interval."""
    message: str | None = None
    """Why it was Inconclusive or Error."""


class AnalysisStatus(StatusModel):
    """The analysis of the current (or last) canary."""

    phase: AnalysisPhase | None = None
    """Running, Successful, Failed, Inconclusive or Error."""
    version: int | None = None
    """The canary version analysed."""
    step: int | None = None
    """Index of the current canary step (from 0)."""
    weight: int | None = None
    """Traffic weight of the current step, in percent."""
    started_at: Timestamp | None = None
    """When the analysis of this canary began."""
    successful: int = 0
    """Successful measurements in the current step."""
    failed: int = 0
    """Failed measurements in the current step."""
    inconclusive: int = 0
    """Inconclusive measurements in the current step."""
    errors: int = 0
    """Errored measurements in the current step."""
    consecutive_errors: int = 0
    """Errored measurements in a row."""
    paused: bool | None = None
    """True while the step waits for enough requests to judge (onInconclusive: Pause): it is measured again."""
    message: str | None = None
    """Why the analysis ended as it did, or why it is paused."""
    measurements: Annotated[list[Measurement], Field(max_length=ANALYSIS_MEASUREMENTS_CAP)] = []
    """The newest measurements, oldest first."""
