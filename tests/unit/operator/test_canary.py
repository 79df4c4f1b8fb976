"""The canary state machine: start, measure, step, promote, abort; and how decide() hands a move to it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from driftline.api.inferenceservice import InferenceServiceSpec, ServicePhase
from driftline.api.rollout import AnalysisMetric
from driftline.decide.analysis import Reading
from driftline.decide.canary import (
    CanaryPlan,
    Outcome,
    abandoned,
    advance,
    canary_replicas,
    measurement,
    measuring,
    overlay,
    settle,
    share,
)
from driftline.decide.conditions import Cond
from driftline.decide.measure import Due, due
from driftline.decide.serving import Plan, RollBack, Rollout, Step, Version, decide

pytestmark = pytest.mark.unit

NOW = "2026-01-02T03:04:05Z"
SHA = "c" * 64
V1 = Version(1, "Archived", SHA, "pvc://models/m/1", "m-v1", "2026-01-01T00:00:00Z")
V2 = Version(2, "Production", SHA, "pvc://models/m/2", "m-v2", "2026-01-02T00:00:00Z")
ERROR_RATE = AnalysisMetric.model_validate({"name": "error-rate", "threshold": {"max": 0.05}})


def spec(replicas: int = 4, steps: tuple[int, ...] = (25, 50), **analysis: Any) -> InferenceServiceSpec:
    canary = {"steps": [{"weight": w} for w in steps], "analysis": {"count": 2, "minSamples": 10, **analysis}}
    return InferenceServiceSpec.model_validate(
        {"model": "m", "replicas": replicas, "rollout": {"strategy": "Canary", "canary": canary}}
    )


def up(version: int, replicas: int, **kw: Any) -> Rollout:
    state = {"total": replicas, "updated": replicas, "ready": replicas, "available": replicas, "rolled_out": True}
    return Rollout(version, None, replicas, 1, 1, **{**state, **kw})


def good(now: str = NOW) -> list[dict[str, Any]]:
    return [measurement(ERROR_RATE, Reading(0.0, 100, 0.0), 10, 0, now)]


def bad() -> list[dict[str, Any]]:
    return [measurement(ERROR_RATE, Reading(0.5, 100, 0.0), 10, 0, NOW)]


@pytest.mark.parametrize(
    ("stable", "weight", "canary", "pct"),
    [(1, 20, 1, 50), (4, 20, 1, 20), (4, 25, 1, 20), (4, 50, 4, 50), (2, 25, 1, 33), (10, 10, 1, 9), (3, 75, 9, 75)],
)
def test_canary_pods_next_to_a_full_stable(stable: int, weight: int, canary: int, pct: int) -> None:
    assert canary_replicas(stable, weight) == canary
    assert share(stable, canary) == pct


def test_a_canary_starts_at_its_first_step() -> None:
    plan = advance(spec(), 1, V2, None, None, [], NOW)
    assert (plan.outcome, plan.replicas, plan.weight) == (Outcome.CONTINUE, 1, 20)
    a = plan.analysis
    assert (a["phase"], a["version"], a["step"], a["weight"], a["startedAt"]) == ("Running", 2, 0, 25, NOW)
    assert (a["successful"], a["failed"], a["measurements"]) == (0, 0, [])
    assert [(h["action"], h["fromVersion"], h["toVersion"]) for h in plan.history] == [("CanaryStarted", 1, 2)]
    assert [(e.warning, e.reason) for e in plan.events] == [(False, "CanaryStarted")]
    # Nothing measured yet: the next pass changes nothing and says nothing.
    again = advance(spec(), 1, V2, None, plan.analysis, [], NOW)
    assert (again.outcome, again.analysis, again.history, again.events) == (Outcome.CONTINUE, plan.analysis, [], [])


def test_steps_pass_then_the_canary_is_promoted() -> None:
    s = spec()
    a = advance(s, 1, V2, None, None, [], NOW).analysis
    a = advance(s, 1, V2, up(2, 1), a, good(), NOW).analysis
    assert (a["step"], a["successful"], len(a["measurements"])) == (0, 1, 1)
    second = advance(s, 1, V2, up(2, 1), a, good(), NOW)
    assert second.outcome is Outcome.CONTINUE and (second.replicas, second.weight) == (4, 50)
    assert (second.analysis["step"], second.analysis["weight"], second.analysis["successful"]) == (1, 50, 0)
    assert [e.reason for e in second.events] == ["CanaryStep"]
    a = advance(s, 1, V2, up(2, 4), second.analysis, good(), NOW).analysis
    done = advance(s, 1, V2, up(2, 4), a, good(), NOW)
    assert done.outcome is Outcome.PROMOTE and done.analysis["phase"] == "Successful"
    assert [(h["action"], h["fromVersion"], h["toVersion"]) for h in done.history] == [("CanaryPromoted", 1, 2)]
    assert [(e.warning, e.reason) for e in done.events] == [(False, "CanaryPromoted")]
    assert [m["step"] for m in done.analysis["measurements"]] == [0, 0, 1, 1]
    # Until the stable Deployment shows the new version, every pass says promote again, quietly.
    again = advance(s, 1, V2, None, done.analysis, [], NOW)
    assert (again.outcome, again.history, again.events) == (Outcome.PROMOTE, [], [])


def test_a_failed_measurement_aborts_with_the_value_and_its_bound() -> None:
    a = advance(spec(), 1, V2, None, None, [], NOW).analysis
    plan = advance(spec(), 1, V2, up(2, 1), a, bad(), NOW)
    assert plan.outcome is Outcome.ABORT and plan.reason == "AnalysisFailed"
    assert plan.analysis["phase"] == "Failed" and plan.analysis["failed"] == 1
    assert "error-rate 0.5 (must be at most 0.05)" in plan.message and "stable version 1 keeps serving" in plan.message
    assert plan.analysis["message"] == plan.message
    assert [(h["action"], h["reason"]) for h in plan.history] == [("CanaryAborted", "AnalysisFailed")]
    assert [(e.warning, e.reason) for e in plan.events] == [(True, "AnalysisFailed")]
    again = advance(spec(), 1, V2, up(2, 1), plan.analysis, [], NOW)
    assert (again.outcome, again.history, again.events) == (Outcome.ABORT, [], [])


def test_failure_limit_tolerates_then_aborts() -> None:
    s = spec(failureLimit=1, count=3)
    a = advance(s, 1, V2, None, None, [], NOW).analysis
    a = advance(s, 1, V2, up(2, 1), a, bad(), NOW).analysis
    assert a["phase"] == "Running" and a["failed"] == 1
    assert advance(s, 1, V2, up(2, 1), a, bad(), NOW).outcome is Outcome.ABORT


def few() -> list[dict[str, Any]]:
    return [measurement(ERROR_RATE, Reading(0.0, 3, 0.0), 10, 0, NOW)]


def test_too_few_requests_aborts_only_when_asked_to() -> None:
    s = spec(onInconclusive="Rollback")
    a = advance(s, 1, V2, None, None, [], NOW).analysis
    plan = advance(s, 1, V2, up(2, 1), a, few(), NOW)
    assert (plan.outcome, plan.reason, plan.analysis["phase"]) == (
        Outcome.ABORT,
        "AnalysisInconclusive",
        "Inconclusive",
    )
    assert "fewer than minSamples 10" in plan.message


def test_a_quiet_canary_pauses_at_its_step_then_goes_on_once_traffic_comes() -> None:
    """The default: no traffic is no verdict. The step waits (measured again from scratch), says why once, and
    passes by itself when requests arrive; the good version is never rolled back for lack of traffic."""
    a = advance(spec(), 1, V2, None, None, [], NOW).analysis
    plan = advance(spec(), 1, V2, up(2, 1), a, few(), NOW)
    assert plan.outcome is Outcome.CONTINUE and plan.analysis["phase"] == "Running" and plan.analysis["paused"]
    assert (plan.analysis["step"], plan.analysis["inconclusive"]) == (0, 0)  # the step starts over
    assert (
        "paused at step 0 (25%)" in plan.analysis["message"] and "fewer than minSamples 10" in plan.analysis["message"]
    )
    assert [(e.warning, e.reason) for e in plan.events] == [(False, "AnalysisPaused")]
    conditions = overlay(
        [Cond("Ready", False, "CanaryStep", "canary"), Cond("Degraded", False, "Reconciled", "")], plan
    )
    assert [(c.type, c.reason) for c in conditions] == [("Ready", "AnalysisPaused"), ("Degraded", "Reconciled")]
    assert conditions[0].message == plan.analysis["message"]
    # Still quiet: still paused, told once.
    again = advance(spec(), 1, V2, up(2, 1), plan.analysis, few(), NOW)
    assert again.outcome is Outcome.CONTINUE and again.analysis["paused"] and again.events == []
    # Traffic: the pause ends with the first judged round, and the step passes after `count` rounds.
    a = advance(spec(), 1, V2, up(2, 1), again.analysis, good(), NOW).analysis
    assert a["paused"] is False and a["successful"] == 1
    a = advance(spec(), 1, V2, up(2, 1), a, good(), NOW).analysis
    assert (a["step"], a["weight"]) == (1, 50)
    assert (
        overlay([Cond("Ready", False, "CanaryStep", "canary")], advance(spec(), 1, V2, None, a, [], NOW))[0].reason
        == "CanaryStep"
    )


def test_a_quiet_step_may_be_passed_instead() -> None:
    s = spec(onInconclusive="Promote", steps=(50,), count=1)
    a = advance(s, 1, V2, None, None, [], NOW).analysis
    plan = advance(s, 1, V2, up(2, 4), a, few(), NOW)
    assert plan.outcome is Outcome.PROMOTE


def test_pod_loss_errors_within_the_limit_do_not_stop_the_canary() -> None:
    """Canary pods deleted during a step: the rounds over their loss are Errors; up to consecutiveErrorLimit in a row
    the step goes on, and the next good round passes it. Past the limit it aborts, as Argo Rollouts does."""
    lost = [measurement(ERROR_RATE, Reading(None, error="no ready canary pod"), 10, 0, NOW)]
    s = spec(steps=(50,), count=4)
    a = advance(s, 1, V2, None, None, [], NOW).analysis
    for rnd in (good(), lost, lost):
        plan = advance(s, 1, V2, up(2, 1), a, rnd, NOW)
        assert (plan.outcome, plan.analysis["phase"]) == (Outcome.CONTINUE, "Running")
        a = plan.analysis
    assert (a["successful"], a["errors"], a["consecutiveErrors"]) == (1, 2, 2)
    done = advance(s, 1, V2, up(2, 1), a, good(), NOW)
    assert done.outcome is Outcome.PROMOTE and [h["action"] for h in done.history] == ["CanaryPromoted"]
    assert (done.analysis["successful"], done.analysis["errors"], done.analysis["failed"]) == (2, 2, 0)

    s = spec(steps=(50,), count=10, consecutiveErrorLimit=1)
    a = advance(s, 1, V2, None, None, [], NOW).analysis
    a = advance(s, 1, V2, up(2, 1), a, lost, NOW).analysis
    aborted = advance(s, 1, V2, up(2, 1), a, lost, NOW)
    assert (aborted.outcome, aborted.analysis["phase"], aborted.reason) == (Outcome.ABORT, "Error", "AnalysisFailed")
    assert "2 errors in a row, more than consecutiveErrorLimit 1" in aborted.message


def test_every_measurement_errored_fails_the_step() -> None:
    s = spec(count=2, consecutiveErrorLimit=5)
    a = advance(s, 1, V2, None, None, [], NOW).analysis
    err = [measurement(ERROR_RATE, Reading(None, error="connection refused"), 10, 0, NOW)]
    a = advance(s, 1, V2, up(2, 1), a, err, NOW).analysis
    plan = advance(s, 1, V2, up(2, 1), a, err, NOW)
    assert plan.outcome is Outcome.ABORT and "all 2 measurements errored" in plan.message


def test_a_canary_that_never_becomes_available_is_aborted() -> None:
    a = advance(spec(), 1, V2, None, None, [], NOW).analysis
    stuck = up(2, 1, available=0, ready=0, rolled_out=False, deadline_exceeded=True)
    plan = advance(spec(), 1, V2, stuck, a, [], NOW)
    assert (plan.outcome, plan.reason) == (Outcome.ABORT, "ProgressDeadlineExceeded")
    assert "did not become available within 600s" in plan.message


def test_a_version_promoted_again_after_an_abort_gets_a_new_canary() -> None:
    a = advance(spec(), 1, V2, None, None, [], "2026-01-02T01:00:00Z").analysis
    aborted = advance(spec(), 1, V2, up(2, 1), a, bad(), "2026-01-02T01:00:00Z").analysis
    repromoted = Version(2, "Production", SHA, "pvc://models/m/2", "m-v2", "2026-01-03T00:00:00Z")
    plan = advance(spec(), 1, repromoted, None, aborted, [], NOW)
    assert plan.outcome is Outcome.CONTINUE and plan.analysis["phase"] == "Running"
    assert [h["action"] for h in plan.history] == ["CanaryStarted"]


def test_measurement_leaves_non_finite_numbers_out() -> None:
    m = measurement(ERROR_RATE, Reading(math.nan, 0, math.inf), 10, 1, NOW)
    assert m == {
        "metric": "error-rate",
        "time": NOW,
        "step": 1,
        "phase": "Inconclusive",
        "max": 0.05,
        "samples": 0,
        "message": "0 requests in the interval, fewer than minSamples 10",
    }


def test_measuring_only_a_running_analysis_of_an_available_canary() -> None:
    a = advance(spec(), 1, V2, None, None, [], NOW).analysis
    assert measuring(spec(), a, up(2, 1), 2) == 0
    assert measuring(spec(), a, up(2, 1, available=0, rolled_out=False), 2) is None
    assert measuring(spec(), a, up(2, 2), 2) is None  # not yet resized for the step
    assert measuring(spec(), a, None, 2) is None
    assert measuring(spec(), a, up(3, 1), 3) is None  # the analysis is of another version
    assert measuring(spec(), {**a, "phase": "Failed"}, up(2, 1), 2) is None


def test_an_abandoned_analysis_ends_failed_with_the_reason() -> None:
    a = advance(spec(), 1, V2, None, None, [], NOW).analysis
    ended = abandoned(a, "rolled back on request")
    assert ended is not None and (ended["phase"], ended["message"]) == ("Failed", "rolled back on request")
    assert abandoned(ended, "again") is None and abandoned(None, "x") is None


# --- decide() hands forward moves to the canary ---------------------------------------------------------------------


def ready_status(active: int, **extra: Any) -> dict[str, Any]:
    return {
        "activeVersion": active,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Available"}],
        **extra,
    }


def test_decide_moves_forward_through_a_canary() -> None:
    plan = decide(spec(), [V1, V2], up(1, 4), ready_status(1), None, NOW)
    assert (plan.step, plan.serve, plan.canary, plan.active_version) == (Step.CANARY, V1, V2, 1)
    assert plan.history == [] and plan.events == []  # the canary records its own start
    ready = next(c for c in plan.conditions if c.type == "Ready")
    assert (ready.status, ready.reason, plan.phase) == (False, "CanaryStep", "Progressing")


@pytest.mark.parametrize(
    ("the_spec", "versions"),
    [
        (spec(replicas=0), [V1, V2]),  # nothing to compare a canary with
        (spec(), [Version(1, "RolledBack", SHA, "pvc://models/m/1", "m-v1"), V2]),  # leaving a bad version: at once
    ],
)
def test_decide_rolls_directly_when_a_canary_makes_no_sense(
    the_spec: InferenceServiceSpec, versions: list[Version]
) -> None:
    assert decide(the_spec, versions, up(1, 4), ready_status(1), None, NOW).step is Step.ROLL


def test_a_rollback_request_during_a_canary_aborts_it() -> None:
    status = ready_status(1, canaryVersion=2)
    plan = decide(spec(), [V1, V2], up(1, 4), status, "stop-it", NOW)
    assert plan.roll_back is not None and plan.roll_back.version == V2 and plan.roll_back.to_version == 1
    assert (plan.step, plan.serve, plan.canary, plan.last_rollback_request) == (Step.SYNC, V1, None, "stop-it")
    assert [(h["action"], h["fromVersion"], h["toVersion"]) for h in plan.history] == [("CanaryAborted", 1, 2)]
    assert [(e.warning, e.reason) for e in plan.events] == [(True, "RollbackRequested")]


def _plan(*, serve: int | None = 1, canary_of: int | None = 2, roll_back: int | None = None) -> Plan:
    version = {n: Version(n, "Production", f"{n}" * 64, f"pvc://m/v{n}") for n in (1, 2, 3)}
    rb = (
        RollBack(version[roll_back], 1, "RollbackRequested", "rolled back on request (incident-7)")
        if roll_back
        else None
    )
    return Plan(
        step=Step.CANARY if canary_of else Step.SYNC,
        serve=version[serve] if serve else None,
        active_version=serve,
        previous_version=None,
        phase=ServicePhase.PROGRESSING,
        conditions=[],
        history=[],
        roll_back=rb,
        canary=version[canary_of] if canary_of else None,
    )


def _cplan(outcome: Outcome) -> CanaryPlan:
    return CanaryPlan(outcome, replicas=1, weight=25, analysis={"version": 2, "phase": "Running"})


RUNNING = {"analysis": {"version": 2, "phase": "Running", "startedAt": "2026-12-07T00:00:00Z"}}


@pytest.mark.parametrize(
    ("cplan", "deployed", "served", "delete", "fields"),
    [
        # Continuing: the canary keeps its Deployment, and status says which version at what weight.
        (_cplan(Outcome.CONTINUE), True, (1, None, 1), False, {"canaryVersion": 2, "canaryWeight": 25}),
        # Promoted: the canary's version becomes the stable one, the old stable previous; its Deployment goes.
        (_cplan(Outcome.PROMOTE), True, (2, 1, 2), True, {"canaryVersion": None, "canaryWeight": None}),
        # Aborted: the stable version stays; the canary Deployment goes.
        (_cplan(Outcome.ABORT), True, (1, None, 1), True, {"canaryVersion": None, "canaryWeight": None}),
        (_cplan(Outcome.ABORT), False, (1, None, 1), False, {"canaryVersion": None}),  # nothing to delete
    ],
)
def test_after_a_canary_step_the_stable_version_the_canary_deployment_and_status(
    cplan: CanaryPlan, deployed: bool, served: tuple[int, int | None, int], delete: bool, fields: dict[str, Any]
) -> None:
    out = settle(_plan(), cplan, RUNNING, deployed)
    assert (out.stable.version if out.stable else None, out.previous_version, out.active_version) == served
    assert out.delete_canary is delete
    assert fields.items() <= out.status.items() and out.status["analysis"] == cplan.analysis


def test_a_canary_no_longer_wanted_ends_its_analysis_as_failed_with_the_reason() -> None:
    # The service stopped moving to the canary's version (its pin changed): the Deployment goes, the analysis ends.
    out = settle(_plan(canary_of=None), None, RUNNING, True)
    assert out.delete_canary and out.status["canaryVersion"] is None
    assert out.status["analysis"]["phase"] == "Failed"
    assert "the canary of version 2 was abandoned" in out.status["analysis"]["message"]
    # Rolled back on request: the rollback's own message says why.
    out = settle(_plan(canary_of=None, roll_back=2), None, RUNNING, True)
    assert out.status["analysis"]["message"] == "rolled back on request (incident-7)"
    # No running analysis: nothing to end, nothing written.
    out = settle(_plan(canary_of=None), None, {"analysis": {"version": 2, "phase": "Successful"}}, False)
    assert "analysis" not in out.status and not out.delete_canary


@pytest.mark.parametrize(
    ("baseline", "key", "now", "want"),
    [
        (None, "step-0", 100.0, Due.BASELINE),  # after a restart, or the first tick: read a baseline
        (("step-0", 90.0), "step-1", 100.0, Due.BASELINE),  # a new step: its own baseline
        (("step-0", 90.0), "step-0", 100.0, Due.WAIT),  # 10 s into a 30 s interval
        (("step-0", 70.0), "step-0", 100.0, Due.MEASURE),  # the interval has passed
        (("step-0", 60.0), "step-0", 100.0, Due.MEASURE),  # later than due (a slow round): measured over 40 s
    ],
)
def test_a_measurement_is_due_once_per_interval_after_a_baseline(
    baseline: tuple[str, float] | None, key: str, now: float, want: Due
) -> None:
    assert due(baseline, key, now, 30.0) is want
