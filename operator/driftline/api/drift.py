"""Drift watching of an InferenceService: how live inputs are compared with the training data, and what follows."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field

from driftline.api.base import ApiModel, rule
from driftline.api.common import MetricValue
from driftline.api.constants import DRIFT_TOP_FEATURES
from driftline.api.fields import Bool, Float, Int
from driftline.api.monitor import MonitorPolicy, MonitorStatus

PSI_MAX: Final = 10.0
"""PSI has no upper bound; a threshold beyond this is a mistake, not a policy."""


class DriftMetric(StrEnum):
    """Per-feature drift statistic between the training profile and the live window."""

    PSI = "psi"  # population stability index: < 0.1 insignificant, 0.1-0.25 minor, > 0.25 major
    KS = "ks"  # Kolmogorov-Smirnov statistic over the binned CDFs, 0..1
    JS = "js"  # Jensen-Shannon distance (base 2), 0..1
    WASSERSTEIN = "wasserstein"  # Wasserstein-1 distance normalised by the reference range, 0..1


class DriftWindow(ApiModel):
    """The live inputs drift is computed over: the last `size` requests, or the last `seconds`."""

    size: Annotated[Int, Field(ge=10, le=1_000_000)] | None = None
    """Count window: the most recent this many inputs."""
    seconds: Annotated[Int, Field(ge=10, le=7 * 86400)] | None = None
    """Time window: the inputs of the last this many seconds."""

    @rule("has(self.size) != has(self.seconds)", "set exactly one of size or seconds", field_path=".size")
    def _exactly_one(self) -> bool:
        return (self.size is None) != (self.seconds is None)


class DriftSpec(MonitorPolicy):
    """Watch live inputs for drift from the training data and act on it."""

    enabled: Bool = True
    """Switch drift watching off without deleting its settings."""
    metric: DriftMetric = DriftMetric.PSI
    """Statistic computed per feature: psi, ks, js or wasserstein."""
    threshold: Annotated[Float, Field(gt=0, le=PSI_MAX)] = 0.25
    """A reading breaches when the drift score (the largest per-feature value of metric) exceeds this. ks, js and
    wasserstein lie in 0..1; psi may go up to 10 (0.25 is the conventional major-shift line)."""
    window: DriftWindow = Field(
        default_factory=lambda: DriftWindow(size=1000), json_schema_extra={"default": {"size": 1000}}
    )
    """The live window compared with the training profile."""

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


# --- Status. ---------------------------------------------------------------------------------------------------------


class DriftStatus(MonitorStatus):
    """The latest drift reading and what it led to."""

    score: float | None = None
    """Latest drift score (largest per-feature value of method)."""
    method: DriftMetric | None = None
    """Statistic the score was computed with."""
    threshold: float | None = None
    """Threshold in effect for the reading."""
    features: Annotated[list[MetricValue], Field(max_length=DRIFT_TOP_FEATURES)] = []
    """The most drifted features, largest first."""
