"""Adaptive batching in the serving pods: the rows of concurrent requests predicted in one call of the model."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from driftline.api.base import ApiModel, rule
from driftline.api.fields import Duration, Int, parse_duration

MAX_WAIT_SECONDS: Final = 1.0
"""The server's own bound on --batch-max-wait-seconds."""


class BatchingSpec(ApiModel):
    """How the serving pods batch concurrent requests. A call of a scikit-learn model has a fixed cost far above its
    per-row work (a forest's is its per-tree loop), so requests that arrive together are predicted together; each
    still gets only its own rows' answer, and a request the model refuses fails alone."""

    max_rows: Annotated[Int, Field(ge=0, le=65536)] = 256
    """Most rows in one call of the model. 0 turns batching off: each request calls the model alone."""
    max_wait: Duration = "0s"
    """How long a request may wait for others to share its call. 0s (the default) batches only the requests that
    arrived together, adding no latency; a few milliseconds make bigger batches under light load. At most 1s."""

    @rule(
        "duration(self.maxWait) <= duration('1s')",
        "maxWait must be at most 1s: a request would wait longer for others than most clients wait for an answer",
        field_path=".maxWait",
    )
    def _wait_bounded(self) -> bool:
        return parse_duration(self.max_wait) <= MAX_WAIT_SECONDS

    @property
    def max_wait_seconds(self) -> float:
        return parse_duration(self.max_wait)
