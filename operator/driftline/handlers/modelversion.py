"""ModelVersion: a Candidate on arrival; promoted or rejected on a person's or Git's request (annotations)."""

from __future__ import annotations

from typing import Any

import kopf

from driftline.api import constants as c
from driftline.decide import promotion
from driftline.handlers import registry
from driftline.handlers.locks import lock
from driftline.k8s import events, objects
from driftline.telemetry import reconciler


@kopf.on.resume(c.GROUP, c.VERSION, c.MODEL_VERSION.plural)
@kopf.on.create(c.GROUP, c.VERSION, c.MODEL_VERSION.plural)
@kopf.on.update(c.GROUP, c.VERSION, c.MODEL_VERSION.plural)
def on_modelversion(name: str, namespace: str | None, spec: kopf.Spec, **_: Any) -> None:
    if not namespace:
        return
    with lock(("model", namespace, spec.get("model", ""))):
        mv = objects.get(c.MODEL_VERSION, namespace, name)
        if mv is None or mv["metadata"].get("deletionTimestamp"):
            return
        reconcile(mv)


@reconciler("ModelVersion")
def reconcile(mv: dict[str, Any]) -> None:
    meta, status = mv["metadata"], mv.get("status") or {}
    ns, name, model = meta["namespace"], meta["name"], mv["spec"]["model"]
    annotations = meta.get("annotations") or {}
    stage = status.get("stage")

    reject_req = annotations.get(c.ANNOTATION_REJECT)
    if reject_req and reject_req != status.get("lastRejectRequest"):
        registry.reject(
            mv, c.Reason.REJECT_REQUESTED, f"rejected on request: {reject_req}", lastRejectRequest=reject_req
        )
        return
    promote_req = annotations.get(c.ANNOTATION_PROMOTE)
    if promote_req and promote_req.lower() != "false" and promote_req != status.get("lastPromoteRequest"):
        if stage in ("Rejected", "RolledBack"):
            # A person may overrule a gate: an explicit request wins over an automatic verdict, and is recorded.
            events.warning(mv, c.Reason.PROMOTE_REQUESTED, f"promoting {name} although it was {stage}")
        registry.promote(
            mv,
            f"annotation:{c.ANNOTATION_PROMOTE}",
            f"promoted on request ({promote_req})",
            lastPromoteRequest=promote_req,
        )
        return
    if stage is None:
        # Registered by hand or by Git: it waits as a Candidate until a policy or a person promotes it.
        objects.patch_status(
            c.MODEL_VERSION,
            ns,
            name,
            registry.stage_status(mv, "Candidate", c.Reason.REGISTERED, "registered"),
            resource_version=meta.get("resourceVersion"),
        )
        events.normal(mv, c.Reason.REGISTERED, f"{name} registered as Candidate")
        return
    if stage == "Production":
        # A crash between promoting one version and archiving the other can leave two; the newest promotion wins.
        mvs = registry.versions_of(ns, model)
        keep = promotion.survivor(registry.registered(mvs))
        if keep and keep != name:
            registry.archive_others(ns, model, keep)
