"""Operator-wide kopf settings: bookkeeping under driftline.dev/, capped back-off, peering; the login, shared by kopf
(its connections capped) and the handlers."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import os
import socket
from typing import Any

import kopf

from driftline import config
from driftline.api import constants as c
from driftline.handlers import diffbase
from driftline.k8s import client, connections

ERROR_DELAYS = (1, 2, 5, 10, 20, 30, 60, 60, 120)
"""Seconds before each retry of a failing handler, then every last one: capped, never a hot loop."""


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # A retrying handler's progress goes into annotations under our prefix, never into the validated status; the diff
    # base stays in this process (handlers/diffbase.py): no write of kopf's own per created or changed object.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.KOPF_PREFIX)
    settings.persistence.diffbase_storage = diffbase.STORE
    settings.persistence.finalizer = c.FINALIZER
    # A failing handler retries with a capped back-off, never a hot loop.
    settings.batching.error_delays = ERROR_DELAYS
    settings.execution.max_workers = client.HANDLER_THREADS
    settings.posting.level = logging.WARNING  # Events are posted explicitly, one per decision
    # Who posted them, as `kubectl get events -o wide` shows it: the operator, and which of its pods (the chart's
    # POD_ID is the pod's name, as the hostname is).
    settings.posting.reporting_component = c.REPORTING_CONTROLLER
    settings.posting.reporting_instance = os.environ.get("POD_ID") or socket.gethostname()
    settings.posting.event_name_prefix = "driftline-"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # The first listing in pages: 10,000 versions in one response are 30 MB of JSON held at once.
    settings.watching.chunk_size = 500
    # At most this many objects of a kind in processing at once (kopf's default: all of them, each worker holding its
    # body and kopf's copies while it waits for a handler thread: 400 MB when starting into 10,000 versions), and the
    # first listing waits for them (k8s/connections.py); an idle worker frees its place after 0.05 s (kopf's default:
    # 5 s, during which a version that needed nothing held a place that 10,000 others queue for; 1 s: 154 MB at 11,000
    # objects instead of 138-141 MB; 0.2 s: 100 workers took 20 s through 10,000 listed versions).
    settings.queueing.worker_limit = connections.WORKER_LIMIT
    # Only the operator's own children and training Jobs, selected by the API server: never every Deployment,
    # Service, budget and Job of the cluster, decoded to be dropped by a client-side filter.
    for resource in (("apps", "v1", "deployments"), ("", "v1", "services"), ("policy", "v1", "poddisruptionbudgets")):
        settings.watching.label_selectors[resource] = c.LABEL_INFERENCE_SERVICE
    settings.watching.label_selectors["batch", "v1", "jobs"] = (
        f"{c.LABEL_TRAINING_JOB},{c.LABEL_COMPONENT}={c.COMPONENT_TRAINER}"
    )
    settings.queueing.idle_timeout = 0.05


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's own login, for kopf's session and the handlers' (k8s.client) alike; called again by kopf whenever the API
    server answers 401. Async: the session must be made in kopf's event loop, not in a handler thread."""
    info = credentials(**kwargs)
    if info is None:
        return None
    client.use(info)
    return connections.capped_session(info)


def credentials(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The pod's ServiceAccount, else the kubeconfig, read by kopf. Through the kubernetes client if it is installed
    (kopf has imported it then anyway): it alone runs a kubeconfig's exec plugins and auth providers."""
    if importlib.util.find_spec("kubernetes") is not None:
        return kopf.login_via_client(**kwargs)
    in_cluster = kopf.login_with_service_account(**kwargs)
    if in_cluster is not None:
        # kopf names the API server https://kubernetes.default.svc, which only cluster DNS resolves; the kubelet's
        # KUBERNETES_SERVICE_HOST/PORT say where it is without DNS (client-go's InClusterConfig reads them).
        server = config.in_cluster_server(os.environ)
        return dataclasses.replace(in_cluster, server=server) if server else in_cluster
    return kopf.login_with_kubeconfig(**kwargs)
