"""A shadow challenger of an InferenceService: another version served on a mirrored share of the live traffic, which
never answers a client, scored on the same ground truth as the version that does."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from driftline.api.base import ApiModel, StatusModel, rule
from driftline.api.common import MetricValue
from driftline.api.fields import Duration, Float, Int, ModelVersionNumber, Timestamp, parse_duration


class ShadowSpec(ApiModel):
    """Run a challenger version in shadow: the serving pods mirror a share of their requests (and the labels sent back
    for them) to it, asynchronously, through a bounded queue that never adds latency or errors to a client's request."""

    version: ModelVersionNumber | None = None
    """The version to evaluate (a version of spec.model, not the one served). Without it, the model's newest version
    in stage Evaluating whose online gate (promotion.online.service) names this service, if any: candidates are then
    judged here, promoted if they win, rejected if they lose."""
    share: Annotated[Float, Field(gt=0, le=1)] = 0.2
    """Share of the served requests mirrored to the challenger."""
    replicas: Annotated[Int, Field(ge=1, le=10)] = 1
    """Pods of the challenger."""
    scrape_interval: Duration = "30s"
    """How often status.shadow is read from the pods."""

    @rule(
        "duration(self.scrapeInterval) >= duration('1s')",
        "scrapeInterval must be at least 1s: the pods would be read without pause",
        field_path=".scrapeInterval",
    )
    def _interval_positive(self) -> bool:
        return parse_duration(self.scrape_interval) >= 1


class ShadowStatus(StatusModel):
    """How the challenger does on the mirrored traffic, next to the version served."""

    version: int | None = None
    """The challenger version."""
    mirrored: int = 0
    """Requests the serving pods mirrored to it and it answered."""
    dropped: int = 0
    """Requests not mirrored: the serving pods' queue was full (the challenger is too slow for the share)."""
    errors: int = 0
    """Mirrored requests it did not answer."""
    agreement: float | None = None
    """Share of the compared rows where its prediction equalled the served version's (classification)."""
    compared: int = 0
    """Rows compared."""
    latency_p95_seconds: float | None = None
    """95th percentile of its answer time to mirrored requests."""
    challenger: Annotated[list[MetricValue], Field(max_length=8)] = []
    """Its live metrics on the labelled mirrored rows (NaN-free: metrics not yet defined are left out)."""
    challenger_samples: int | None = None
    """Labelled rows behind them."""
    production: Annotated[list[MetricValue], Field(max_length=8)] = []
    """The served version's live metrics, for comparison."""
    production_samples: int | None = None
    """Labelled rows behind them."""
    message: str | None = None
    """Why something could not be read."""
    last_read_time: Timestamp | None = None
    """When the pods were read."""
