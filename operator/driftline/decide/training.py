"""A TrainingJob's phase and conditions from its Job, and what the next step is."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from driftline.api.constants import TRAINER_CONTAINER, Reason
from driftline.api.fields import image_repository
from driftline.api.trainingjob import TrainingJobSpec
from driftline.decide import podsafety
from driftline.decide.conditions import Cond, lifecycle
from driftline.decide.pods import STARTING_GRACE_SECONDS, PodProblem, oom_killed

RECHECK_SECONDS = 10.0
"""How often a training whose pod has not started is looked at again: nothing the operator watches changes while a
pod waits for a Secret, an image or a volume."""

CONFLICT_RECHECK_SECONDS = 30.0
"""How often a training whose Job name is taken by someone else's Job looks again whether it is gone."""


def refusal(
    spec: TrainingJobSpec,
    raw: Mapping[str, Any],
    allowed_estimators: tuple[str, ...],
    custom_pods: podsafety.Allowances,
) -> tuple[str, str] | None:
    """What the schema cannot judge, as (reason, message): the operator's estimator allow-list (the trainer enforces
    it again) and what a custom template asks of the node (the admission policy refuses it first, where installed)."""
    if spec.estimator and not spec.estimator.startswith(allowed_estimators):
        allowed = ", ".join(allowed_estimators)
        message = f"estimator {spec.estimator} is outside the allowed module prefixes ({allowed})"
        return Reason.ESTIMATOR_NOT_ALLOWED, message
    template = raw.get("template")
    pod = template.get("spec") if isinstance(template, Mapping) else None
    found = podsafety.refusals(pod, custom_pods, "spec.template.spec") if isinstance(pod, Mapping) else []
    if found:
        return Reason.POD_NOT_ALLOWED, "; ".join(found)
    return None


class Step(StrEnum):
    CREATE_JOB = "CreateJob"
    WAIT = "Wait"
    REGISTER = "Register"  # Job complete: create the ModelVersion from the termination summary
    DONE = "Done"
    FAIL = "Fail"


