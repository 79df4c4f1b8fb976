"""Which version an InferenceService serves, rollbacks, and the phase/conditions/history/Events that follow."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.decide.serving import (
    Plan,
    Rollout,
    Step,
    Version,
    decide,
    deployment_facts,
    observe_deployment,
    resolve,
)

pytestmark = pytest.mark.unit

NOW = "2026-01-02T03:04:05Z"
SHA = "a" * 64


def v(n: int, stage: str | None, promoted_at: str | None = None, reason: str = "") -> Version:
    return Version(n, stage, SHA, f"pvc://models/m/run{n}", f"m-v{n}", promoted_at, reason)


def spec(**kw: Any) -> InferenceServiceSpec:
    return InferenceServiceSpec.model_validate({"model": "m", **kw})


def rollout(version: int, previous: int | None = None, replicas: int = 1, **kw: Any) -> Rollout:
    """A finished rollout unless told otherwise."""
    done = {
        "generation": 2,
        "observed_generation": 2,
        "total": replicas,
        "updated": replicas,
        "ready": replicas,
        "available": replicas,
        "rolled_out": True,
    }
    return Rollout(version, previous, replicas, **{**done, **kw})


def cond(plan: Plan, ctype: str) -> Any:
    return next(c for c in plan.conditions if c.type == ctype)


def ready_status(active: int, **extra: Any) -> dict[str, Any]:
    """The status a service that was Ready on `active` carries."""
    return {
        "activeVersion": active,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Available"}],
        "history": [{"time": NOW, "action": "RollForward", "toVersion": active, "reason": "Promoted"}],
        **extra,
    }


# --- resolve: which version should serve ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_spec", "versions", "served", "want", "reason", "degraded", "invalid"),
    [
        ({}, [v(1, "Production")], [None, None], 1, "Promoted", False, False),
        ({}, [v(1, "Archived"), v(2, "Production")], [1, None], 2, "Promoted", False, False),
        # A crash left two Production versions: the newest promotion wins.
        (
            {},
            [v(1, "Production", "2026-01-02T00:00:00Z"), v(2, "Production", "2026-01-01T00:00:00Z")],
            [],
            1,
            "Promoted",
            False,
            False,
        ),
        ({}, [v(1, "Candidate")], [None, None], None, "NoProductionVersion", False, True),
        ({}, [], [None, None], None, "NoProductionVersion", False, True),
        # Auto-follow never serves RolledBack or Rejected: the last good version it served stays.
        ({}, [v(1, "Archived"), v(2, "RolledBack")], [2, 1], 1, "LastGoodVersion", False, False),
        ({}, [v(1, "Archived"), v(2, "Rejected")], [2, 1], 1, "LastGoodVersion", False, False),
        ({}, [v(1, "Rejected"), v(2, "RolledBack")], [2, 1], None, "NoProductionVersion", False, True),
        ({"version": 3}, [v(1, "Production"), v(3, "Candidate")], [1, None], 3, "VersionPinned", False, False),
        # An explicit pin is a person's choice: a Rejected (not rolled back) version is served.
        ({"version": 3}, [v(1, "Production"), v(3, "Rejected")], [1, None], 3, "VersionPinned", False, False),
        ({"version": 9}, [v(1, "Production")], [1, None], 1, "VersionNotFound", True, True),
        ({"version": 9}, [v(1, "Production")], [None, None], None, "VersionNotFound", False, True),
        ({"version": 2}, [v(1, "Archived"), v(2, "RolledBack")], [2, 1], 1, "PinnedVersionRolledBack", True, True),
        ({"version": 2}, [v(2, "RolledBack")], [2, None], None, "PinnedVersionRolledBack", True, True),
    ],
)
def test_resolve(
    the_spec: dict[str, Any],
    versions: list[Version],
    served: list[int | None],
    want: int | None,
    reason: str,
    degraded: bool,
    invalid: bool,
) -> None:
    target = resolve(spec(**the_spec), versions, served)
    assert (target.version.version if target.version else None) == want
    assert (target.reason, target.degraded, target.invalid) == (reason, degraded, invalid)


def test_a_rolled_back_pin_names_the_version_to_pin_in_git() -> None:
    target = resolve(spec(version=2), [v(1, "Archived"), v(2, "RolledBack", reason="bad")], [2, 1])
    assert "pinned version 2 was rolled back (bad)" in target.message
    assert "spec.version: 1" in target.message


def test_a_missing_pin_names_the_modelversion() -> None:
    assert "no ModelVersion m-v9" in resolve(spec(version=9), [v(1, "Production")], [1]).message


# --- decide: the whole plan ------------------------------------------------------------------------------------------


def test_first_pass_creates_the_deployment_and_records_the_roll_forward() -> None:
    plan = decide(spec(), [v(1, "Production")], None, {}, None, NOW)
    assert (plan.step, plan.serve, plan.active_version, plan.previous_version) == (
        Step.CREATE,
        v(1, "Production"),
        1,
        None,
    )
    assert plan.phase == "Progressing"
    assert (cond(plan, "Ready").status, cond(plan, "Progressing").status, cond(plan, "Reconciling").status) == (
        False,
        True,
        True,
    )
    assert plan.history == [
        {
            "time": NOW,
            "action": "RollForward",
            "toVersion": 1,
            "reason": "Promoted",
            "message": "following model m: version 1 is Production",
        }
    ]
    assert [(e.warning, e.reason) for e in plan.events] == [(False, "RollingOut")]


def test_a_finished_rollout_is_ready_once_with_one_event_then_quiet() -> None:
    status: dict[str, Any] = {"activeVersion": 1, "conditions": [{"type": "Ready", "status": "False"}], "history": []}
    plan = decide(spec(), [v(1, "Production")], rollout(1), status, None, NOW)
    assert (plan.step, plan.phase) == (Step.SYNC, "Ready")
    ready = cond(plan, "Ready")
    assert ready.status is True and ready.message.startswith("1/1 replicas of version 1 available")
    assert [(c.type, c.status) for c in plan.conditions if c.type != "Ready"] == [
        ("Reconciling", False),
        ("Stalled", False),
        ("Progressing", False),
        ("Degraded", False),
    ]
    assert [(e.warning, e.reason) for e in plan.events] == [(False, "RolledOut")]
    # Steady state: nothing to do, nothing to say, history untouched.
    again = decide(spec(), [v(1, "Production")], rollout(1), ready_status(1), None, NOW)
    assert again.events == [] and again.history == ready_status(1)["history"] and again.step is Step.SYNC


def test_a_new_production_version_rolls_forward() -> None:
    versions = [v(1, "Archived"), v(2, "Production")]
    plan = decide(spec(), versions, rollout(1), ready_status(1), None, NOW)
    assert (plan.step, plan.serve, plan.active_version, plan.previous_version) == (Step.ROLL, versions[1], 2, 1)
    assert plan.history[-1] | {"message": ""} == {
        "time": NOW,
        "action": "RollForward",
        "fromVersion": 1,
        "toVersion": 2,
        "reason": "Promoted",
        "message": "",
    }
    assert plan.phase == "Progressing" and cond(plan, "Progressing").status is True
    assert [(e.warning, e.reason) for e in plan.events] == [(False, "RollingOut")]
    assert "from version 1" in plan.events[0].message


@pytest.mark.parametrize(
    ("state", "phase", "reason"),
    [
        ({"total": 2, "updated": 1, "available": 1, "rolled_out": False}, "Progressing", "RollingOut"),
        ({"updated": 1, "available": 0, "rolled_out": False}, "Progressing", "RollingOut"),
        ({"observed_generation": 1}, "Progressing", "RollingOut"),
        ({}, "Ready", "Available"),
        # The template's rollout is long done and a pod went away (or the service is scaling up).
        ({"available": 0, "ready": 0}, "Progressing", "Unavailable"),
    ],
)
def test_rollout_progress_is_read_from_the_deployment(state: dict[str, Any], phase: str, reason: str) -> None:
    plan = decide(spec(), [v(1, "Archived"), v(2, "Production")], rollout(2, 1, **state), ready_status(2), None, NOW)
    assert (plan.step, plan.phase, cond(plan, "Ready").reason) == (Step.SYNC, phase, reason)
    assert (plan.active_version, plan.previous_version) == (2, 1)
    assert cond(plan, "Reconciling").status is (phase != "Ready")
    assert plan.events == []


def test_scaled_to_zero_is_ready() -> None:
    plan = decide(spec(replicas=0), [v(1, "Production")], rollout(1, replicas=0), ready_status(1), None, NOW)
    assert plan.phase == "Ready" and cond(plan, "Ready").status is True


def test_previous_version_survives_in_status_when_the_deployment_lacks_it() -> None:
    versions = [v(1, "Archived"), v(2, "Production")]
    plan = decide(spec(), versions, rollout(2), ready_status(2, previousVersion=1), "t1", NOW)
    assert plan.roll_back is not None and plan.serve == versions[0]


def test_a_rollback_request_returns_to_the_previous_version_once_per_token() -> None:
    versions = [v(1, "Archived"), v(2, "Production")]
    plan = decide(spec(), versions, rollout(2, 1), ready_status(2, previousVersion=1), "incident-42", NOW)
    assert plan.roll_back is not None
    assert (plan.roll_back.version.version, plan.roll_back.to_version, plan.roll_back.reason) == (
        2,
        1,
        "RollbackRequested",
    )
    assert "incident-42" in plan.roll_back.message
    assert (plan.step, plan.serve, plan.active_version, plan.previous_version) == (Step.ROLL, versions[0], 1, 2)
    last = plan.history[-1]
    assert (last["action"], last["fromVersion"], last["toVersion"], last["reason"]) == (
        "Rollback",
        2,
        1,
        "RollbackRequested",
    )
    assert plan.last_rollback_request == "incident-42"
    assert [(e.warning, e.reason) for e in plan.events] == [(True, "RollbackRequested")]

    # The registry now says RolledBack and the Deployment serves v1: the same token does nothing more, and
    # auto-follow does not go back to v2.
    after = [v(1, "Archived"), v(2, "RolledBack")]
    status = ready_status(1, previousVersion=2, lastRollbackRequest="incident-42")
    again = decide(spec(), after, rollout(1, 2), status, "incident-42", NOW)
    assert again.roll_back is None and again.step is Step.SYNC and again.serve == after[0]
    assert again.events == [] and again.last_rollback_request == "incident-42"


@pytest.mark.parametrize(
    ("versions", "the_rollout", "status", "why"),
    [
        ([v(1, "Production")], rollout(1), ready_status(1), "no previous version"),
        ([v(1, "RolledBack"), v(2, "Production")], rollout(2, 1), ready_status(2), "previous version 1 is RolledBack"),
        ([], None, {}, "no version is being served"),
    ],
)
def test_a_rollback_request_with_nowhere_to_go_is_refused_with_a_warning(
    versions: list[Version], the_rollout: Rollout | None, status: dict[str, Any], why: str
) -> None:
    plan = decide(spec(), versions, the_rollout, status, "t1", NOW)
    assert plan.roll_back is None and plan.last_rollback_request == "t1"
    refused = [e for e in plan.events if e.reason == "RollbackRequested"]
    assert len(refused) == 1 and refused[0].warning and why in refused[0].message


def test_a_rollout_past_its_deadline_is_rolled_back() -> None:
    versions = [v(1, "Archived"), v(2, "Production")]
    stuck = rollout(
        2,
        1,
        total=2,
        updated=1,
        available=1,
        rolled_out=False,
        deadline_exceeded=True,
        progress_message='ReplicaSet "bc-stable-x" has timed out progressing.',
    )
    plan = decide(spec(rollout={"progressDeadlineSeconds": 45}), versions, stuck, ready_status(2), None, NOW)
    assert plan.roll_back is not None and plan.roll_back.reason == "ProgressDeadlineExceeded"
    assert "within 45s" in plan.roll_back.message and "timed out progressing" in plan.roll_back.message
    assert (plan.step, plan.active_version, plan.previous_version) == (Step.ROLL, 1, 2)
    assert plan.history[-1]["action"] == "Rollback" and plan.history[-1]["reason"] == "ProgressDeadlineExceeded"
    assert [(e.warning, e.reason) for e in plan.events] == [(True, "ProgressDeadlineExceeded")]
    # Why the pods never started, when the operator could see it: the pod, its container and its last words.
    why = "pod bc-stable-7d9-x2x: container server: CrashLoopBackOff: back-off; last exit: sha256 mismatch"
    told = decide(spec(rollout={"progressDeadlineSeconds": 45}), versions, stuck, ready_status(2), None, NOW, why)
    assert told.roll_back is not None and f"progressing.); {why}; traffic back to version 1" in told.roll_back.message
    assert why in told.history[-1]["message"] and why in told.events[0].message


def test_a_deadline_not_yet_observed_for_the_current_template_is_not_acted_on() -> None:
    stale = rollout(2, 1, deadline_exceeded=True, observed_generation=1, rolled_out=False)
    plan = decide(spec(), [v(1, "Archived"), v(2, "Production")], stale, ready_status(2), None, NOW)
    assert plan.roll_back is None and plan.step is Step.SYNC and plan.phase == "Progressing"


def test_a_first_rollout_past_its_deadline_fails_and_stalls() -> None:
    stuck = rollout(1, available=0, ready=0, deadline_exceeded=True, rolled_out=False)
    plan = decide(spec(), [v(1, "Production")], stuck, {"activeVersion": 1}, None, NOW)
    assert plan.roll_back is None and plan.phase == "Failed"
    assert cond(plan, "Ready").reason == "ProgressDeadlineExceeded" and cond(plan, "Stalled").status is True
    assert "no good previous version" in cond(plan, "Ready").message
    assert [(e.warning, e.reason) for e in plan.events] == [(True, "ProgressDeadlineExceeded")]


def test_a_rolled_back_pin_keeps_the_last_good_version_and_reports_degraded() -> None:
    versions = [v(1, "Archived"), v(2, "RolledBack", reason="drift")]
    plan = decide(spec(version=2), versions, rollout(2, 1), ready_status(2), None, NOW)
    assert (plan.step, plan.serve, plan.active_version) == (Step.ROLL, versions[0], 1)
    assert plan.phase == "Degraded"
    assert cond(plan, "Degraded").status is True and cond(plan, "Ready").status is False
    assert "spec.version: 1" in cond(plan, "Degraded").message
    assert plan.history[-1]["action"] == "Rollback" and plan.history[-1]["reason"] == "RolledBack"
    assert {e.reason for e in plan.events} == {"RolledBack", "PinnedVersionRolledBack"}
    # Once on v1 it stays there, Degraded, until the pin changes; then it carries on.
    status = {
        **ready_status(1),
        "conditions": [{"type": "Ready", "status": "False", "reason": "PinnedVersionRolledBack"}],
    }
    held = decide(spec(version=2), versions, rollout(1, 2), status, None, NOW)
    assert (held.step, held.phase, held.events) == (Step.SYNC, "Degraded", [])
    fixed = decide(spec(version=1), versions, rollout(1, 2), status, None, NOW)
    assert fixed.phase == "Ready" and cond(fixed, "Degraded").status is False


def test_a_pin_to_a_missing_version_keeps_serving_and_stalls_until_fixed() -> None:
    plan = decide(spec(version=9), [v(1, "Production")], rollout(1), ready_status(1), None, NOW)
    assert (plan.step, plan.serve, plan.phase) == (Step.SYNC, v(1, "Production"), "Degraded")
    ready = cond(plan, "Ready")
    assert (ready.status, ready.reason) == (False, "VersionNotFound")
    assert cond(plan, "Stalled").status is True and cond(plan, "Reconciling").status is False
    assert [(e.warning, e.reason) for e in plan.events] == [(True, "VersionNotFound")]
    status = {**ready_status(1), "conditions": [{"type": "Ready", "status": "False", "reason": "VersionNotFound"}]}
    assert decide(spec(version=9), [v(1, "Production")], rollout(1), status, None, NOW).events == []


def test_no_production_version_waits_without_a_deployment() -> None:
    plan = decide(spec(), [v(1, "Candidate")], None, {}, None, NOW)
    assert (plan.step, plan.serve, plan.phase, plan.active_version) == (Step.WAIT, None, "Pending", None)
    assert cond(plan, "Reconciling").status is True and cond(plan, "Stalled").status is False
    assert "promote" in cond(plan, "Ready").message
    assert [(e.warning, e.reason) for e in plan.events] == [(True, "NoProductionVersion")]


def test_an_unservable_spec_leaves_a_running_deployment_alone() -> None:
    plan = decide(spec(version=9), [], rollout(1), ready_status(1), None, NOW)
    assert (plan.step, plan.serve, plan.phase, plan.active_version) == (Step.KEEP, None, "Degraded", 1)


def test_history_is_bounded_newest_last() -> None:
    old = [{"time": NOW, "action": "RollForward", "toVersion": i, "reason": "Promoted"} for i in range(20)]
    plan = decide(spec(), [v(1, "Archived"), v(2, "Production")], rollout(1), {"history": old}, None, NOW)
    assert len(plan.history) == 20 and plan.history[0]["toVersion"] == 1 and plan.history[-1]["toVersion"] == 2


# --- observe_deployment ----------------------------------------------------------------------------------------------


def test_observe_deployment_reads_version_previous_and_progress() -> None:
    dep = {
        "metadata": {"generation": 4, "annotations": {"prev": "3"}},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"ver": "5"}}}},
        "status": {
            "observedGeneration": 4,
            "replicas": 3,
            "updatedReplicas": 1,
            "readyReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                {"type": "Available", "status": "True"},
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "timed out",
                },
            ],
        },
    }
    got = observe_deployment(dep, "ver", "prev")
    assert got == Rollout(5, 3, 2, 4, 4, 3, 1, 2, 2, deadline_exceeded=True, progress_message="timed out")
    assert got is not None and got.observed and not got.complete
    assert observe_deployment(None, "ver", "prev") is None
    bare = observe_deployment({"metadata": {"generation": 1}, "spec": {}}, "ver", "prev")
    assert bare == Rollout(None, None, 1, 1, 0) and bare is not None and not bare.observed


# --- deployment_facts: which Deployment watch events are news to the service -----------------------------------------


def _deployment(**status: Any) -> dict[str, Any]:
    """A stable Deployment as the API server returns it from the operator's apply."""
    return {
        "metadata": {
            "name": "iris-stable",
            "uid": "d1",
            "resourceVersion": "100",
            "generation": 1,
            "labels": {"driftline.dev/inference-service": "iris"},
            "annotations": {"driftline.dev/spec-hash": "abc", "prev": "2"},
            "ownerReferences": [{"uid": "isvc-1", "controller": True, "kind": "InferenceService"}],
            "managedFields": [{"manager": "driftline-operator"}],
        },
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"ver": "3"}}, "spec": {"containers": []}}},
        "status": status,
    }


