"""InferenceService -> a stable Deployment of the runtime serving the resolved ModelVersion, a Service, and during a
canary a second Deployment for the new version.

Level-based and restart-safe: every pass reads the InferenceService, the model's versions and the Deployments anew, and
decide.serving (then decide.canary) says what to do. The same pass runs on every trigger: the InferenceService itself
(create, update, resume); its Deployments' rollout progress (so status follows a rollout without sleeping); any
ModelVersion event of the model (a new Production version rolls the service forward, a RolledBack or Rejected one
moves it off); only while a canary's analysis runs, a one-second timer that takes a measurement round whenever the
analysis interval has passed; and, only while a rollout is under way, a look every five seconds (handlers/recheck.py)
that reads why new pods do not start (decide.pods), since a pod that cannot start changes nothing the operator
watches.

What it reads of the cluster comes from the operator's view (handlers/watches.py), kept by the watches: a reconcile
asks the API server nothing, and writes only what changed.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from driftline import config, telemetry
from driftline.api import constants as c
from driftline.api.inferenceservice import (
    FailedImage,
    HistoryEntry,
    InferenceServiceSpec,
    InferenceServiceStatus,
    ServicePhase,
)
from driftline.api.modelversion import Stage
from driftline.config import OperatorConfig
from driftline.decide import authorship, canary, images, monitor, pods, promotion, serving, shadow
from driftline.decide import conditions as conds
from driftline.handlers import authors, failpoints, hints, podstart, readings, recheck, registry, watches
from driftline.handlers import canary as canary_handler
from driftline.handlers import status as status_writer
from driftline.handlers.locks import lock
from driftline.k8s import cache, events, objects
from driftline.render import serving as render
from driftline.render.common import controlled_by
from driftline.telemetry import reconciler


def _write_status(
    isvc: dict[str, Any],
    phase: str,
    conditions: list[conds.Cond],
    *parts: InferenceServiceStatus,
    warn: tuple[str, str] | None = None,
    clear: tuple[str, ...] = (),
) -> None:
    """The status (written only when it changed), and the service's info gauge: its phase and served version."""
    status_writer.write(c.INFERENCE_SERVICE, isvc, phase, conditions, *parts, warn=warn, clear=clear)
    told = [p.active_version for p in parts if "active_version" in p.model_fields_set]
    active = told[-1] if told else (isvc.get("status") or {}).get("activeVersion")
    meta = isvc["metadata"]
    labels = (str(phase), "" if active is None else str(active))
    telemetry.set_info(telemetry.SERVICE_INFO, meta["namespace"], meta["name"], labels)


@kopf.on.resume(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural)
@kopf.on.create(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural)
@kopf.on.update(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural)
def on_inferenceservice(body: kopf.Body, name: str, namespace: str | None, **_: Any) -> None:
    if namespace:
        reconcile(namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels={c.LABEL_INFERENCE_SERVICE: kopf.PRESENT})
async def on_deployment(
    body: kopf.Body, labels: Mapping[str, str], uid: str | None, namespace: str | None, type: str | None, **_: Any
) -> None:
    """Async, so an event that is no news never queues for a handler thread (starting into 1,000 services, the
    Deployments the resume handlers create come back as 1,000 ADDED events while those handlers hold the threads)."""
    if type is None or not namespace or not uid:  # kopf's initial listing: the InferenceService's resume covers it
        return
    if not hints.is_news(_seen_deployments, type, uid, lambda: _facts(body)):
        return
    await asyncio.to_thread(reconcile, namespace, labels[c.LABEL_INFERENCE_SERVICE])


_seen_deployments: dict[str, str] = {}
"""Deployment uid -> serving.deployment_facts of the stable Deployment its service's last reconcile acted on
(handlers.hints)."""


def _facts(dep: Mapping[str, Any]) -> str:
    return serving.deployment_facts(dep, c.LABEL_VERSION, c.ANNOTATION_PREVIOUS_VERSION)


