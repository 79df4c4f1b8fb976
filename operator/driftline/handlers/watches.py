"""The operator's view of the cluster (k8s/cache.py), kept current by kopf's watch events: every InferenceService,
every ModelVersion (as what serving reads of it), and the services' own Deployments, Services, disruption budgets and
retrain TrainingJobs, the last four watched with a server-side label selector (handlers/startup.py), never every
object of their kind in the cluster.

Why event handlers and not kopf's indexes: kopf holds an indexed kind's handlers until every object of every indexed
kind is indexed, and with settings.queueing.worker_limit below the number of objects that never happens (the first
100 workers wait for the rest, which wait for a worker). The limit is what keeps the operator's memory under 150 MB
at 11,000 objects, so the view is filled here, from the same watches, and primed from a listing per namespace.

Registered before the handlers that reconcile on these events (handlers/__init__.py), so a reconcile triggered by an
event reads that event's object. Async: an event costs no handler thread.
"""

from __future__ import annotations

from typing import Any

import kopf

from driftline.api import constants as c
from driftline.k8s import cache, connections, objects

VIEW = cache.VIEW

OWNED = c.LABEL_INFERENCE_SERVICE
"""The label every child of an InferenceService carries: the server-side selector of the children's watches."""


SERVICES, VERSIONS = f"{c.INFERENCE_SERVICE.plural}.{c.GROUP}", f"{c.MODEL_VERSION.plural}.{c.GROUP}"
DEPLOYMENTS, K8S_SERVICES, BUDGETS = "deployments.apps", "services", "poddisruptionbudgets.policy"
# Every listed object of these kinds meets its handler below: the custom kinds unfiltered, the children filtered by
# the same label their watches select on the server.
for _kind in (SERVICES, VERSIONS, DEPLOYMENTS, K8S_SERVICES, BUDGETS):
    connections.BACKLOG.count(_kind)


def _keep(where: cache.Bodies | cache.Versions, body: kopf.Body, type: str | None, listed: str = "") -> None:
    """`body` held in `where` (or forgotten, if deleted); `listed`: the kind whose listing's objects are counted."""
    if listed and type is None:  # one of a listing's objects: kopf has taken it from its queue
        connections.BACKLOG.met(listed)
    if type == "DELETED":
        where.delete(body)
    else:
        where.put(dict(body))


@kopf.on.event(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural)
async def keep_inferenceservice(body: kopf.Body, type: str | None, **_: Any) -> None:
    _keep(VIEW.services, body, type, listed=SERVICES)


@kopf.on.event(c.GROUP, c.VERSION, c.MODEL_VERSION.plural)
async def keep_modelversion(body: kopf.Body, type: str | None, **_: Any) -> None:
    _keep(VIEW.versions, body, type, listed=VERSIONS)


@kopf.on.event("apps", "v1", "deployments", labels={OWNED: kopf.PRESENT})
async def keep_deployment(body: kopf.Body, type: str | None, **_: Any) -> None:
    _keep(VIEW.deployments, body, type, listed=DEPLOYMENTS)


@kopf.on.event("", "v1", "services", labels={OWNED: kopf.PRESENT})
async def keep_service(body: kopf.Body, type: str | None, **_: Any) -> None:
    _keep(VIEW.k8s_services, body, type, listed=K8S_SERVICES)


@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels={OWNED: kopf.PRESENT})
async def keep_budget(body: kopf.Body, type: str | None, **_: Any) -> None:
    _keep(VIEW.budgets, body, type, listed=BUDGETS)


@kopf.on.event(c.GROUP, c.VERSION, c.TRAINING_JOB.plural, labels={OWNED: kopf.PRESENT})
async def keep_retrain(body: kopf.Body, type: str | None, **_: Any) -> None:
    _keep(VIEW.retrains, body, type)


def listings(namespace: str) -> list[tuple[cache.Bodies | cache.Versions, cache.Snapshot]]:
    """Where each watched kind goes in the view, and how to list it in `namespace` (children by the same selector
    their watches use)."""
    return [
        (VIEW.services, lambda: objects.all_of(c.INFERENCE_SERVICE, namespace)),
        (VIEW.versions, lambda: objects.all_of(c.MODEL_VERSION, namespace)),
        (VIEW.deployments, lambda: objects.all_deployments(namespace, OWNED)),
        (VIEW.k8s_services, lambda: objects.all_services(namespace, OWNED)),
        (VIEW.budgets, lambda: objects.all_pdbs(namespace, OWNED)),
        (VIEW.retrains, lambda: objects.all_of(c.TRAINING_JOB, namespace, OWNED)),
    ]


def prime(namespace: str) -> cache.Cache:
    """The view, with `namespace` filled from a listing if nothing read it before (kopf's watches of the kinds are
    independent: a service resumed at start could be reconciled before kopf has listed its model's versions)."""
    if not VIEW.primed(namespace):
        VIEW.prime(namespace, listings(namespace))
    return VIEW


def retrains_of(namespace: str, service: str) -> list[dict[str, Any]]:
    """The TrainingJobs labelled as `service`'s retrains."""
    view = prime(namespace)
    found = (view.retrains.get(namespace, name) for name in view.retrains.in_group(namespace, service))
    return [job for job in found if job is not None]
