"""Operator-wide kopf settings: bookkeeping under driftline.dev/, capped back-off, peering."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from driftline.api import constants as c


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's progress and diff-base go into annotations under our prefix, never into the validated status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = c.FINALIZER
    # A failing handler retries with a capped back-off, never a hot loop.
    settings.batching.error_delays = (1, 2, 5, 10, 20, 30, 60, 60, 120)
    settings.execution.max_workers = 8
    settings.posting.level = logging.WARNING  # Events are posted explicitly, one per decision
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
