"""Operator-wide kopf settings: bookkeeping under driftline.dev/, capped back-off, peering; kopf's login, with its
connections capped."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from driftline.api import constants as c
from driftline.k8s import connections

ERROR_DELAYS = (1, 2, 5, 10, 20, 30, 60, 60, 120)
"""Seconds before each retry of a failing handler, then every last one: capped, never a hot loop."""


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's progress and diff-base go into annotations under our prefix, never into the validated status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = c.FINALIZER
    # A failing handler retries with a capped back-off, never a hot loop.
    settings.batching.error_delays = ERROR_DELAYS
    settings.execution.max_workers = 8
    settings.posting.level = logging.WARNING  # Events are posted explicitly, one per decision
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # The first listing in pages: 10,000 versions in one response are 30 MB of JSON held at once.
    settings.watching.chunk_size = 500
    # At most this many objects of a kind in processing at once (kopf's default: all of them, each worker holding its
    # body and kopf's copies while it waits for a handler thread: 400 MB when starting into 10,000 versions); an idle
    # worker frees its place after a second instead of five.
    settings.queueing.worker_limit = 500
    settings.queueing.idle_timeout = 1.0


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's own login (in-cluster ServiceAccount, else kubeconfig, through the kubernetes client), over a session
    with a bounded number of connections. Called again by kopf whenever the API server answers 401. Async: the
    session must be made in kopf's event loop, not in a handler thread."""
    info = kopf.login_via_client(**kwargs)
    return None if info is None else connections.capped_session(info)
