"""Live performance watching of an InferenceService: the served version's quality on the labelled rows clients send
back (ground truth), judged against a floor or against its own validation metric, and what follows."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field

from driftline.api.base import ApiModel, rule
from driftline.api.fields import Bool, Float, Int
from driftline.api.monitor import MonitorPolicy, MonitorStatus


class PerformanceMetric(StrEnum):
    """A quality metric, named as the trainer names validation metrics (ModelVersion status.metrics)."""

    ACCURACY = "accuracy"
    F1 = "f1"  # binary classifiers: the greater class is positive
    F1_MACRO = "f1_macro"  # multiclass classifiers
    ROC_AUC = "roc_auc"
    LOG_LOSS = "log_loss"
    RMSE = "rmse"
    MAE = "mae"
    R2 = "r2"


LOWER_IS_BETTER: Final = frozenset({PerformanceMetric.LOG_LOSS, PerformanceMetric.RMSE, PerformanceMetric.MAE})
BOUNDED: Final = frozenset(
    {PerformanceMetric.ACCURACY, PerformanceMetric.F1, PerformanceMetric.F1_MACRO, PerformanceMetric.ROC_AUC}
)
"""Metrics within 0..1."""


class FeedbackSpec(ApiModel):
    """How long each serving pod keeps its predictions for their labels. Memory is fixed: maxRows rows of inputs and
    predictions per pod."""

    max_rows: Annotated[Int, Field(ge=1, le=10_000_000)] = 10_000
    """Predicted rows kept per pod; a label for an older row is answered 410 expired."""
    max_age_seconds: Annotated[Int, Field(ge=1, le=30 * 86400)] = 3600
    """A prediction takes its label this long at most."""


class PerformanceSpec(MonitorPolicy):
    """Watch the served version's quality on labelled live rows (POST .../feedback) and act when it falls."""

    enabled: Bool = True
    """Switch performance watching off without deleting its settings (pods keep predictions for labels either way)."""
    metric: PerformanceMetric = PerformanceMetric.ACCURACY
    """The metric judged: accuracy, f1 (binary), f1_macro (multiclass), roc_auc, log_loss; rmse, mae, r2 for
    regression."""
    threshold: Float | None = None
    """Absolute floor (ceiling for log_loss, rmse and mae): a reading breaches when the metric is worse than this."""
    max_degradation: Annotated[Float, Field(gt=0)] | None = None
    """Relative to the served version's own validation metric: a reading breaches when the metric is worse than it by
    more than this, e.g. 0.05 for "no more than 5 points of accuracy below validation"."""
    window_size: Annotated[Int, Field(ge=10, le=1_000_000)] = 1000
    """Labelled rows the metric is computed over, per pod (the newest)."""
    feedback: FeedbackSpec = Field(default_factory=FeedbackSpec, json_schema_extra={"default": {}})
    """How long predictions wait for their labels."""

    @rule(
        "has(self.threshold) != has(self.maxDegradation)",
        "set exactly one of threshold (absolute) or maxDegradation (relative to the version's validation metric)",
        field_path=".threshold",
    )
    def _one_bound(self) -> bool:
        return (self.threshold is None) != (self.max_degradation is None)

    @rule(
        "!has(self.threshold) || !(self.metric in ['accuracy', 'f1', 'f1_macro', 'roc_auc']) "
        "|| (self.threshold > 0.0 && self.threshold <= 1.0)",
        "threshold must be within (0, 1] for accuracy, f1, f1_macro and roc_auc",
        field_path=".threshold",
    )
    def _threshold_in_range(self) -> bool:
        return self.threshold is None or self.metric not in BOUNDED or 0 < self.threshold <= 1

    @rule(
        "self.windowSize >= self.minSamples",
        "windowSize must hold at least minSamples labelled rows, or no reading could ever be judged",
        field_path=".windowSize",
    )
    def _window_holds_min_samples(self) -> bool:
        return self.window_size >= self.min_samples


class PerformanceStatus(MonitorStatus):
    """The latest live performance reading and what it led to."""

    value: float | None = None
    """Latest value of metric on the labelled window."""
    metric: PerformanceMetric | None = None
    """Metric the value is of."""
    threshold: float | None = None
    """The bound in effect: spec.threshold, or the validation value less maxDegradation."""
    validation: float | None = None
    """The served version's validation value of metric (ModelVersion status.metrics), with maxDegradation."""
