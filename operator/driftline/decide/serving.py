"""Which version an InferenceService serves and where its rollout stands: a pure function of the spec, the model's
versions, the stable Deployment and the last status. Level-based: the same inputs always give the same plan.

The order of questions:

1. Is a rollback due? A person's new `driftline.dev/rollback` token, or a rollout to a new version that did not
   become available within progressDeadlineSeconds (the Deployment's ProgressDeadlineExceeded). The version being
   left is marked RolledBack, and from then on it is treated as such below.
2. Which version should serve? The pin when set (a rolled-back pin is not served: the last good version is kept and
   the service reports Degraded until Git changes the pin), else the model's Production version. Auto-follow never
   picks a Rejected or RolledBack version; with no Production version it keeps the last good one it served.
3. What to do with the Deployment: create it, roll it (patch to another version), or keep it in line with the spec.
4. The phase, conditions, history and Events that follow from that and from the Deployment's observed rollout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from driftline.api.constants import ANNOTATION_PREVIOUS_IMAGE, HISTORY_CAP, SERVER_CONTAINER, ConditionType, Reason
from driftline.api.inferenceservice import HistoryAction, InferenceServiceSpec, ServicePhase
from driftline.api.modelversion import BAD_STAGES, Stage
from driftline.api.rollout import RolloutStrategy
from driftline.decide.conditions import Cond, lifecycle
from driftline.decide.promotion import Registered, survivor

"""Stages auto-follow never serves; a rolled-back pin is not served either."""

CONFLICT_RECHECK_SECONDS = 30.0
"""How often a service whose Deployment or Service name is taken by someone else's looks again whether it is gone."""
ROLLOUT_RECHECK_SECONDS = 5.0
"""How often a service whose rollout is under way looks again: a pod that cannot start (a fetch refused, an image not
pulled, a volume that will not attach) changes nothing the operator watches."""


def look_again_in(phase: ServicePhase) -> float | None:
    """Seconds until a service in `phase` is looked at again without a watch event, or None: only a rollout under way
    waits on something no watch reports."""
    return ROLLOUT_RECHECK_SECONDS if phase is ServicePhase.PROGRESSING else None


@dataclass(frozen=True, slots=True)
class Version:
    """What serving needs to know of one ModelVersion of the model."""

    version: int
    stage: str | None
    sha256: str
    storage_uri: str
    name: str = ""
    promoted_at: str | None = None
    reason: str = ""
    """The version's status.reason: why it is in its stage."""
    image: str | None = None
    """spec.servingImage: the runtime image that serves it unless the service names one."""
    metrics: tuple[tuple[str, float], ...] = ()
    """spec.metrics, the validation metrics: what live performance may be judged relative to."""
    evaluated_by: str | None = None
    """status.evaluation.service: the InferenceService that runs it in shadow while it is Evaluating."""

    @property
    def good(self) -> bool:
        return self.stage not in BAD_STAGES


def version_of(mv: Mapping[str, Any]) -> Version:
    """What serving reads of a ModelVersion's body."""
    spec, status = mv.get("spec") or {}, mv.get("status") or {}
    artifact = spec.get("artifact") or {}
    return Version(
        version=int(spec["version"]),
        stage=status.get("stage"),
        sha256=str(artifact.get("sha256", "")),
        storage_uri=str(artifact.get("storageUri", "")),
        name=str((mv.get("metadata") or {}).get("name") or ""),
        promoted_at=status.get("promotedAt"),
        reason=str(status.get("reason") or ""),
        image=spec.get("servingImage") or None,
        metrics=tuple(sorted((str(k), float(v)) for k, v in (spec.get("metrics") or {}).items())),
        evaluated_by=(status.get("evaluation") or {}).get("service"),
    )


