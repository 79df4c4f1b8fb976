"""The model registry's writes: register a version, promote, archive, reject. Exactly one Production per model."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from driftline.api import constants as c
from driftline.api.modelversion import BAD_STAGES, Evaluation, ModelVersionStatus, Stage
from driftline.decide import conditions as conds
from driftline.decide import promotion
from driftline.handlers import failpoints
from driftline.k8s import events, objects

log = logging.getLogger(__name__)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stage_status(
    mv: dict[str, Any], stage: Stage, reason: str, message: str, *also: ModelVersionStatus
) -> dict[str, Any]:
    """The status patch that puts `mv` in `stage`, with conditions GitOps tools can read, and the fields of `also`."""
    bad = stage in BAD_STAGES  # kstatus reads these as Stalled
    cond_list = conds.merge(
        (mv.get("status") or {}).get("conditions"),
        conds.lifecycle(not bad, reason, message, reconciling=False, stalled=bad),
        mv["metadata"].get("generation"),
        now(),
    )
    patch: dict[str, Any] = {}
    for part in (
        ModelVersionStatus(stage=stage, reason=message, observed_generation=mv["metadata"].get("generation")),
        *also,
    ):
        patch.update(part.api_fields())
    return {**patch, "conditions": cond_list}


def versions_of(namespace: str, model: str) -> list[dict[str, Any]]:
    """Every ModelVersion of `model`, selected by spec.model: a version registered by hand or by Git carries no
    driftline.dev/model label (only the trainer's versions do), and must still count."""
    found = objects.list_(c.MODEL_VERSION, namespace, fields={"spec.model": model})
    return [m for m in found if (m.get("spec") or {}).get("model") == model]


def artifact_holders(namespace: str, storage_uri: str) -> list[promotion.Holder]:
    """Every ModelVersion of the namespace naming `storage_uri` (a selectable field; the schema keeps URIs canonical:
    no trailing or doubled slash, no dot segments)."""
    found = objects.list_(c.MODEL_VERSION, namespace, fields={"spec.artifact.storageUri": storage_uri})
    return [
        promotion.Holder(m["metadata"]["name"], m["metadata"].get("creationTimestamp", ""), _accepted(m))
        for m in found
        if ((m.get("spec") or {}).get("artifact") or {}).get("storageUri") == storage_uri
    ]


def _accepted(mv: dict[str, Any]) -> bool:
    st = mv.get("status") or {}
    ready: dict[str, Any] = next((x for x in st.get("conditions") or [] if x.get("type") == "Ready"), {})
    return bool(st.get("stage")) and ready.get("reason") != c.Reason.ARTIFACT_SHARED


def registered(mvs: list[dict[str, Any]]) -> list[promotion.Registered]:
    return [
        promotion.Registered(
            name=m["metadata"]["name"],
            version=int(m["spec"]["version"]),
            stage=(m.get("status") or {}).get("stage"),
            promoted_at=(m.get("status") or {}).get("promotedAt"),
        )
        for m in mvs
    ]


def production_of(mvs: list[dict[str, Any]]) -> dict[str, Any] | None:
    name = promotion.survivor(registered(mvs))
    return next((m for m in mvs if m["metadata"]["name"] == name), None)


def promote(
    mv: dict[str, Any], by: str, message: str, reason: str = c.Reason.PROMOTED, *also: ModelVersionStatus
) -> None:
    """Make `mv` Production and archive the model's other Production versions. Call under the model's lock."""
    ns, name, model = mv["metadata"]["namespace"], mv["metadata"]["name"], mv["spec"]["model"]
    promoted = ModelVersionStatus(promoted_at=dt.datetime.now(dt.UTC), promoted_by=by)
    status = stage_status(mv, Stage.PRODUCTION, reason, message, promoted, *also)
    objects.patch_status(c.MODEL_VERSION, ns, name, status)
    failpoints.hit("registry.promoted")
    events.normal(mv, reason, f"{name} is now Production ({message})")
    archive_others(ns, model, keep=name)


def archive_others(namespace: str, model: str, keep: str) -> None:
    mvs = versions_of(namespace, model)
    for other_name in promotion.to_archive(registered(mvs), keep):
        other = next(m for m in mvs if m["metadata"]["name"] == other_name)
        msg = f"superseded by {keep}"
        objects.patch_status(
            c.MODEL_VERSION, namespace, other_name, stage_status(other, Stage.ARCHIVED, c.Reason.SUPERSEDED, msg)
        )
        events.normal(other, c.Reason.SUPERSEDED, f"{other_name} archived: {msg}")


def evaluate(mv: dict[str, Any], evaluation: Evaluation, message: str) -> None:
    """`mv` passed its gates and waits for its online evaluation in shadow (promotion.online)."""
    ns, name = mv["metadata"]["namespace"], mv["metadata"]["name"]
    part = ModelVersionStatus(evaluation=evaluation)
    objects.patch_status(
        c.MODEL_VERSION, ns, name, stage_status(mv, Stage.EVALUATING, c.Reason.EVALUATING, message, part)
    )
    events.normal(mv, c.Reason.EVALUATING, f"{name} is Evaluating: {message}")


def reject(mv: dict[str, Any], reason: str, message: str, *also: ModelVersionStatus) -> None:
    ns, name = mv["metadata"]["namespace"], mv["metadata"]["name"]
    objects.patch_status(c.MODEL_VERSION, ns, name, stage_status(mv, Stage.REJECTED, reason, message, *also))
    events.warning(mv, reason, f"{name} rejected: {message}")
