"""Why the pods of a rollout do not start: read from their statuses as a kubelet reports them, so an InferenceService
says what is wrong (and what to do) instead of Progressing until its deadline.

Pure: the pods (and, for a pod stuck creating, its Events) in; the first problem found, with the pod it was seen on,
out. A pod that is merely starting is no problem until it has been creating for longer than a grace period.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftline.api.constants import ConditionType
from driftline.api.inferenceservice import ServicePhase
from driftline.decide.conditions import Cond
from driftline.decide.serving import Rollout

STARTING_GRACE_SECONDS = 10.0
"""A pod is judged only once it has had this long to start: a pod that a revert replaces within a second (a person's
`kubectl set image` the operator undoes) is no news."""
CREATING_GRACE_SECONDS = 60.0
"""A pod still ContainerCreating (or initialising without a failure) this long is reported, with its Events."""

FETCH_CONTAINER = "fetch"

# What to do, by the reason the fetch (driftline-runtime fetch) reported.
_FETCH_REMEDIES = {
    "AccessDenied": "grant the credentials of spec.storage.s3 read access to the artifact's bucket",
    "InvalidCredentials": "check the Secret keys spec.storage.s3.credentials names (key id, secret, token)",
    "NoSuchKey": "the version's artifact is not in the bucket: restore it, or serve another version",
    "NoSuchBucket": "the version's bucket does not exist at spec.storage.s3.endpoint",
    "ArtifactIncomplete": "the artifact's upload never finished: serve another version, or retrain",
    "ArtifactSha256Mismatch": "the artifact changed after registration and is never served: restore the original "
    "object, or retrain",
    "EndpointUnreachable": "check spec.storage.s3.endpoint, DNS, and any NetworkPolicy between the pods and it",
    "TLSError": "trust the endpoint's CA with spec.storage.s3.caBundle",
}
# Waiting reasons a kubelet reports that need a person, with what to do.
_WAITING_REMEDIES = {
    "CreateContainerConfigError": "create the Secret or ConfigMap the message names, with the key it names",
    "ImagePullBackOff": "check the image name and tag, and the registry's pull credentials (imagePullSecrets)",
    "ErrImagePull": "check the image name and tag, and the registry's pull credentials (imagePullSecrets)",
    "ErrImageNeverPull": "the image is not on the node and may not be pulled",
    "InvalidImageName": "fix the image reference",
    "CreateContainerError": "see the message: the container runtime could not create the container",
    "CrashLoopBackOff": "the container keeps exiting: see its last termination message and logs",
}
# Events that explain a pod stuck creating.
_CREATING_EVENTS = {
    "FailedAttachVolume": "a ReadWriteOnce claim can be attached to one node at a time: use a ReadWriteMany claim or "
    "object storage (s3://) when pods run on several nodes",
    "FailedMount": "the volume cannot be mounted: see the message",
    "FailedScheduling": "no node fits the pod: see the message",
}


@dataclass(frozen=True)
class PodProblem:
    pod: str
    reason: str
    """CamelCase, for a condition: the kubelet's or the fetch's own reason."""
    message: str
    remedy: str

    def text(self) -> str:
        return f"pod {self.pod}: {self.message}; {self.remedy}"


def _fetch_failure(status: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, message) of a fetch init container that ended in failure, from its termination message."""
    for cs in status.get("initContainerStatuses") or []:
        if cs.get("name") != FETCH_CONTAINER:
            continue
        for state in (cs.get("state") or {}, cs.get("lastState") or {}):
            term = state.get("terminated") or {}
            if term and term.get("exitCode", 0) != 0:
                try:
                    doc = json.loads(term.get("message") or "")
                    return str(doc["reason"]), str(doc["message"])
                except (ValueError, KeyError, TypeError):
                    return "FetchFailed", (term.get("message") or term.get("reason") or "the fetch failed").strip()
    return None


def _memory_limit(pod: Mapping[str, Any], container: str) -> str:
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") == container:
            return str(((c.get("resources") or {}).get("limits") or {}).get("memory") or "none")
    return "none"


def oom_killed(pod: Mapping[str, Any]) -> PodProblem | None:
    """A container the kernel killed over its memory limit (OOMKilled, exit code 137), now or at its last exit: the
    one crash loop whose cause is known, and whose cure is the limit."""
    status = pod.get("status") or {}
    for cs in status.get("containerStatuses") or []:
        for when, state in (("", cs.get("state") or {}), (" at its last exit", cs.get("lastState") or {})):
            if ((state.get("terminated") or {}).get("reason")) == "OOMKilled":
                name, limit = str(cs.get("name")), _memory_limit(pod, str(cs.get("name")))
                restarts = f", restarted {cs['restartCount']} time(s)" if cs.get("restartCount") else ""
                return PodProblem(
                    str(pod["metadata"]["name"]),
                    "OOMKilled",
                    f"container {name} was OOMKilled (exit code 137){when}: over its memory limit {limit}{restarts}",
                    "raise resources.limits.memory, or make the model smaller",
                )
    return None