@kopf.on.event(c.GROUP, c.VERSION, c.MODEL_VERSION.plural)
async def on_modelversion_event(
    body: kopf.Body, spec: kopf.Spec, uid: str | None, namespace: str | None, type: str | None, **_: Any
) -> None:
    """A version's stage changed (or it appeared or went away): the services of its model re-resolve what to serve.

    Only changes to what serving reads of a version count: kopf's own annotations and a status write that leaves the
    stage alone would otherwise re-reconcile every service of the model, a storm when an operator starts into
    thousands of versions. What was last seen is a hint that only skips work: after a restart it is empty, the
    first listing refills it and the services' resume handlers re-read every version; a relisting after a lost
    watch compares as any event does. Async, so the comparison never queues for a handler thread behind the services'
    reconciles: only news goes to a thread."""
    if not namespace or not uid or not spec.get("model"):
        return
    before = _seen_versions.pop(uid, None)
    if type != "DELETED":
        after = _seen_versions[uid] = hash(serving.version_of(body))
        if after == before or (type is None and before is None):  # no news, or the first listing (resume covers it)
            return
    await asyncio.to_thread(_reconcile_following, namespace, str(spec["model"]))


def _reconcile_following(namespace: str, model: str) -> None:
    for name in following(namespace, model):
        reconcile(namespace, name)


_seen_versions: dict[str, int] = {}
"""ModelVersion uid -> hash of what serving read of it at its last event. Not the operator's view of the versions: the
view also takes the answers to the operator's own writes, which come before their watch events, so by the view a new
or promoted version would be no news when its event comes."""


def following(namespace: str, model: str) -> list[str]:
    return watches.prime(namespace).services.in_group(namespace, model)


@kopf.timer(
    c.GROUP,
    c.VERSION,
    c.INFERENCE_SERVICE.plural,
    interval=1.0,
    when=lambda status, **_: (
        (status.get("analysis") or {}).get("phase") == "Running" and status.get("canaryVersion") is not None
    ),
)
async def on_canary_tick(name: str, namespace: str | None, **_: Any) -> None:
    """While a canary's analysis runs: take a measurement round whenever its interval has passed, on a reading
    thread (a round reads the tenant's Prometheus or pods)."""
    if namespace:
        await readings.run(reconcile, namespace, name, measure_now=True)


@reconciler("InferenceService")
def reconcile(namespace: str, name: str, measure_now: bool = False) -> None:
    with lock(("inferenceservice", namespace, name)):
        isvc = watches.prime(namespace).services.get(namespace, name)
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            canary_handler.forget(namespace, name)
            telemetry.forget(namespace, name)
            return
        _reconcile(isvc, config.current(), measure_now)


def versions_of(namespace: str, model: str) -> list[serving.Version]:
    return watches.prime(namespace).versions.of(namespace, model)


