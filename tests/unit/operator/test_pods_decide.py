"""decide.pods: why a rollout's pods do not start, from pod statuses shaped as a kubelet writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftline.api.inferenceservice import ServicePhase
from driftline.decide import pods
from driftline.decide.conditions import Cond

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def pod(name: str = "bc-stable-1", age: float = 15.0, **status: Any) -> dict[str, Any]:
    created = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"nodeName": "node-a"},
        "status": {"phase": "Pending", **status},
    }


def fetch_failed(message: str, *, last: bool = True) -> dict[str, Any]:
    term = {"terminated": {"exitCode": 1, "reason": "Error", "message": message}}
    state = {"waiting": {"reason": "CrashLoopBackOff"}}
    return {"name": "fetch", "state": state, "lastState": term} if last else {"name": "fetch", "state": term}


def test_a_refused_fetch_names_the_storage_reason_and_what_to_do() -> None:
    doc = {"ok": False, "reason": "AccessDenied", "message": "reading s3://models/x/metadata.json: access denied"}
    problem = pods.diagnose([pod(initContainerStatuses=[fetch_failed(json.dumps(doc))])], NOW)
    assert problem is not None
    assert (problem.pod, problem.reason) == ("bc-stable-1", "ArtifactFetchFailed")
    assert "AccessDenied: reading s3://models/x/metadata.json: access denied" in problem.message
    assert "read access" in problem.remedy
    assert problem.text().startswith("pod bc-stable-1: fetching the model failed: AccessDenied")


def test_a_fetch_that_failed_without_a_document_still_says_what_it_printed() -> None:
    problem = pods.diagnose([pod(initContainerStatuses=[fetch_failed("Traceback: boom", last=False)])], NOW)
    assert problem is not None and problem.reason == "ArtifactFetchFailed" and "Traceback: boom" in problem.message


@pytest.mark.parametrize(
    ("reason", "remedy"),
    [
        ("CreateContainerConfigError", "create the Secret"),
        ("ImagePullBackOff", "image name"),
        ("ErrImageNeverPull", "may not be pulled"),
    ],
)
def test_a_waiting_reason_that_needs_a_person_is_reported(reason: str, remedy: str) -> None:
    waiting = {"name": "server", "state": {"waiting": {"reason": reason, "message": 'secret "s3" not found'}}}
    problem = pods.diagnose([pod(containerStatuses=[waiting])], NOW)
    assert problem is not None and problem.reason == reason and remedy in problem.remedy
    assert "container server: " in problem.message


def test_a_crash_loop_quotes_the_last_exit() -> None:
    cs = {
        "name": "server",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
        "lastState": {"terminated": {"exitCode": 1, "message": '{"reason":"ModelLoadError"}'}},
    }
    problem = pods.diagnose([pod(containerStatuses=[cs])], NOW)
    assert problem is not None and "ModelLoadError" in problem.message


def test_a_pod_is_judged_only_once_it_has_had_time_to_start() -> None:
    """A pod replaced within seconds (a revert of a person's edit) is never reported, whatever its state."""
    bad = {"name": "server", "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "no such image"}}}
    assert pods.diagnose([pod(age=pods.STARTING_GRACE_SECONDS - 1, containerStatuses=[bad])], NOW) is None
    assert pods.diagnose([pod(age=pods.STARTING_GRACE_SECONDS + 1, containerStatuses=[bad])], NOW) is not None


def test_starting_pods_are_no_problem_until_the_grace_period() -> None:
    creating = {"name": "server", "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert pods.diagnose([pod(age=20, containerStatuses=[creating])], NOW) is None
    assert pods.stuck_creating([pod(age=20)], NOW) == []
    late = pod(age=pods.CREATING_GRACE_SECONDS + 1, containerStatuses=[creating])
    assert pods.stuck_creating([late], NOW) == ["bc-stable-1"]
    problem = pods.diagnose([late], NOW)
    assert problem is not None and problem.reason == "ContainerCreating"
    # The same text a minute later: a message that ticks with the pod's age would be a status write and an Event
    # every time the service is looked at.
    older = pods.diagnose([pod(age=pods.CREATING_GRACE_SECONDS + 61, containerStatuses=[creating])], NOW)
    assert older is not None and older.text() == problem.text()


def test_a_pod_stuck_creating_is_explained_by_its_events() -> None:
    late = pod(age=120)
    late["spec"]["volumes"] = [{"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}}]
    events = {"bc-stable-1": [event("bc-stable-1", "Normal", "Scheduled", "assigned to node-b"), MULTI_ATTACH]}
    problem = pods.diagnose([late], NOW, events)
    assert problem is not None and problem.reason == "FailedAttachVolume"
    assert "Multi-Attach" in problem.message and "ReadWriteMany" in problem.remedy
    assert problem.message.endswith("(claim models)")


def event(pod: str, type_: str, reason: str, message: str) -> dict[str, Any]:
    return {"involvedObject": {"kind": "Pod", "name": pod}, "type": type_, "reason": reason, "message": message}


MULTI_ATTACH = event(
    "bc-stable-1",
    "Warning",
    "FailedAttachVolume",
    'Multi-Attach error for volume "pvc-1" Volume is already used by pod(s) bc-stable-0',
)


def claiming(name: str, claim: str, node: str = "node-a") -> dict[str, Any]:
    p = pod(name, age=120)
    p["spec"] = {"nodeName": node, "volumes": [{"name": "m", "persistentVolumeClaim": {"claimName": claim}}]}
    return p


def test_a_pod_waiting_on_a_volume_whose_multi_attach_was_reported_on_another_pod_gets_the_same_reason() -> None:
    # The attach/detach controller reports a Multi-Attach once per volume and node: a pod that comes later has no
    # Event of its own. Its neighbours on the node that share the claim tell why; one on another node does not.
    late, first = claiming("train-x", "once"), claiming("bc-stable-1", "once")
    others = [first, claiming("elsewhere", "once", node="node-b"), claiming("other-claim", "many")]
    assert pods.sharing_a_claim(late, [late, *others]) == ["bc-stable-1"]
    problem = pods.diagnose([late], NOW, {"train-x": [MULTI_ATTACH]})
    assert problem is not None and (problem.pod, problem.reason) == ("train-x", "FailedAttachVolume")
    assert problem.message.endswith("(claim once)")
    # A neighbour's other troubles (its own Secret missing, say) are not this pod's.
    mount = event("bc-stable-1", "Warning", "FailedMount", 'secret "x" not found')
    problem = pods.diagnose([late], NOW, {"train-x": [mount]})
    assert problem is not None and problem.reason == "ContainerCreating"
    # Its own Event comes first.
    own = event("train-x", "Warning", "FailedMount", "timed out waiting for the condition")
    problem = pods.diagnose([late], NOW, {"train-x": [own, MULTI_ATTACH]})
    assert problem is not None and problem.reason == "FailedMount"


def test_unschedulable_after_the_grace_period() -> None:
    cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes are available"}
    unscheduled = pod(age=120, conditions=[cond])
    unscheduled["spec"] = {}
    problem = pods.diagnose([unscheduled], NOW)
    assert problem is not None and problem.reason == "Unschedulable" and "0/2 nodes" in problem.message
    unscheduled["metadata"]["creationTimestamp"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert pods.diagnose([unscheduled], NOW) is None


def test_running_and_terminating_pods_are_no_problem_and_the_first_by_name_is_reported() -> None:
    running = pod("bc-stable-0")
    running["status"] = {"phase": "Running", "containerStatuses": [{"name": "server", "state": {"running": {}}}]}
    leaving = pod("bc-stable-a", initContainerStatuses=[fetch_failed("{}")])
    leaving["metadata"]["deletionTimestamp"] = "2026-12-04T12:00:00Z"
    assert pods.diagnose([running, leaving], NOW) is None
    bad = {"name": "server", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
    two = [pod("bc-stable-z", containerStatuses=[bad]), pod("bc-stable-b", containerStatuses=[bad])]
    problem = pods.diagnose(two, NOW)
    assert problem is not None and problem.pod == "bc-stable-b"


def test_overlay_only_while_progressing() -> None:
    conditions = [
        Cond("Ready", False, "RollingOut", "rolling out version 2"),
        Cond("Reconciling", True, "RollingOut", "rolling out version 2"),
        Cond("Stalled", False, "Reconciled", ""),
    ]
    problem = pods.PodProblem("p", "ArtifactFetchFailed", "fetching the model failed: NoSuchKey: x", "restore it")
    phase, out = pods.overlay(ServicePhase.PROGRESSING, conditions, problem)
    by_type = {cond.type: cond for cond in out}
    assert phase is ServicePhase.PROGRESSING
    assert (by_type["Ready"].status, by_type["Ready"].reason) == (False, "ArtifactFetchFailed")
    assert by_type["Reconciling"].status is True and by_type["Stalled"].status is False  # the kubelet keeps trying
    assert by_type["Ready"].message == problem.text()
    assert pods.overlay(ServicePhase.READY, conditions, problem) == (ServicePhase.READY, conditions)
    assert pods.overlay(ServicePhase.PROGRESSING, conditions, None) == (ServicePhase.PROGRESSING, conditions)


def test_a_crash_loop_caught_while_the_container_runs_again_still_quotes_its_last_exit() -> None:
    cs = {
        "name": "server",
        "ready": False,
        "restartCount": 3,
        "state": {"running": {"startedAt": "2026-12-04T12:00:00Z"}},
        "lastState": {"terminated": {"exitCode": 1, "message": "driftline-runtime serve: sha256 mismatch"}},
    }
    problem = pods.diagnose([pod(phase="Running", containerStatuses=[cs])], NOW)
    assert problem is not None and (problem.pod, problem.reason) == ("bc-stable-1", "CrashLoopBackOff")
    assert problem.text().startswith(
        "pod bc-stable-1: container server: restarted 3 time(s); last exit 1: driftline-runtime serve: sha256 mismatch"
    )
    # Ready again after a restart (a liveness blip, an OOM long ago): no problem.
    assert pods.diagnose([pod(phase="Running", containerStatuses=[{**cs, "ready": True}])], NOW) is None


def test_pods_are_read_only_while_some_pod_of_a_rollout_is_not_ready() -> None:
    from driftline.decide.serving import Rollout

    def rollout(replicas: int, total: int, ready: int) -> Rollout:
        return Rollout(
            version=2,
            previous_version=1,
            replicas=replicas,
            generation=2,
            observed_generation=2,
            total=total,
            updated=total,
            ready=ready,
        )

    assert not pods.worth_reading(None, None), "no Deployment yet: no pods to ask"
    assert not pods.worth_reading(rollout(2, 2, 2), rollout(1, 1, 1)), "a canary between steps, every pod ready"
    assert pods.worth_reading(rollout(1, 2, 1), None), "a surge pod of the new template is not ready"
    assert pods.worth_reading(rollout(2, 2, 2), rollout(1, 1, 0)), "the canary's pod is not ready"
    assert pods.worth_reading(rollout(3, 0, 0), None), "no pod created yet"


def test_a_container_killed_over_its_memory_limit_names_the_limit_not_just_a_crash_loop() -> None:
    crashed = pod(
        containerStatuses=[
            {
                "name": "server",
                "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
            }
        ]
    )
    crashed["spec"] = {"containers": [{"name": "server", "resources": {"limits": {"memory": "64Mi"}}}]}
    problem = pods.diagnose([crashed], NOW)
    assert problem is not None and problem.reason == "OOMKilled"
    assert "over its memory limit 64Mi, restarted 2 time(s)" in problem.message and "exit code 137" in problem.message
    assert "resources.limits.memory" in problem.remedy
