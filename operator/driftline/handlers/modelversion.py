"""ModelVersion: a Candidate on arrival; promoted or rejected on a person's or Git's request (annotations); one
Production version per model."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from typing import Any

import kopf

from driftline.api import constants as c
from driftline.api.modelversion import BAD_STAGES, ModelVersionStatus, Stage
from driftline.decide import promotion
from driftline.handlers import registry, watches
from driftline.handlers.locks import lock
from driftline.handlers.startup import ERROR_DELAYS
from driftline.k8s import events, objects
from driftline.telemetry import reconciler

RETRY_DELAYS = ERROR_DELAYS
"""The back-off kopf gives change handlers, for the retries kopf does not make of an event handler."""

_retrying: set[tuple[str, str]] = set()
"""Versions with a retry under way: at most one each, so an API outage never piles them up."""
_tasks: set[asyncio.Task[None]] = set()


@kopf.on.event(c.GROUP, c.VERSION, c.MODEL_VERSION.plural)
async def on_modelversion(
    body: kopf.Body, type: str | None, namespace: str | None, name: str | None, logger: kopf.Logger, **_: Any
) -> None:
    """Level-based on every event, the first listing included: what a version needs is in its annotations and status
    (promotion.pending), so it needs none of kopf's bookkeeping. A change handler would make kopf annotate every
    version it has not met before, one PATCH and a five-second wait for consistency each: starting into 10,000
    versions, that held all their bodies for minutes. Most versions need nothing and cost no request at all."""
    pending = _pending(body)
    if type == "DELETED" or not namespace or not name or pending is None:
        return
    key, model = (namespace, name), str(body["spec"].get("model", ""))
    if key in _retrying:
        return
    if pending is promotion.Request.DEDUPE and watches.VIEW.primed(namespace) and not _duplicated(namespace, model):
        return  # the one Production version of its model, as the watches see the model: no thread, no read
    try:
        await asyncio.to_thread(_reconcile_named, namespace, name, model, pending)
    except Exception as e:  # an event handler is not retried by kopf: the version's own retry is
        _retrying.add(key)
        task = asyncio.create_task(_retry(key, model, logger, e))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)


async def _retry(key: tuple[str, str], model: str, logger: kopf.Logger, error: Exception) -> None:
    try:
        for delay in itertools.chain(RETRY_DELAYS, itertools.repeat(RETRY_DELAYS[-1])):
            logger.warning(f"reconciling {key[1]} failed, retrying in {delay}s: {error}")
            await asyncio.sleep(delay)
            try:
                await asyncio.to_thread(_reconcile_named, *key, model)
                return
            except Exception as e:
                error = e
    finally:
        _retrying.discard(key)


def _duplicated(namespace: str, model: str) -> bool:
    """Whether the operator's view holds more than one Production version of `model`."""
    held = watches.prime(namespace).versions.of(namespace, model)
    return promotion.several_in_production([promotion.Registered(v.name, v.version, v.stage) for v in held])


def _reconcile_named(namespace: str, name: str, model: str, pending: promotion.Request | None = None) -> None:
    """Re-read under the model's lock: the watch event may be older than what another handler just wrote. A version
    asking for nothing but being its model's one Production version (every Production version at start) costs no
    read."""
    if pending is promotion.Request.DEDUPE and not _duplicated(namespace, model):
        return
    with lock(("model", namespace, model)):
        mv = objects.get(c.MODEL_VERSION, namespace, name)
        if mv is None or mv["metadata"].get("deletionTimestamp"):
            return
        reconcile(mv)


def _pending(mv: Mapping[str, Any]) -> promotion.Request | None:
    return promotion.pending(mv["metadata"].get("annotations") or {}, mv.get("status") or {})


@reconciler("ModelVersion")
def reconcile(mv: dict[str, Any]) -> None:
    meta, status = mv["metadata"], mv.get("status") or {}
    ns, name, model = meta["namespace"], meta["name"], mv["spec"]["model"]
    annotations = meta.get("annotations") or {}
    pending = _pending(mv)
    if pending in (promotion.Request.PROMOTE, promotion.Request.REGISTER) and _refused_shared(mv, pending):
        return
    match pending:
        case promotion.Request.REJECT:
            reject_req = annotations[c.ANNOTATION_REJECT]
            registry.reject(
                mv,
                c.Reason.REJECT_REQUESTED,
                f"rejected on request: {reject_req}",
                ModelVersionStatus(last_reject_request=reject_req),
            )
        case promotion.Request.PROMOTE:
            promote_req, stage = annotations[c.ANNOTATION_PROMOTE], status.get("stage")
            if stage in BAD_STAGES:
                # A person may overrule a gate: an explicit request wins over an automatic verdict, and is recorded.
                events.warning(mv, c.Reason.PROMOTE_REQUESTED, f"promoting {name} although it was {stage}")
            registry.promote(
                mv,
                f"annotation:{c.ANNOTATION_PROMOTE}",
                f"promoted on request ({promote_req})",
                c.Reason.PROMOTED,
                ModelVersionStatus(last_promote_request=promote_req),
            )
        case promotion.Request.REGISTER:
            # Registered by hand or by Git: it waits as a Candidate until a policy or a person promotes it.
            objects.patch_status(
                c.MODEL_VERSION,
                ns,
                name,
                registry.stage_status(mv, Stage.CANDIDATE, c.Reason.REGISTERED, "registered"),
                resource_version=meta.get("resourceVersion"),
            )
            events.normal(mv, c.Reason.REGISTERED, f"{name} registered as Candidate")
        case promotion.Request.DEDUPE:
            # The newest promotion wins.
            keep = promotion.survivor(registry.registered(registry.versions_of(ns, model)))
            if keep and keep != name:
                registry.archive_others(ns, model, keep)


def _refused_shared(mv: dict[str, Any], pending: promotion.Request) -> bool:
    """Registering or promoting a version whose artifact an older version names: Rejected, whoever asked (the request
    is recorded as handled, so it is not retried)."""
    meta, uri = mv["metadata"], mv["spec"]["artifact"]["storageUri"]
    owner = promotion.artifact_owner(meta["name"], registry.artifact_holders(meta["namespace"], uri))
    if owner is None:
        return False
    message = f"its artifact {uri} is {owner}'s: two versions never share an artifact; train or upload a new one"
    if pending is promotion.Request.PROMOTE:
        handled = ModelVersionStatus(last_promote_request=(meta.get("annotations") or {}).get(c.ANNOTATION_PROMOTE))
        registry.reject(mv, c.Reason.ARTIFACT_SHARED, message, handled)
    else:
        registry.reject(mv, c.Reason.ARTIFACT_SHARED, message)
    return True