def _author_refusal(
    isvc: dict[str, Any], spec: InferenceServiceSpec, cfg: OperatorConfig, dep: dict[str, Any] | None
) -> str | None:
    """A custom image about to run (the first Deployment, or a new image) runs only as far as its author may."""
    if not cfg.check_authors or spec.image is None:
        return None
    containers = ((((dep or {}).get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    if containers and containers[0].get("image") == spec.image:
        return None
    return authors.refusal(isvc, authorship.inferenceservice_needs(isvc["spec"]))


def _reconcile(isvc: dict[str, Any], cfg: OperatorConfig, measure_now: bool = False) -> None:
    meta = isvc["metadata"]
    ns = meta["namespace"]
    try:
        spec = InferenceServiceSpec.model_validate(isvc["spec"])
    except ValidationError as e:
        problem = "; ".join(f"spec.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        _write_status(isvc, "Failed", _failed(c.Reason.INVALID_SPEC, problem), warn=(c.Reason.INVALID_SPEC, problem))
        return  # no exception: a hopeless spec is not retried; fixing it triggers on.update

    view = watches.prime(ns)
    dep = _child(view.deployments, objects.get_deployment, ns, render.deployment_name(isvc))
    canary_dep = view.deployments.get(ns, render.deployment_name(isvc, c.TRACK_CANARY))
    svc = _child(view.k8s_services, objects.get_service, ns, render.service_name(isvc))
    # A budget exists only beside more than one replica, asked for or still running: no look for the others.
    may_have_budget = render.may_have_budget(spec, dep)
    pdb = _child(view.budgets, objects.get_pdb, ns, render.service_name(isvc)) if may_have_budget else None
    if _someone_elses(
        isvc, ("Deployment", dep), ("Deployment", canary_dep), ("Service", svc), ("PodDisruptionBudget", pdb)
    ):
        return

    if (why := _author_refusal(isvc, spec, cfg, dep)) is not None:
        reason = c.Reason.AUTHOR_NOT_ALLOWED
        _write_status(isvc, "Failed", _failed(reason, why), warn=(reason, why))
        return

    status = isvc.get("status") or {}
    now = registry.now()
    rollout = _observe(dep)
    # At a progress deadline, why the pods do not start goes into the rollback's message.
    stuck = _pods_problem(isvc) if rollout is not None and rollout.deadline_exceeded else None
    versions = versions_of(ns, spec.model)
    plan = serving.decide(
        spec,
        versions,
        rollout,
        status,
        (meta.get("annotations") or {}).get(c.ANNOTATION_ROLLBACK),
        now,
        stuck.text() if stuck is not None else None,
    )
    if plan.roll_back is not None:
        mark_rolled_back(ns, spec.model, plan.roll_back)
    iplan = images.for_plan(plan, spec, rollout, status, cfg.runtime_image, now, stuck.text() if stuck else None)
    cplan = None
    if plan.step is serving.Step.CANARY and plan.canary is not None and plan.serve is not None:
        if canary_dep is None:  # about to be made: the name may be someone else's Deployment's
            canary_dep = objects.get_deployment(ns, render.deployment_name(isvc, c.TRACK_CANARY))
            if _someone_elses(isvc, ("Deployment", canary_dep)):
                return
        cplan = _run_canary(isvc, spec, cfg, plan.serve, plan.canary, canary_dep, measure_now, now)
    settled = canary.settle(plan, cplan, status, canary_dep is not None)
    stable, previous, active = settled.stable, settled.previous_version, settled.active_version
    if canary_dep is not None and settled.delete_canary:
        objects.delete_deployment(ns, canary_dep["metadata"]["name"])
    challenger, not_shadowed = shadow.challenger(spec, versions, active, meta["name"])
    mirror_url = _run_shadow(isvc, spec, cfg, view, challenger)
    if mirror_url is False:
        return
    if stable is not None and plan.step is not serving.Step.KEEP:
        body = _deployment(
            isvc,
            spec,
            cfg,
            stable,
            previous_version=previous,
            image=iplan.image,
            previous_image=iplan.previous_image,
            mirror_url=mirror_url or None,
        )
        if render.needs_update(dep, body):
            _announce_revert(isvc, "Deployment", dep, body)
            dep = objects.apply_deployment(body)
    svc_body = render.service(isvc, spec)
    if render.needs_update(svc, svc_body):
        _announce_revert(isvc, "Service", svc, svc_body)
        objects.apply_service(svc_body)
    pdb_body = render.pod_disruption_budget(isvc, spec)
    if pdb_body is not None and render.needs_update(pdb, pdb_body):
        objects.apply_pdb(pdb_body)
    elif pdb_body is None and pdb is not None:
        objects.delete_pdb(ns, pdb["metadata"]["name"])
    notes = [*plan.events, *iplan.events, *(cplan.events if cplan is not None else [])]
    for note in notes:
        (events.warning if note.warning else events.normal)(isvc, note.reason, note.message)

    dep_status = (dep or {}).get("status") or {}
    phase, conditions = monitor.overlay(plan.phase, plan.conditions, monitor.why_degraded(spec, status))
    conditions = canary.overlay(conditions, cplan)
    phase, conditions = images.overlay(phase, conditions, iplan)
    not_starting = None
    if phase is ServicePhase.PROGRESSING and pods.worth_reading(_observe(dep), _observe(canary_dep)):
        # The deadline's diagnosis, if there was one: the pods are listed once.
        not_starting = stuck if stuck is not None else _pods_problem(isvc)
    phase, conditions = pods.overlay(phase, conditions, not_starting)
    if not_starting is not None and _ready_text(status) != not_starting.text():
        events.warning(isvc, not_starting.reason, not_starting.text())
    history = [*plan.history, *iplan.history, *(cplan.history if cplan is not None else [])][-c.HISTORY_CAP :]
    # Built from the status model, so a field's name is checked by mypy, not found missing in the cluster later.
    served = InferenceServiceStatus(
        active_version=active,
        previous_version=previous if previous != active else None,
        url=render.url(isvc, spec),
        replicas=int(dep_status.get("replicas") or 0),
        ready_replicas=int(dep_status.get("readyReplicas") or 0),
        selector=render.selector_string(isvc),
        history=[HistoryEntry.model_validate(entry) for entry in history],
        last_rollback_request=plan.last_rollback_request,
        image=live.image if (live := _observe(dep)) is not None else None,
        failed_image=FailedImage.model_validate(iplan.failed) if iplan.failed else None,
    )
    canary_part = status_writer.checked(InferenceServiceStatus, settled.status)
    cleared = ("canaryVersion", "canaryWeight", *(() if iplan.failed else ("failedImage",)))
    if challenger is None:
        cleared += ("shadow",)
    had = any(cond.get("type") == c.ConditionType.SHADOWING for cond in status.get("conditions") or [])
    conditions = [*conditions, *shadow.condition(spec, challenger, not_shadowed, had)]
    ended = [InferenceServiceStatus(shadow=None)] if challenger is None else []  # a part that names it clears it
    _write_status(isvc, phase, conditions, served, canary_part, *ended, clear=cleared)
    if dep is not None:
        _seen_deployments[dep["metadata"]["uid"]] = _facts(dep)
    if (seconds := serving.look_again_in(phase)) is not None:
        # A rollout under way: look again, with no kopf timer (whose finalizer would cost two writes per rollout).
        look = functools.partial(reconcile, ns, meta["name"])
        recheck.after(("rollout", ns, meta["name"]), seconds, look)


def _run_shadow(
    isvc: dict[str, Any],
    spec: InferenceServiceSpec,
    cfg: OperatorConfig,
    view: Any,
    challenger: serving.Version | None,
) -> str | bool:
    """The shadow challenger's Service and Deployment made or kept in line, or its Deployment removed (the Service
    stays, selecting nothing, with its ClusterIP): the URL the serving pods mirror to, "" without a challenger, or
    False when a name is someone else's (reported)."""
    ns = isvc["metadata"]["namespace"]
    name = render.deployment_name(isvc, c.TRACK_SHADOW)
    dep = view.deployments.get(ns, name)
    if challenger is None or spec.shadow is None:
        if dep is not None and controlled_by(dep, isvc["metadata"]["uid"]):
            objects.delete_deployment(ns, name)
            events.normal(isvc, c.Reason.SHADOW_STOPPED, f"the shadow challenger's Deployment {name} is removed")
        return ""
    svc = _child(view.k8s_services, objects.get_service, ns, render.shadow_service_name(isvc))
    if dep is None:  # about to be made: the name may be someone else's
        dep = objects.get_deployment(ns, name)
    if _someone_elses(isvc, ("Service", svc), ("Deployment", dep)):
        return False
    svc_body = render.shadow_service(isvc, spec)
    if render.needs_update(svc, svc_body):
        svc = objects.apply_service(svc_body)
    replicas = spec.shadow.replicas
    body = _deployment(isvc, spec, cfg, challenger, previous_version=None, track=c.TRACK_SHADOW, replicas=replicas)
    if render.needs_update(dep, body):
        if dep is None:
            msg = f"version {challenger.version} runs in shadow on {spec.shadow.share:g} of the requests, mirrored"
            events.normal(isvc, c.Reason.SHADOW_STARTED, msg)
        objects.apply_deployment(body)
    return render.mirror_url(svc) or ""


def _someone_elses(isvc: dict[str, Any], *children: tuple[str, dict[str, Any] | None]) -> bool:
    """Whether a child's name is held by an object this InferenceService does not control: then it is reported, and
    looked at again later (nothing the operator watches says when it goes), never adopted or applied over."""
    meta = isvc["metadata"]
    for kind, child in children:
        if child is not None and not controlled_by(child, meta["uid"]):
            msg = f"a {kind} named {child['metadata']['name']} exists and is not this InferenceService's; delete or "
            msg += "rename it"
            _write_status(isvc, "Failed", _failed(c.Reason.CHILD_CONFLICT, msg), warn=(c.Reason.CHILD_CONFLICT, msg))
            look = functools.partial(reconcile, meta["namespace"], meta["name"])
            recheck.after(("inferenceservice", meta["namespace"], meta["name"]), serving.CONFLICT_RECHECK_SECONDS, look)
            return True
    return False


def _child(
    held: cache.Bodies, read: Callable[[str, str], dict[str, Any] | None], namespace: str, name: str
) -> dict[str, Any] | None:
    """A child as the view holds it; read by name only if the view holds none, since only the operator's own carry the
    label its watches select (someone else's object of the name must be found, and never applied over)."""
    found = held.get(namespace, name)
    return found if found is not None else read(namespace, name)


def _announce_revert(isvc: dict[str, Any], kind: str, live: dict[str, Any] | None, desired: dict[str, Any]) -> None:
    """A person's edit of a field the operator renders is undone by the coming apply: say which, and where to change
    it instead."""
    edited = render.edited_fields(live, desired)
    if edited and live is not None:
        name = live["metadata"]["name"]
        what = f"reverted a change to {kind} {name}: {', '.join(edited)[:600]}"
        events.warning(isvc, c.Reason.EDIT_REVERTED, f"{what}; the InferenceService's spec decides these: change it")


def _deployment(
    isvc: dict[str, Any], spec: InferenceServiceSpec, cfg: OperatorConfig, version: serving.Version, **kw: Any
) -> dict[str, Any]:
    """A Deployment of `version` with the operator's settings (runtime image, trusted keys, pod defaults)."""
    return render.deployment(
        isvc,
        spec,
        version,
        runtime_image=cfg.runtime_image,
        trusted_keys=cfg.trusted_keys,
        pod_defaults=cfg.pod_defaults,
        **kw,
    )


def _pods_problem(isvc: dict[str, Any]) -> pods.PodProblem | None:
    """Why the service's pods do not start, if they do not: read while a rollout is under way."""
    meta = isvc["metadata"]
    return podstart.problem(meta["namespace"], f"{c.LABEL_INFERENCE_SERVICE}={meta['name']}")


def _ready_text(status: Mapping[str, Any]) -> str:
    ready: Mapping[str, Any] = next(
        (cond for cond in status.get("conditions") or [] if cond.get("type") == "Ready"), {}
    )
    return str(ready.get("message") or "")


def _run_canary(
    isvc: dict[str, Any],
    spec: InferenceServiceSpec,
    cfg: OperatorConfig,
    stable: serving.Version,
    target: serving.Version,
    canary_dep: dict[str, Any] | None,
    measure_now: bool,
    now: str,
) -> canary.CanaryPlan:
    """Step the canary and act on it: keep its Deployment at the step's size, or mark its version RolledBack."""
    ns = isvc["metadata"]["namespace"]
    cplan = canary_handler.step(isvc, spec, stable, target, _observe(canary_dep), measure_now, now)
    if cplan.outcome is canary.Outcome.ABORT:
        mark_rolled_back(ns, spec.model, serving.RollBack(target, stable.version, cplan.reason, cplan.message))
    elif cplan.outcome is canary.Outcome.CONTINUE:
        body = _deployment(
            isvc, spec, cfg, target, previous_version=None, track=c.TRACK_CANARY, replicas=cplan.replicas
        )
        if render.needs_update(canary_dep, body):
            objects.apply_deployment(body)
            failpoints.hit("canary.deployment-applied")
    return cplan


def _observe(dep: dict[str, Any] | None) -> serving.Rollout | None:
    return serving.observe_deployment(dep, c.LABEL_VERSION, c.ANNOTATION_PREVIOUS_VERSION)


def _failed(reason: str, message: str) -> list[conds.Cond]:
    return [
        *conds.lifecycle(False, reason, message, reconciling=False, stalled=True),
        conds.Cond(c.ConditionType.PROGRESSING, False, reason, message),
    ]


def mark_rolled_back(namespace: str, model: str, rb: serving.RollBack) -> None:
    """The version left behind becomes RolledBack (model-wide: auto-follow never picks it again)."""
    with lock(("model", namespace, model)):
        mv = objects.get(c.MODEL_VERSION, namespace, rb.version.name)
        if mv is None or (mv.get("status") or {}).get("stage") == Stage.ROLLED_BACK:
            return
        objects.patch_status(
            c.MODEL_VERSION,
            namespace,
            rb.version.name,
            registry.stage_status(mv, Stage.ROLLED_BACK, rb.reason, rb.message),
        )
        events.warning(mv, rb.reason, f"{rb.version.name} rolled back: {rb.message}")
        # Traffic went back to an earlier version: the registry says so, as `kubectl get mv` is read.
        mvs = registry.versions_of(namespace, model)
        back = promotion.restored_after_rollback(registry.registered(mvs), rb.version.name, rb.to_version)
        restored = next((m for m in mvs if m["metadata"]["name"] == back), None)
        if restored is not None:
            why = f"serving again since {rb.version.name} was rolled back ({rb.reason})"
            registry.promote(restored, "rollback", why, reason=c.Reason.RESTORED)