@dataclass(frozen=True)
class Observation:
    phase: str
    step: Step
    conditions: list[Cond]
    message: str = ""
    start_time: str | None = None
    completion_time: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _job_condition(job: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return dict(c)
    return None


def job_facts(job: dict[str, Any]) -> str:
    """All that observe, ttl_patch and the needs_* checks read of a Job: two Jobs with the same facts are the same
    to a TrainingJob, so a watch event that leaves them alone (e.g. the controller's Suspended condition, its pod
    bookkeeping) is no news. Keep in step with those functions."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    finished = [c for c in status.get("conditions") or [] if c.get("type") in ("Complete", "Failed")]
    read = (
        spec.get("suspend"),
        spec.get("ttlSecondsAfterFinished"),
        [status.get("active") or 0, status.get("ready") or 0],  # the controller writes `ready: 0` where it was unset
        [status.get("startTime"), status.get("completionTime")],
        finished,
    )
    return json.dumps(read, sort_keys=True)


def observe(
    job: dict[str, Any] | None,
    failure_message: str | None,
    model_version: str | None,
    recorded: dict[str, Any] | None = None,
) -> Observation:
    """Level-based: the same Job, ModelVersion and recorded outcome always give the same answer.

    `recorded` is the TrainingJob's status. A finished Job may be deleted (ttlSecondsAfterFinished, a person): the
    ModelVersion, or a recorded failure, then stands for it, and the training is never run again."""
    if job is None:
        if model_version:
            return _succeeded(model_version, None, None)
        recorded = recorded or {}
        if recorded.get("phase") == "Failed" and recorded.get("jobName"):
            msg = str(recorded.get("message") or "the training Job failed")
            return Observation(
                "Failed", Step.FAIL, lifecycle(False, Reason.JOB_FAILED, msg, reconciling=False, stalled=True), msg
            )
        return Observation(
            "Pending",
            Step.CREATE_JOB,
            lifecycle(False, Reason.JOB_CREATED, "creating the training Job", reconciling=True, stalled=False),
        )
    status = job.get("status") or {}
    start, done = status.get("startTime"), status.get("completionTime")
    failed = _job_condition(job, "Failed")
    if failed:
        # The pods may be gone by now (the TTL controller deletes them before the Job): the trainer's message, once
        # recorded, is kept over the Job's generic one.
        kept = (recorded or {}).get("message") if (recorded or {}).get("phase") == "Failed" else None
        msg = failure_message or kept or failed.get("message") or failed.get("reason") or "the training Job failed"
        return Observation(
            "Failed",
            Step.FAIL,
            lifecycle(False, Reason.JOB_FAILED, msg, reconciling=False, stalled=True),
            message=msg,
            start_time=start,
            completion_time=failed.get("lastTransitionTime"),
        )
    if _job_condition(job, "Complete"):
        if model_version:
            return _succeeded(model_version, start, done)
        return Observation(
            "Running",
            Step.REGISTER,
            lifecycle(False, Reason.JOB_SUCCEEDED, "registering the ModelVersion", reconciling=True, stalled=False),
            start_time=start,
        )
    if (job.get("spec") or {}).get("suspend"):
        return Observation(
            "Pending",
            Step.WAIT,
            lifecycle(False, Reason.JOB_SUSPENDED, "the Job is suspended", reconciling=False, stalled=False),
            start_time=start,
        )
    if status.get("active") or status.get("ready") or start:
        return Observation(
            "Running",
            Step.WAIT,
            lifecycle(False, Reason.JOB_RUNNING, "training", reconciling=True, stalled=False),
            start_time=start,
        )
    return Observation(
        "Pending",
        Step.WAIT,
        lifecycle(False, Reason.JOB_PENDING, "waiting for the training pod", reconciling=True, stalled=False),
    )


def _waiting_pod(job: dict[str, Any] | None) -> bool:
    """The Job runs, unsuspended, unfinished, and no pod of it is ready (a training pod has no readiness probe: a
    ready pod is a started trainer)."""
    if job is None or (job.get("spec") or {}).get("suspend"):
        return False
    if _job_condition(job, "Complete") or _job_condition(job, "Failed"):
        return False
    return not (job.get("status") or {}).get("ready")


def recheck_after(job: dict[str, Any] | None) -> float | None:
    """Seconds until the training should be looked at again, or None when a watch event will say what changes."""
    return RECHECK_SECONDS if _waiting_pod(job) else None


def needs_pods(job: dict[str, Any] | None, now: datetime) -> bool:
    """Whether to read the Job's pods for why they do not start: only for a Job past its grace with no pod ready, so
    a training that starts at once costs no extra request."""
    if not _waiting_pod(job):
        return False
    assert job is not None
    created = (job.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return False
    age = (now - datetime.fromisoformat(str(created).replace("Z", "+00:00"))).total_seconds()
    return age >= STARTING_GRACE_SECONDS


def with_pod_problem(obs: Observation, problem: PodProblem | None) -> Observation:
    """A waiting training whose pod cannot start says why (and what to do) on Ready and Reconciling, instead of
    "waiting for the training pod" until someone looks at the pod. Not Stalled: the kubelet keeps trying, and the
    Job's own deadline (activeDeadlineSeconds) ends it."""
    if problem is None or obs.step is not Step.WAIT or obs.phase not in ("Pending", "Running"):
        return obs
    text = problem.text()
    return replace(
        obs, conditions=lifecycle(False, problem.reason, text, reconciling=True, stalled=False), message=text
    )


def _succeeded(model_version: str, start: str | None, done: str | None) -> Observation:
    msg = f"trained ModelVersion {model_version}"
    return Observation(
        "Succeeded",
        Step.DONE,
        lifecycle(True, Reason.JOB_SUCCEEDED, msg, reconciling=False, stalled=False),
        message=msg,
        start_time=start,
        completion_time=done,
    )


def ttl_patch(job: dict[str, Any] | None, step: Step, ttl_seconds: int | None) -> dict[str, Any] | None:
    """The Job patch that hands a finished Job to the TTL controller, once its outcome is recorded (a version made,
    or the failure read): setting ttlSecondsAfterFinished at creation would let the Job and its pods go before the
    trainer's termination message was read."""
    if job is None or ttl_seconds is None or step not in (Step.DONE, Step.FAIL):
        return None
    if (job.get("spec") or {}).get("ttlSecondsAfterFinished") == ttl_seconds:
        return None
    return {"spec": {"ttlSecondsAfterFinished": ttl_seconds}}


def needs_versions(job: dict[str, Any] | None) -> bool:
    """Whether the run's ModelVersion can exist: only once its Job completed (or the Job is gone)."""
    return job is None or _job_condition(job, "Complete") is not None


def needs_failure_message(job: dict[str, Any] | None) -> bool:
    """Whether to read the pods for the trainer's termination message: only for a failed Job."""
    return job is not None and _job_condition(job, "Failed") is not None


_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Summary:
    """The trainer's termination summary (docs/training-contract.md)."""

    ok: bool
    raw: dict[str, Any]
    reason: str = ""
    message: str = ""


def parse_summary(message: str | None, artifact_uri: str | None = None) -> Summary:
    """A termination message is untrusted text: anything that is not the contract's JSON becomes a clear failure.
    With `artifact_uri` (where this run was told to write), an artifact reported anywhere else is refused: a version's
    artifact is the one its own run wrote, as the operator decided, not as the trainer claims (another model's
    artifact, or one a person could swap, would otherwise be registered and served)."""
    if not message:
        return Summary(False, {}, "SummaryUnreadable", "the training pod left no termination message")
    try:
        doc = json.loads(message)
    except json.JSONDecodeError:
        return Summary(False, {}, "SummaryUnreadable", message.strip()[:1024])
    if not isinstance(doc, dict):
        return Summary(False, {}, "SummaryUnreadable", "the termination message is not a JSON object")
    if not doc.get("ok"):
        return Summary(
            False, doc, str(doc.get("reason") or "TrainingFailed"), str(doc.get("message") or message)[:4096]
        )
    artifact = doc.get("artifact")
    if not isinstance(artifact, dict) or not artifact.get("sha256") or not artifact.get("storageUri"):
        return Summary(False, doc, "SummaryUnreadable", "the termination summary lacks artifact.storageUri/sha256")
    reported = str(artifact["storageUri"])
    if artifact_uri is not None and reported.rstrip("/") != artifact_uri.rstrip("/"):
        message = f"the trainer reported its artifact at {reported[:512]}, but this run's artifact is {artifact_uri}"
        return Summary(
            False, doc, Reason.ARTIFACT_OUTSIDE_RUN, message + " (DRIFTLINE_ARTIFACT_URI); nothing is registered"
        )
    signed = artifact.get("signedBy")
    if signed is not None and not (isinstance(signed, str) and _FINGERPRINT.fullmatch(signed)):
        return Summary(False, doc, "SummaryUnreadable", "artifact.signedBy must be sha256:<64 hex digits>, a key's")
    metrics = doc.get("metrics") or {}
    if not isinstance(metrics, dict) or not all(isinstance(v, int | float) for v in metrics.values()):
        return Summary(False, doc, "SummaryUnreadable", "the termination summary's metrics are not numbers")
    return Summary(True, doc)


def trainer_words(pods: Sequence[Mapping[str, Any]], failed: bool) -> str | None:
    """What the Job's newest finished pod of the wanted outcome said: its trainer's termination message, or, for a
    trainer the kernel killed over its memory limit (which leaves none, or only its log), that and what to do."""
    wanted = "Failed" if failed else "Succeeded"
    finished = [p for p in pods if (p.get("status") or {}).get("phase") == wanted]
    finished.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    for pod in finished:
        if failed and (oom := oom_killed(pod)) is not None:
            return f"{oom.message}; {oom.remedy} (spec.resources)"
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated") or {}
            if term.get("message"):
                return str(term["message"])
    return None


_IMAGE_ID = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?P<id>(?:(?P<repository>[^@\s]+)@)?sha256:[0-9a-f]{64})$")


