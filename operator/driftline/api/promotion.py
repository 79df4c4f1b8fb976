"""The promotion policy of a TrainingJob: when a new ModelVersion may become Production on its own."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from driftline.api.base import ApiModel
from driftline.api.fields import Bool, Float, MetricName


class ComparisonOp(StrEnum):
    """How a metric is compared with a gate's value."""

    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"

    def holds(self, left: float, right: float) -> bool:
        """Whether `left <op> right`."""
        match self:
            case ComparisonOp.GE:
                return left >= right
            case ComparisonOp.LE:
                return left <= right
            case ComparisonOp.GT:
                return left > right
            case ComparisonOp.LT:
                return left < right


class MetricGate(ApiModel):
    """A minimum bar: the candidate's metric must compare with a fixed value, e.g. accuracy >= 0.9."""

    metric: MetricName
    """Name of the metric in the ModelVersion's spec.metrics, e.g. accuracy, f1, roc_auc, rmse, r2. A metric the
    version does not report fails the gate."""
    op: ComparisonOp = ComparisonOp.GE
    """Comparison: >=, <=, > or <."""
    value: Float
    """The value compared against."""


class MustBeat(ApiModel):
    """A relative bar: the candidate must beat the model's current Production version on one metric."""

    metric: MetricName
    """Name of the metric both versions report, e.g. accuracy or rmse."""
    min_delta: Annotated[Float, Field(ge=0)] = 0.0
    """How much better the candidate must be: it passes when candidate - production >= minDelta for a score
    (production - candidate for a loss). With 0 a tie passes."""
    higher_is_better: Bool = True
    """True for scores (accuracy, f1, r2), false for losses (rmse, mae, log_loss)."""


class PromotionPolicy(ApiModel):
    """Whether and when a version trained by this TrainingJob becomes Production without a person."""

    auto: Bool = False
    """Promote automatically when every gate passes. When false the version stays Candidate until a person or Git
    asks with the annotation driftline.dev/promote: "true" on the ModelVersion."""
    gates: Annotated[list[MetricGate], Field(max_length=16)] = []
    """Minimum bars, all of which must pass. A failed gate sets the version Rejected with each failed gate and its
    numbers in status.reason."""
    must_beat: MustBeat | None = None
    """Also require beating the current Production version on a metric. With no Production version yet, it
    passes."""
