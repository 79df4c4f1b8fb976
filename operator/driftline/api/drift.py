"""Drift watching of an InferenceService: how live inputs are compared with the training data, and what follows."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field

from driftline.api.base import ApiModel, StatusModel, rule
from driftline.api.common import MetricSource, MetricValue, pods_source
from driftline.api.constants import DRIFT_TOP_FEATURES
from driftline.api.fields import Bool, Duration, Float, Int, Timestamp, parse_duration

PSI_MAX: Final = 10.0
"""PSI has no upper bound; a threshold beyond this is a mistake, not a policy."""


class DriftMetric(StrEnum):
    """Per-feature drift statistic between the training profile and the live window."""

    PSI = "psi"  # population stability index: < 0.1 insignificant, 0.1-0.25 minor, > 0.25 major
    KS = "ks"  # Kolmogorov-Smirnov statistic over the binned CDFs, 0..1
    JS = "js"  # Jensen-Shannon distance (base 2), 0..1
    WASSERSTEIN = "wasserstein"  # Wasserstein-1 distance normalised by the reference range, 0..1


class DriftAction(StrEnum):
    """What a confirmed drift does."""

    ROLLBACK = "Rollback"
    RETRAIN = "Retrain"
    ALERT = "Alert"
    NONE = "None"


class DriftWindow(ApiModel):
    """The live inputs drift is computed over: the last `size` requests, or the last `seconds`."""

    size: Annotated[Int, Field(ge=10, le=1_000_000)] | None = None
    """Count window: the most recent this many inputs."""
    seconds: Annotated[Int, Field(ge=10, le=7 * 86400)] | None = None
    """Time window: the inputs of the last this many seconds."""

    @rule("has(self.size) != has(self.seconds)", "set exactly one of size or seconds", field_path=".size")
    def _exactly_one(self) -> bool:
        return (self.size is None) != (self.seconds is None)


class DriftSpec(ApiModel):
    """Watch live inputs for drift from the training data and act on it."""

    enabled: Bool = True
    """Switch drift watching off without deleting its settings."""
    metric: DriftMetric = DriftMetric.PSI
    """Statistic computed per feature: psi, ks, js or wasserstein."""
    threshold: Annotated[Float, Field(gt=0, le=PSI_MAX)] = 0.25
    """A scrape breaches when the drift score (the largest per-feature value of metric) exceeds this. ks, js and
    wasserstein lie in 0..1; psi may go up to 10 (0.25 is the conventional major-shift line)."""
    window: DriftWindow = Field(
        default_factory=lambda: DriftWindow(size=1000), json_schema_extra={"default": {"size": 1000}}
    )
    """The live window compared with the training profile."""
    min_samples: Annotated[Int, Field(ge=1, le=1_000_000)] = 200
    """Fewest inputs the window must hold for a score to be judged; fewer is InsufficientSamples, never a breach."""
    consecutive: Annotated[Int, Field(ge=1, le=100)] = 3
    """Breaching scrapes in a row needed before the action fires."""
    consecutive_error_limit: Annotated[Int, Field(ge=1, le=100)] = 5
    """Failed scrapes in a row (unreachable, garbled or missing metrics) after which the service is marked
    Degraded. Errors never count as breaches."""
    action: DriftAction = DriftAction.ALERT
    """What a confirmed drift does. Rollback: return to the previous version if drift began within
    rollbackWindowSeconds of a roll forward. Retrain: start a TrainingJob from spec.retrain.template. Alert: a
    Warning Event and Drifted=True only. None: record the score only."""
    rollback_window_seconds: Annotated[Int, Field(ge=0, le=30 * 86400)] = 3600
    """How long after a roll forward drift still counts as caused by it, and is rolled back (actions Rollback and
    Retrain). Later drift is alerted (Rollback) or retrained on (Retrain)."""
    source: MetricSource = Field(default_factory=pods_source, json_schema_extra={"default": {"pods": {}}})
    """Where drift scores are read: the serving pods' /metrics, or a Prometheus query returning the score."""
    scrape_interval: Duration = "30s"
    """How often drift is read."""

    @rule(
        "self.metric == 'psi' || self.threshold <= 1.0",
        "threshold must be within (0, 1] for ks, js and wasserstein; only psi goes above 1",
        field_path=".threshold",
    )
    def _threshold_in_range(self) -> bool:
        return self.metric is DriftMetric.PSI or self.threshold <= 1.0

    @rule(
        "!has(self.window.size) || self.window.size >= self.minSamples",
        "window.size must hold at least minSamples inputs, or no reading could ever be judged",
        field_path=".window.size",
    )
    def _window_holds_min_samples(self) -> bool:
        return self.window.size is None or self.window.size >= self.min_samples

    @rule(
        "duration(self.scrapeInterval) >= duration('1s')",
        "scrapeInterval must be at least 1s: drift would be read without pause",
        field_path=".scrapeInterval",
    )
    def _interval_positive(self) -> bool:
        return parse_duration(self.scrape_interval) >= 1

    @rule(
        "self.action != 'Rollback' || self.rollbackWindowSeconds > 0",
        "action Rollback needs rollbackWindowSeconds above 0: drift never begins within 0s of a roll forward, so "
        "nothing would ever be rolled back (use Alert to only be told)",
        field_path=".rollbackWindowSeconds",
    )
    def _rollback_possible(self) -> bool:
        return self.action is not DriftAction.ROLLBACK or self.rollback_window_seconds > 0


# --- Status. ---------------------------------------------------------------------------------------------------------


class DriftAssessment(StrEnum):
    """The verdict on the latest drift reading."""

    OK = "Ok"
    BREACH = "Breach"
    INSUFFICIENT_SAMPLES = "InsufficientSamples"
    ERROR = "Error"


class DriftStatus(StatusModel):
    """The latest drift reading and what it led to."""

    score: float | None = None
    """Latest drift score (largest per-feature value of method)."""
    method: DriftMetric | None = None
    """Statistic the score was computed with."""
    threshold: float | None = None
    """Threshold in effect for the reading."""
    assessment: DriftAssessment | None = None
    """Verdict on the latest reading: Ok, Breach, InsufficientSamples or Error."""
    features: Annotated[list[MetricValue], Field(max_length=DRIFT_TOP_FEATURES)] = []
    """The most drifted features, largest first."""
    samples: int | None = None
    """Inputs in the live window at the latest reading."""
    last_scrape_time: Timestamp | None = None
    """When drift was read: written at a reading that changed anything else in status.drift, or at least every
    5 minutes while the readings change nothing."""
    consecutive_breaches: int = 0
    """Breaching readings in a row."""
    breaching_since: Timestamp | None = None
    """When the current run of breaching readings began: the start of the drift, which tells whether it followed a
    roll forward (actions Rollback and Retrain)."""
    consecutive_errors: int = 0
    """Failed readings in a row: counted exactly up to consecutiveErrorLimit (the service is Degraded there), then
    written at most every 5 minutes, so a Prometheus that is down does not make every service write at every reading."""
    message: str | None = None
    """Details of the latest reading, e.g. why it failed."""
    last_action: DriftAction | None = None
    """The last action drift fired."""
    last_action_time: Timestamp | None = None
    """When it fired."""
    last_retrain_job: str | None = None
    """Name of the last TrainingJob drift started (retrains are one at a time, spaced by the cooldown)."""