@dataclass(frozen=True)
class TrainerImage:
    """The image a container ran, as its node reported it by digest (containerStatuses[].imageID)."""

    id: str
    """`repository@sha256:…` (a registry's digest) or `sha256:…` (a node's own id of an image no registry gave)."""
    pullable: bool
    """Whether it names the registry's digest, by which the same bytes can be pulled again."""


def trainer_image(pods: Sequence[Mapping[str, Any]]) -> TrainerImage | None:
    """The image that ran the training, by the digest its node reported for the newest Succeeded pod's trainer
    container (or its first container, for a custom template); None when the node knew no digest (a scheme such as
    docker-pullable:// is dropped, as the image is the same)."""
    done = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
    done.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    for pod in done:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        chosen = next((cs for cs in statuses if cs.get("name") == TRAINER_CONTAINER), statuses[0] if statuses else {})
        found = _IMAGE_ID.match(str(chosen.get("imageID") or ""))
        if found is not None:
            return TrainerImage(found["id"], found["repository"] is not None)
    return None


def pinned(image: str, digest: TrainerImage | None) -> str:
    """`image` pinned to the registry digest it ran as: its repository (tag dropped) @ that digest, pullable by the
    same name whatever the tag points to later. Unchanged without a registry digest."""
    if digest is None or not digest.pullable:
        return image
    return f"{image_repository(image)}@{digest.id.rsplit('@', 1)[1]}"


def failure_text(message: str | None) -> str | None:
    """The human sentence of a failed trainer's termination message (JSON or plain text)."""
    if not message:
        return None
    s = parse_summary(message)
    return f"{s.reason}: {s.message}" if s.raw else message.strip()[:4096]