def test_deployment_facts_ignore_what_no_reconcile_reads() -> None:
    """The watch event for the operator's own apply, and the controller's timestamps and bookkeeping, are no news."""
    applied = _deployment(observedGeneration=1, conditions=[_progressing("NewReplicaSetAvailable", "1")])
    event = copy.deepcopy(applied)
    event["metadata"].update(resourceVersion="101", managedFields=[])
    event["status"]["conditions"][0]["lastUpdateTime"] = "2"
    assert deployment_facts(applied, "ver", "prev") == deployment_facts(event, "ver", "prev")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["status"].update(observedGeneration=2),  # the controller saw a new template
        lambda d: d["status"].update(readyReplicas=1),  # rollout progress
        lambda d: d["status"].update(conditions=[_progressing("ProgressDeadlineExceeded", "3", "False")]),
        lambda d: d["metadata"].update(generation=2),  # `kubectl scale`, `kubectl set image`, an edit
        lambda d: d["metadata"]["labels"].clear(),  # a rendered label removed: no new generation
        lambda d: d["metadata"]["annotations"].pop("prev"),
        lambda d: d["metadata"]["ownerReferences"].clear(),  # orphaned: no longer this service's
    ],
)
def test_deployment_facts_change_with_what_a_reconcile_reads(change: Callable[[dict[str, Any]], None]) -> None:
    before = _deployment(observedGeneration=1, conditions=[])
    after = copy.deepcopy(before)
    change(after)
    assert deployment_facts(before, "ver", "prev") != deployment_facts(after, "ver", "prev")


def _progressing(reason: str, updated: str, status: str = "True") -> dict[str, Any]:
    return {"type": "Progressing", "status": status, "reason": reason, "lastUpdateTime": updated}