def _waiting(status: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(container, reason, message) of the first container waiting for a reason that needs a person."""
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in _WAITING_REMEDIES:
            message = waiting.get("message") or ""
            if reason == "CrashLoopBackOff":
                last = ((cs.get("lastState") or {}).get("terminated") or {}).get("message") or ""
                message = f"{message}; last exit: {last.strip()[:500]}" if last else message
            return str(cs.get("name")), str(reason), message.strip()
    return None


def _restarting(status: Mapping[str, Any]) -> tuple[str, str] | None:
    """(container, message) of a container that is not ready and was restarted after a failed exit: a crash loop
    caught between two back-offs, while it runs again for a moment."""
    for cs in status.get("containerStatuses") or []:
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if cs.get("ready") or not cs.get("restartCount") or not last or last.get("exitCode", 0) == 0:
            continue
        said = str(last.get("message") or last.get("reason") or "").strip()[:500]
        exit_code = last.get("exitCode")
        return str(cs.get("name")), f"restarted {cs['restartCount']} time(s); last exit {exit_code}: {said}"
    return None


def _age(pod: Mapping[str, Any], now: datetime) -> float:
    created = (pod.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return 0.0
    return (now - datetime.fromisoformat(str(created).replace("Z", "+00:00"))).total_seconds()


def diagnose(
    pods: Sequence[Mapping[str, Any]],
    now: datetime,
    events: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    grace: float = CREATING_GRACE_SECONDS,
) -> PodProblem | None:
    """The first problem among `pods` (by name, so the answer is stable), None when they are starting or fine.
    `events` holds, by pod name, the Events of pods stuck creating (see stuck_creating), newest last, with those of the
    pods sharing a claim with it (see sharing_a_claim): the attach/detach controller reports a Multi-Attach once per
    volume and node, on the pods waiting then, so a pod that comes later waits for the same reason with no Event."""
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"])):
        name = str(pod["metadata"]["name"])
        if (pod.get("metadata") or {}).get("deletionTimestamp") or _age(pod, now) < STARTING_GRACE_SECONDS:
            continue
        status = pod.get("status") or {}
        fetched = _fetch_failure(status)
        if fetched is not None:
            reason, message = fetched
            remedy = _FETCH_REMEDIES.get(reason, "see the message")
            return PodProblem(name, "ArtifactFetchFailed", f"fetching the model failed: {reason}: {message}", remedy)
        oom = oom_killed(pod)
        if oom is not None:
            return oom
        waiting = _waiting(status)
        if waiting is not None:
            container, reason, message = waiting
            return PodProblem(name, reason, f"container {container}: {reason}: {message}", _WAITING_REMEDIES[reason])
        restarting = _restarting(status)
        if restarting is not None:
            container, message = restarting
            remedy = _WAITING_REMEDIES["CrashLoopBackOff"]
            return PodProblem(name, "CrashLoopBackOff", f"container {container}: {message}", remedy)
        scheduled: Mapping[str, Any] = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {}
        )
        if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable" and _age(pod, now) > grace:
            message = str(scheduled.get("message") or "")
            return PodProblem(name, "Unschedulable", message, _CREATING_EVENTS["FailedScheduling"])
        if name in stuck_creating([pod], now, grace):
            seen = list(reversed(list((events or {}).get(name) or [])))
            own = [e for e in seen if (e.get("involvedObject") or {}).get("name") == name]
            for event in own + [e for e in seen if e.get("reason") == "FailedAttachVolume" and e not in own]:
                if event.get("reason") in _CREATING_EVENTS and event.get("type") == "Warning":
                    reason = str(event["reason"])
                    message = str(event.get("message") or "")
                    if claims := _claims(pod):  # the Event names the PersistentVolume; a person knows the claim
                        message += f" (claim {', '.join(claims)})"
                    return PodProblem(name, reason, message, _CREATING_EVENTS[reason])
            return PodProblem(
                name,
                "ContainerCreating",
                f"still creating after more than {grace:.0f}s",  # not its age: a message that ticks is a write
                "see the pod's Events (kubectl describe pod)",
            )
    return None


def sharing_a_claim(pod: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the other pods on `pod`'s node that mount one of its claims: whose Events may say why it waits."""
    claims, node = set(_claims(pod)), (pod.get("spec") or {}).get("nodeName")
    name = pod["metadata"]["name"]
    return sorted(
        str(o["metadata"]["name"])
        for o in others
        if o["metadata"]["name"] != name and (o.get("spec") or {}).get("nodeName") == node and claims & set(_claims(o))
    )


def _claims(pod: Mapping[str, Any]) -> list[str]:
    volumes = (pod.get("spec") or {}).get("volumes") or []
    return [str(v["persistentVolumeClaim"]["claimName"]) for v in volumes if "persistentVolumeClaim" in v]


def stuck_creating(
    pods: Sequence[Mapping[str, Any]], now: datetime, grace: float = CREATING_GRACE_SECONDS
) -> list[str]:
    """Names of the pods scheduled but still creating their containers after `grace` seconds: the ones whose Events
    are worth reading (a volume that will not attach or mount)."""
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") != "Pending" or not (pod.get("spec") or {}).get("nodeName"):
            continue
        if _fetch_failure(status) is None and _waiting(status) is None and _age(pod, now) > grace:
            out.append(str(pod["metadata"]["name"]))
    return out


def overlay(phase: ServicePhase, conditions: list[Cond], problem: PodProblem | None) -> tuple[ServicePhase, list[Cond]]:
    """The serving plan's phase and conditions with the pods' say: a rollout whose new pods cannot start reports why
    on Ready (and Reconciling: the kubelet keeps trying, so it is not Stalled until the progress deadline)."""
    if problem is None or phase is not ServicePhase.PROGRESSING:
        return phase, conditions
    text = problem.text()
    out = []
    for cond in conditions:
        if cond.type in (ConditionType.READY, ConditionType.RECONCILING):
            cond = Cond(cond.type, cond.status, problem.reason, text)
        out.append(cond)
    return phase, out


def worth_reading(*rollouts: Rollout | None) -> bool:
    """Whether a rollout's pods may say why it waits: some pod of an observed Deployment is not ready. A rollout whose
    every pod is ready (a canary between its steps) costs no pod listing."""
    return any(r is not None and r.ready < max(r.replicas, r.total) for r in rollouts)
