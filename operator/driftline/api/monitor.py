"""What every monitor of a served model shares (drift of its inputs, its live performance on labelled rows): readings
every scrapeInterval from the pods or a Prometheus server, a run of breaching readings that confirms, the action that
follows, and the run's status."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from driftline.api.base import ApiModel, StatusModel, rule
from driftline.api.common import MetricSource, pods_source
from driftline.api.fields import Bool, Duration, Int, Timestamp, parse_duration


class MonitorAction(StrEnum):
    """What a confirmed breach does."""

    ROLLBACK = "Rollback"
    RETRAIN = "Retrain"
    ALERT = "Alert"
    NONE = "None"


class Assessment(StrEnum):
    """The verdict on the latest reading."""

    OK = "Ok"
    BREACH = "Breach"
    INSUFFICIENT_SAMPLES = "InsufficientSamples"
    ERROR = "Error"


class MonitorPolicy(ApiModel):
    """How readings are taken and what a confirmed breach does."""

    enabled: Bool = True
    """Switch the monitor off without deleting its settings."""
    min_samples: Annotated[Int, Field(ge=1, le=1_000_000)] = 200
    """Fewest rows the window must hold for a reading to be judged; fewer is InsufficientSamples, never a breach."""
    consecutive: Annotated[Int, Field(ge=1, le=100)] = 3
    """Breaching readings in a row needed before the action fires."""
    consecutive_error_limit: Annotated[Int, Field(ge=1, le=100)] = 5
    """Failed readings in a row (unreachable, garbled or missing metrics) after which the service is marked
    Degraded. Errors never count as breaches."""
    action: MonitorAction = MonitorAction.ALERT
    """What a confirmed breach does. Rollback: return to the previous version if the breach began within
    rollbackWindowSeconds of a roll forward. Retrain: start a TrainingJob from spec.retrain.template. Alert: a
    Warning Event and the condition only. None: record the reading only."""
    rollback_window_seconds: Annotated[Int, Field(ge=0, le=30 * 86400)] = 3600
    """How long after a roll forward a breach still counts as caused by it, and is rolled back (actions Rollback and
    Retrain). Later breaches are alerted (Rollback) or retrained on (Retrain)."""
    source: MetricSource = Field(default_factory=pods_source, json_schema_extra={"default": {"pods": {}}})
    """Where readings come from: the serving pods' /metrics, or a Prometheus query returning the value."""
    scrape_interval: Duration = "30s"
    """How often a reading is taken."""

    @rule(
        "duration(self.scrapeInterval) >= duration('1s')",
        "scrapeInterval must be at least 1s: readings would be taken without pause",
        field_path=".scrapeInterval",
    )
    def _interval_positive(self) -> bool:
        return parse_duration(self.scrape_interval) >= 1

    @rule(
        "self.action != 'Rollback' || self.rollbackWindowSeconds > 0",
        "action Rollback needs rollbackWindowSeconds above 0: a breach never begins within 0s of a roll forward, so "
        "nothing would ever be rolled back (use Alert to only be told)",
        field_path=".rollbackWindowSeconds",
    )
    def _rollback_possible(self) -> bool:
        return self.action is not MonitorAction.ROLLBACK or self.rollback_window_seconds > 0


class MonitorStatus(StatusModel):
    """The latest reading's verdict and the run of readings it belongs to."""

    assessment: Assessment | None = None
    """Verdict on the latest reading: Ok, Breach, InsufficientSamples or Error."""
    samples: int | None = None
    """Rows in the window at the latest reading."""
    last_scrape_time: Timestamp | None = None
    """When the reading was taken: written at a reading that changed anything else in this status, or at least every
    5 minutes while the readings change nothing."""
    consecutive_breaches: int = 0
    """Breaching readings in a row."""
    breaching_since: Timestamp | None = None
    """When the current run of breaching readings began, which tells whether it followed a roll forward (actions
    Rollback and Retrain)."""
    consecutive_errors: int = 0
    """Failed readings in a row: counted exactly up to consecutiveErrorLimit (the service is Degraded there), then
    written at most every 5 minutes, so a Prometheus that is down does not make every service write at every reading."""
    message: str | None = None
    """Details of the latest reading, e.g. why it failed."""
    last_action: MonitorAction | None = None
    """The last action the monitor fired."""
    last_action_time: Timestamp | None = None
    """When it fired."""
    last_retrain_job: str | None = None
    """Name of the last TrainingJob this monitor started (retrains are one at a time, spaced by the cooldown)."""