@dataclass(frozen=True)
class Rollout:
    """The stable Deployment as observed: which version its template serves and how far its rollout got."""

    version: int | None
    previous_version: int | None
    replicas: int
    generation: int
    observed_generation: int
    total: int = 0
    updated: int = 0
    ready: int = 0
    available: int = 0
    deadline_exceeded: bool = False
    rolled_out: bool = False
    """The Deployment controller reported the current template's rollout done (NewReplicaSetAvailable)."""
    progress_message: str = ""
    image: str | None = None
    """The server container's image in the current template."""
    previous_image: str | None = None
    """The image a move of the same version to `image` returns to if it fails (decide.images)."""

    @property
    def moving_image(self) -> bool:
        """The current rollout moves the same version to another image (decide.images)."""
        return self.previous_image is not None and self.previous_image != self.image

    @property
    def observed(self) -> bool:
        """The Deployment controller has seen the current template and replica count."""
        return self.observed_generation >= self.generation

    @property
    def complete(self) -> bool:
        """`kubectl rollout status` done: every replica updated and available, no old replica left."""
        return (
            self.observed
            and self.updated >= self.replicas
            and self.available >= self.replicas
            and self.total <= self.updated
        )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def observe_deployment(dep: Mapping[str, Any] | None, version_label: str, previous_annotation: str) -> Rollout | None:
    """Read the rollout state out of a Deployment object (as the API returns it)."""
    if dep is None:
        return None
    meta, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    server: Mapping[str, Any] = next((x for x in containers if x.get("name") == SERVER_CONTAINER), {})
    conditions = status.get("conditions") or []
    progressing: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Progressing"), {})
    return Rollout(
        version=_int(labels.get(version_label)),
        previous_version=_int((meta.get("annotations") or {}).get(previous_annotation)),
        replicas=int(spec.get("replicas", 1)),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        total=int(status.get("replicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        ready=int(status.get("readyReplicas") or 0),
        available=int(status.get("availableReplicas") or 0),
        deadline_exceeded=progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded",
        rolled_out=progressing.get("reason") == "NewReplicaSetAvailable",
        progress_message=str(progressing.get("message") or ""),
        image=server.get("image"),
        previous_image=(meta.get("annotations") or {}).get(ANNOTATION_PREVIOUS_IMAGE),
    )


def deployment_facts(dep: Mapping[str, Any], version_label: str, previous_annotation: str) -> str:
    """All a reconcile reads of a Deployment: its rollout (any change to its spec bumps its generation), its labels,
    annotations and owners. Two Deployments with the same facts are the same to their InferenceService, so a watch
    event that leaves them alone (the one for the operator's own apply, the controller's timestamps) is no news. Keep
    in step with observe_deployment, render.needs_update and render.common.controlled_by."""
    meta = dep.get("metadata") or {}
    rollout = observe_deployment(dep, version_label, previous_annotation)
    read = [
        asdict(rollout) if rollout is not None else None,
        meta.get("labels") or {},
        meta.get("annotations") or {},
        [[o.get("uid"), o.get("controller")] for o in meta.get("ownerReferences") or []],
    ]
    return json.dumps(read, sort_keys=True)


class Step(StrEnum):
    CREATE = "Create"  # no Deployment yet: create it for `serve`
    ROLL = "Roll"  # the Deployment serves another version: patch it to `serve` (forward or back)
    SYNC = "Sync"  # the Deployment serves `serve`: keep the rest of it in line with the spec (patch only on a diff)
    CANARY = "Canary"  # strategy Canary: the stable Deployment stays as it is; `canary` runs next to it
    KEEP = "Keep"  # nothing servable: leave the existing Deployment as it is, never take traffic down on a mistake
    WAIT = "Wait"  # nothing servable and no Deployment: wait for a version


@dataclass(frozen=True)
class Target:
    """The answer to "which version should serve", with why."""

    version: Version | None
    reason: str
    message: str
    degraded: bool = False
    """Serving, but not what the spec asks for."""
    invalid: bool = False
    """The spec asks for something that cannot be served (only a spec change or a new version fixes it)."""


@dataclass(frozen=True)
class RollBack:
    """Mark `version` RolledBack (under the model's lock) before acting."""

    version: Version
    to_version: int
    reason: str
    message: str


@dataclass(frozen=True)
class EventNote:
    warning: bool
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    step: Step
    serve: Version | None
    """The version the stable Deployment is rendered for; None with KEEP and WAIT."""
    active_version: int | None
    previous_version: int | None
    phase: ServicePhase
    conditions: list[Cond]
    history: list[dict[str, Any]]
    roll_back: RollBack | None = None
    last_rollback_request: str | None = None
    events: list[EventNote] = field(default_factory=list)
    canary: Version | None = None
    """With CANARY: the version under canary (decide.canary takes it from there)."""


def production(versions: Sequence[Version]) -> Version | None:
    """The model's Production version (the newest promotion wins if a crash left two)."""
    name = survivor(
        [Registered(name=str(v.version), version=v.version, stage=v.stage, promoted_at=v.promoted_at) for v in versions]
    )
    return next((v for v in versions if str(v.version) == name), None)


def resolve(spec: InferenceServiceSpec, versions: Sequence[Version], served: Sequence[int | None]) -> Target:
    """Which version should serve. `served` lists the versions this service served, newest first (the active
    version, then the previous one): the last good of them is what a bad pin or a missing Production falls back to."""
    by_number = {v.version: v for v in versions}
    fallback = next(
        (by_number[n] for n in served if n is not None and n in by_number and by_number[n].good and n != spec.version),
        None,
    )
    model = spec.model
    if spec.version is not None:
        pin = by_number.get(spec.version)
        if pin is None:
            msg = f"spec.version {spec.version}: model {model} has no version {spec.version} (no ModelVersion "
            msg += f"{model}-v{spec.version})"
            if fallback is not None:
                msg += f"; still serving version {fallback.version}"
            return Target(fallback, Reason.VERSION_NOT_FOUND, msg, degraded=fallback is not None, invalid=True)
        if pin.stage == Stage.ROLLED_BACK:
            why = f" ({pin.reason})" if pin.reason else ""
            if fallback is None:
                msg = f"pinned version {pin.version} was rolled back{why} and no earlier good version is known; "
                msg += "pin a good version in Git (spec.version)"
                return Target(None, Reason.PINNED_VERSION_ROLLED_BACK, msg, degraded=True, invalid=True)
            msg = f"pinned version {pin.version} was rolled back{why}; serving version {fallback.version}, the last "
            msg += f"good one; pin a good version in Git, e.g. spec.version: {fallback.version}"
            return Target(fallback, Reason.PINNED_VERSION_ROLLED_BACK, msg, degraded=True, invalid=True)
        return Target(pin, Reason.VERSION_PINNED, f"serving pinned version {pin.version}")
    prod = production(versions)
    if prod is not None:
        return Target(prod, Reason.PROMOTED, f"following model {model}: version {prod.version} is Production")
    if fallback is not None:
        msg = f"model {model} has no Production version; serving version {fallback.version}, the last good one"
        return Target(fallback, Reason.LAST_GOOD_VERSION, msg)
    msg = f"model {model} has no Production version yet: promote one (a TrainingJob with promotion.auto, or the "
    msg += "annotation driftline.dev/promote on a ModelVersion), or pin one with spec.version"
    return Target(None, Reason.NO_PRODUCTION_VERSION, msg, invalid=True)


def _rollback(
    spec: InferenceServiceSpec,
    by_number: Mapping[int, Version],
    rollout: Rollout | None,
    current: int | None,
    previous: int | None,
    request: str | None,
    last_request: str | None,
    not_starting: str | None = None,
) -> tuple[RollBack | None, str | None, EventNote | None]:
    """(what to roll back, the request carried out, a Warning when a request cannot be carried out)."""
    to = by_number.get(previous) if previous is not None else None
    leaving = by_number.get(current) if current is not None else None
    if request and request != last_request:
        if leaving is None or to is None or not to.good or to.version == current:
            if leaving is None:
                why = "no version is being served"
            elif to is None or to.version == current:
                why = f"no previous version to return to (previousVersion: {previous or 'none'})"
            else:
                why = f"the previous version {to.version} is {to.stage}"
            return None, request, EventNote(True, Reason.ROLLBACK_REQUESTED, f"rollback {request!r} ignored: {why}")
        msg = f"rollback requested ({request}): traffic back to version {to.version}"
        return RollBack(leaving, to.version, Reason.ROLLBACK_REQUESTED, msg), request, None
    if (
        rollout is not None
        and rollout.observed
        and rollout.deadline_exceeded
        and not rollout.moving_image  # the version is not at fault: decide.images goes back to the image before
        and rollout.version == current
        and leaving is not None
        and to is not None
        and to.good
        and to.version != current
    ):
        msg = f"version {current} did not become available within {spec.rollout.progress_deadline_seconds}s"
        msg += f" ({rollout.progress_message})" if rollout.progress_message else ""
        msg += f"; {not_starting}" if not_starting else ""  # why: the pod and its container's last words
        msg += f"; traffic back to version {to.version}"
        return RollBack(leaving, to.version, Reason.PROGRESS_DEADLINE_EXCEEDED, msg), None, None
    return None, None, None


def history_entry(
    now: str, action: HistoryAction, from_v: int | None, to_v: int, reason: str, message: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {"time": now, "action": action.value, "toVersion": to_v, "reason": reason}
    if from_v is not None:
        entry["fromVersion"] = from_v
    entry["message"] = message[:1024]
    return entry


def _under_canary(status: Mapping[str, Any], by_number: Mapping[int, Version], current: int | None) -> Version | None:
    """The good version a canary runs next to the stable one, as status says."""
    canary_version = _int(status.get("canaryVersion"))
    found = by_number.get(canary_version) if canary_version is not None and canary_version != current else None
    return found if found is not None and found.good else None


def _record_move(
    now: str, target: Target, serve: Version, leaving: Version | None, current: int | None, roll_back: RollBack | None
) -> tuple[dict[str, Any], EventNote]:
    """The history entry and Event of a move of the stable Deployment: a rollback when the version left is bad (or
    was just rolled back), else a roll forward."""
    if roll_back is not None or (leaving is not None and not leaving.good):
        reason = roll_back.reason if roll_back is not None else Reason.ROLLED_BACK
        if roll_back is not None:
            why = roll_back.message
        else:
            why = f"version {current} is {leaving.stage if leaving else 'gone'}"
            why += f" ({leaving.reason})" if leaving is not None and leaving.reason else ""
            why += f"; traffic back to version {serve.version}"
        entry = history_entry(now, HistoryAction.ROLLBACK, current, serve.version, reason, why)
        return entry, EventNote(True, reason, f"rolling back from version {current} to {serve.version}: {why}")
    entry = history_entry(now, HistoryAction.ROLL_FORWARD, current, serve.version, target.reason, target.message)
    origin = f" from version {current}" if current is not None else ""
    return entry, EventNote(False, Reason.ROLLING_OUT, f"rolling out version {serve.version}{origin}: {target.message}")


def _ready_reason(status: Mapping[str, Any]) -> tuple[str | None, str | None]:
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == ConditionType.READY), None)
    return (None, None) if ready is None else (ready.get("status"), ready.get("reason"))


def decide(
    spec: InferenceServiceSpec,
    versions: Sequence[Version],
    rollout: Rollout | None,
    status: Mapping[str, Any],
    rollback_request: str | None,
    now: str,
    not_starting: str | None = None,
) -> Plan:
    """`not_starting`: why the rollout's pods do not start, when they do not (decide.pods: the pod, and its
    container's reason and last termination message), quoted when a progress deadline rolls it back."""
    by_number = {v.version: v for v in versions}
    current = rollout.version if rollout is not None else _int(status.get("activeVersion"))
    previous = (rollout.previous_version if rollout is not None else None) or _int(status.get("previousVersion"))
    events: list[EventNote] = []

    # 1. A rollback, by request or past the progress deadline: the version left is RolledBack from here on. During a
    #    canary, a request aborts the canary: the stable version never stopped serving.
    under_canary = _under_canary(status, by_number, current)
    request, last = rollback_request, status.get("lastRollbackRequest")
    roll_back: RollBack | None
    carried_out: str | None
    if under_canary is not None and request and request != last and current is not None:
        msg = f"rollback requested ({request}): the canary of version {under_canary.version} is aborted; version "
        msg += f"{current} keeps serving"
        roll_back, carried_out, refused = RollBack(under_canary, current, Reason.ROLLBACK_REQUESTED, msg), request, None
    else:
        roll_back, carried_out, refused = _rollback(
            spec, by_number, rollout, current, previous, request, last, not_starting
        )
    if refused is not None:
        events.append(refused)
    if roll_back is not None:
        marked = replace(roll_back.version, stage=Stage.ROLLED_BACK, reason=roll_back.message)
        versions = [marked if v.version == marked.version else v for v in versions]
        by_number[marked.version] = marked

    # 2. Which version serves.
    target = resolve(spec, versions, [current, previous])
    serve = target.version

    # 3. What to do with the Deployment.
    if serve is None:
        step = Step.KEEP if rollout is not None else Step.WAIT
    elif rollout is None:
        step = Step.CREATE
    elif rollout.version != serve.version:
        step = Step.ROLL
    else:
        step = Step.SYNC
    canary: Version | None = None
    stable = by_number.get(current) if current is not None else None
    if (
        step is Step.ROLL
        and serve is not None
        and spec.rollout.strategy is RolloutStrategy.CANARY
        and roll_back is None
        and stable is not None
        and stable.good
        and spec.replicas > 0
    ):
        # A move forward to a version under strategy Canary: the stable Deployment keeps its version meanwhile.
        step, canary, serve = Step.CANARY, serve, stable

    history = [dict(h) for h in status.get("history") or []]
    if roll_back is not None and roll_back.version is under_canary:
        history.append(
            history_entry(
                now,
                HistoryAction.CANARY_ABORTED,
                current,
                roll_back.version.version,
                roll_back.reason,
                roll_back.message,
            )
        )
        events.append(EventNote(True, roll_back.reason, roll_back.message))
    active, prev_out = current, previous
    moving = serve is not None and serve.version != current and step in (Step.CREATE, Step.ROLL)
    if serve is not None and moving:
        active, prev_out = serve.version, current if current is not None else previous
        entry, note = _record_move(
            now, target, serve, by_number.get(current) if current is not None else None, current, roll_back
        )
        history.append(entry)
        events.append(note)
    elif serve is not None:
        active = serve.version
    history = history[-HISTORY_CAP:]

    # 4. Phase and conditions.
    phase, conditions = _health(spec, target, rollout, moving, active, canary)
    old_ready, old_reason = _ready_reason(status)
    ready = next(c for c in conditions if c.type == ConditionType.READY)
    if ready.status is True and old_ready != "True" and active is not None:
        events.append(EventNote(False, Reason.ROLLED_OUT, ready.message))
    elif (
        ready.status is False
        and ready.reason != old_reason
        and ready.reason not in (Reason.ROLLING_OUT, Reason.UNAVAILABLE, Reason.CANARY_STEP)
    ):
        events.append(EventNote(True, ready.reason, ready.message))
    return Plan(
        step=step,
        serve=serve,
        active_version=active,
        previous_version=prev_out if prev_out != active else None,
        phase=phase,
        conditions=conditions,
        history=history,
        roll_back=roll_back,
        last_rollback_request=carried_out or status.get("lastRollbackRequest"),
        events=events,
        canary=canary,
    )


def _health(
    spec: InferenceServiceSpec,
    target: Target,
    rollout: Rollout | None,
    moving: bool,
    active: int | None,
    canary: Version | None,
) -> tuple[ServicePhase, list[Cond]]:
    """The phase and conditions: Ready (serving exactly what the spec asks, every replica available), Progressing
    (a rollout is under way), Degraded (serving, but not what the spec asks), and kstatus's Reconciling/Stalled."""

    def conds(
        ready: bool, reason: str, message: str, *, reconciling: bool, stalled: bool, progressing: bool, degraded: bool
    ) -> list[Cond]:
        return [
            *lifecycle(ready, reason, message, reconciling=reconciling, stalled=stalled),
            Cond(
                ConditionType.PROGRESSING,
                progressing,
                reason
                if progressing and reason == Reason.CANARY_STEP
                else (Reason.ROLLING_OUT if progressing else (reason if stalled else Reason.ROLLED_OUT)),
                message if progressing or stalled else "",
            ),
            Cond(
                ConditionType.DEGRADED, degraded, reason if degraded else Reason.RECONCILED, message if degraded else ""
            ),
        ]

    if target.invalid:
        serving = target.version is not None or (rollout is not None and rollout.available > 0)
        waiting = target.reason == Reason.NO_PRODUCTION_VERSION
        phase = ServicePhase.DEGRADED if serving else (ServicePhase.PENDING if waiting else ServicePhase.FAILED)
        return phase, conds(
            False,
            target.reason,
            target.message,
            reconciling=waiting,
            stalled=not waiting,
            progressing=False,
            degraded=serving,
        )
    if canary is not None:
        return ServicePhase.PROGRESSING, conds(
            False,
            Reason.CANARY_STEP,
            f"canary of version {canary.version} next to stable version {active}",
            reconciling=True,
            stalled=False,
            progressing=True,
            degraded=False,
        )
    if moving or rollout is None:
        return ServicePhase.PROGRESSING, conds(
            False,
            Reason.ROLLING_OUT,
            f"rolling out version {active}",
            reconciling=True,
            stalled=False,
            progressing=True,
            degraded=False,
        )
    counts = f"{rollout.available}/{rollout.replicas} replicas of version {active} available"
    if rollout.observed and rollout.deadline_exceeded:
        msg = f"version {active} did not become available within {spec.rollout.progress_deadline_seconds}s"
        msg += f" ({rollout.progress_message})" if rollout.progress_message else ""
        msg += f"; {counts}; no good previous version to roll back to"
        return ServicePhase.DEGRADED if rollout.available > 0 else ServicePhase.FAILED, conds(
            False,
            Reason.PROGRESS_DEADLINE_EXCEEDED,
            msg,
            reconciling=False,
            stalled=True,
            progressing=False,
            degraded=rollout.available > 0,
        )
    if rollout.complete:
        return ServicePhase.READY, conds(
            True,
            Reason.AVAILABLE,
            f"{counts}; {target.message}",
            reconciling=False,
            stalled=False,
            progressing=False,
            degraded=False,
        )
    if rollout.rolled_out and rollout.observed and rollout.updated >= rollout.replicas:
        # The template's rollout finished earlier; pods are missing now (scaling up, or a pod died).
        return ServicePhase.PROGRESSING, conds(
            False, Reason.UNAVAILABLE, counts, reconciling=True, stalled=False, progressing=False, degraded=False
        )
    return ServicePhase.PROGRESSING, conds(
        False,
        Reason.ROLLING_OUT,
        f"rolling out version {active}: {rollout.updated}/{rollout.replicas} updated, {counts}",
        reconciling=True,
        stalled=False,
        progressing=True,
        degraded=False,
    )
