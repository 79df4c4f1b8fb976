"""The promotion policy of a TrainingJob: when a new ModelVersion may become Production on its own."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field

from driftline.api.base import ApiModel, rule
from driftline.api.fields import Bool, Float, Int, MetricName
from driftline.api.performance import PerformanceMetric

SHARES: Final = (
    "accuracy", "balanced_accuracy", "precision", "recall", "f1", "f1_macro", "f1_weighted", "roc_auc",
    "average_precision",
)  # fmt: skip
"""Scores that lie in 0..1 (higher is better)."""
LOSSES: Final = ("log_loss", "rmse", "mae", "mse")
"""Losses: never below 0, lower is better."""
_AT_MOST_ONE: Final = (*SHARES, "r2")


def _cel_list(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{n}'" for n in names) + "]"


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
    """The value compared against. A gate no value could pass is refused: scores such as accuracy, f1 and roc_auc
    lie in 0..1 and r2 at most 1; losses (log_loss, rmse, mae, mse) are never below 0."""

    @rule(
        f"!(self.metric in {_cel_list(_AT_MOST_ONE)}) || !((self.op == '>=' && self.value > 1.0) || "
        "(self.op == '>' && self.value >= 1.0))",
        f"no version can pass this gate: {', '.join(SHARES)} lie in 0..1 and r2 is at most 1",
        field_path=".value",
    )
    def _reachable_from_above(self) -> bool:
        if self.metric not in _AT_MOST_ONE:
            return True
        return not ((self.op is ComparisonOp.GE and self.value > 1) or (self.op is ComparisonOp.GT and self.value >= 1))

    @rule(
        f"!(self.metric in {_cel_list((*SHARES, *LOSSES))}) || !((self.op == '<=' && self.value < 0.0) || "
        "(self.op == '<' && self.value <= 0.0))",
        f"no version can pass this gate: {', '.join(SHARES)} and the losses {', '.join(LOSSES)} are never below 0",
        field_path=".value",
    )
    def _reachable_from_below(self) -> bool:
        if self.metric not in (*SHARES, *LOSSES):
            return True
        return not ((self.op is ComparisonOp.LE and self.value < 0) or (self.op is ComparisonOp.LT and self.value <= 0))


class MustBeat(ApiModel):
    """A relative bar: the candidate must beat the model's current Production version on one metric."""

    metric: MetricName
    """Name of the metric both versions report, e.g. accuracy or rmse."""
    min_delta: Annotated[Float, Field(ge=0)] = 0.0
    """How much better the candidate must be: it passes when candidate - production >= minDelta for a score
    (production - candidate for a loss). With 0 a tie passes."""
    higher_is_better: Bool = True
    """True for scores (accuracy, f1, r2), false for losses (rmse, mae, log_loss); a known metric with the wrong
    direction is refused, since a worse version would win."""

    @rule(
        f"!(self.metric in {_cel_list(LOSSES)} && self.higherIsBetter) && "
        f"!(self.metric in {_cel_list((*SHARES, 'r2'))} && !self.higherIsBetter)",
        "higherIsBetter contradicts the metric: set it false for a loss (log_loss, rmse, mae, mse) and true for a "
        "score (accuracy, f1, roc_auc, r2, ...), or the worse version would win",
        field_path=".higherIsBetter",
    )
    def _direction(self) -> bool:
        if self.metric in LOSSES:
            return not self.higher_is_better
        return self.higher_is_better or self.metric not in (*SHARES, "r2")


class OnlineGate(ApiModel):
    """A bar on live traffic: the candidate, run in shadow by an InferenceService, must beat the version it serves on
    the same labelled live traffic before it becomes Production."""

    service: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$")]
    """The InferenceService (in this namespace, serving this model) that runs candidates in shadow (its spec.shadow
    without a version)."""
    metric: PerformanceMetric = PerformanceMetric.ACCURACY
    """The live metric compared: accuracy, f1, f1_macro, roc_auc, log_loss, rmse, mae or r2."""
    min_samples: Annotated[Int, Field(ge=10, le=1_000_000)] = 200
    """Labelled rows each version's live metric must stand on before the comparison is made."""
    margin: Annotated[Float, Field(ge=0)] = 0.0
    """How much better the candidate must be (in the metric's units; lower for losses). With 0 a tie wins."""


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
    online: OnlineGate | None = None
    """Then require beating the served version online, in shadow: a version that passes the gates is Evaluating
    until the named InferenceService has run it on enough labelled live traffic; it becomes Production if it wins,
    Rejected with the numbers if it loses. A person's promote or reject annotation still decides at any time."""

    @rule(
        "!has(self.online) || self.auto",
        "online needs auto: true (without it a person promotes, and nothing would be evaluated online)",
        field_path=".online",
    )
    def _online_is_automatic(self) -> bool:
        return self.online is None or self.auto

    @rule(
        "self.gates.all(a, self.gates.all(b, a.metric != b.metric || !(a.op in ['>=', '>']) || "
        "!(b.op in ['<=', '<']) || a.value < b.value || (a.value == b.value && a.op == '>=' && b.op == '<=')))",
        "gates on the same metric contradict each other: no value passes them all (e.g. accuracy >= 0.9 with "
        "accuracy < 0.8)",
        field_path=".gates",
    )
    def _gates_agree(self) -> bool:
        for low in self.gates:
            for high in self.gates:
                if low.metric != high.metric or low.op not in (ComparisonOp.GE, ComparisonOp.GT):
                    continue
                if high.op not in (ComparisonOp.LE, ComparisonOp.LT):
                    continue
                both_inclusive = low.op is ComparisonOp.GE and high.op is ComparisonOp.LE
                if not (low.value < high.value or (low.value == high.value and both_inclusive)):
                    return False
        return True
