"""Pure: the pod status a kubelet would report, from what the runner's containers are doing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["waiting", "running", "terminated"]


@dataclass
class ContainerState:
    name: str
    image: str
    state: State = "waiting"
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    term_reason: str = ""
    term_message: str = ""
    restart_count: int = 0
    last_terminated: dict[str, Any] | None = None
    ready: bool = False
    started: bool = False
    ever_started: bool = False
    container_id: str = ""
    image_id: str = ""
    """As a kubelet reports it: the image's digest where the node knows one (container mode), else empty."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_status(self) -> dict[str, Any]:
        state: dict[str, Any]
        if self.state == "running":
            state = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            term: dict[str, Any] = {
                "exitCode": self.exit_code,
                "reason": self.term_reason,
                "startedAt": self.started_at,
                "finishedAt": self.finished_at,
                "containerID": self.container_id,
            }
            if self.term_message:
                term["message"] = self.term_message
            state = {"terminated": term}
        else:
            waiting: dict[str, Any] = {"reason": self.waiting_reason}
            if self.waiting_message:
                waiting["message"] = self.waiting_message
            state = {"waiting": waiting}
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": (self.image_id or f"driftline-local://{self.image}") if self.ever_started else "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def pod_phase(restart_policy: str, init: list[ContainerState], main: list[ContainerState]) -> str:
    """The kubelet's getPhase, reduced to what the runner can be in."""
    for c in init:
        if c.state == "terminated" and c.exit_code != 0 and restart_policy == "Never":
            return "Failed"
        if not (c.state == "terminated" and c.exit_code == 0):
            return "Pending"
    if all(not c.ever_started for c in main):
        return "Pending"
    if any(c.state == "running" for c in main):
        return "Running"
    if all(c.state == "terminated" for c in main):
        failed = any(c.exit_code != 0 for c in main)
        if restart_policy == "Always" or (failed and restart_policy == "OnFailure"):
            return "Running"  # about to restart
        return "Failed" if failed else "Succeeded"
    return "Running"  # some container waits in restart back-off


def _condition(ctype: str, ok: bool, now: str, reason: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": ctype,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if reason and not ok:
        cond["reason"] = reason
    return cond


def pod_status(
    *,
    restart_policy: str,
    init: list[ContainerState],
    main: list[ContainerState],
    pod_ip: str,
    host_ip: str,
    start_time: str,
    now: str,
    previous_conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    phase = pod_phase(restart_policy, init, main)
    initialized = all(c.state == "terminated" and c.exit_code == 0 for c in init)
    terminal = phase in ("Succeeded", "Failed")
    containers_ready = not terminal and all(c.ready for c in main)
    ready_reason = "PodCompleted" if terminal else "ContainersNotReady"
    conditions = [
        _condition("PodReadyToStartContainers", True, now),
        _condition("Initialized", initialized, now, "ContainersNotInitialized"),
        _condition("ContainersReady", containers_ready, now, ready_reason),
        _condition("Ready", containers_ready, now, ready_reason),
    ]
    # lastTransitionTime only moves when a condition's status changes, as on a real node.
    prev = {c.get("type"): c for c in previous_conditions or []}
    for cond in conditions:
        old = prev.get(cond["type"])
        if old and old.get("status") == cond["status"] and old.get("lastTransitionTime"):
            cond["lastTransitionTime"] = old["lastTransitionTime"]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": start_time,
        "containerStatuses": [c.to_status() for c in main],
    }
    if init:
        status["initContainerStatuses"] = [c.to_status() for c in init]
    return status
