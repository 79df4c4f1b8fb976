"""decide.drift: the verdict on a drift reading, the runs of breaches and errors, and the action they set off."""

from __future__ import annotations

import math
from typing import Any

import pytest

from driftline.api.drift import DriftSpec
from driftline.api.inferenceservice import RetrainSpec, ServicePhase
from driftline.api.monitor import Assessment, MonitorAction
from driftline.decide import monitor
from driftline.decide.conditions import Cond
from driftline.decide.drift import assess, decide, may_roll_back, top_features
from driftline.decide.monitor import (
    MonitorPlan,
    Reading,
    RetrainRecord,
    Retrains,
    Served,
    overlay,
    served_from,
    worth_writing,
)


def degraded(s: DriftSpec | None, status: dict[str, Any] | None) -> str | None:
    return monitor.degraded(s, monitor.DRIFT, status)


def retrains_from(jobs: list[dict[str, Any]], label: str) -> Retrains:
    return monitor.retrains_from(jobs, label, monitor.DRIFT.trigger)


def serving_follows(s: DriftSpec, last: dict[str, Any] | None, plan: MonitorPlan) -> bool:
    return monitor.serving_follows(s, monitor.DRIFT, last, plan)


def drift_status_patch(
    old: dict[str, Any], plan: MonitorPlan, conditions: list[dict[str, Any]], limit: int | None = None
) -> dict[str, Any] | None:
    return monitor.status_patch("drift", old, plan, conditions, limit)


pytestmark = pytest.mark.unit

T0 = "2026-11-23T10:00:00Z"


def spec(**kw: Any) -> DriftSpec:
    base: dict[str, Any] = {"threshold": 0.25, "minSamples": 100, "consecutive": 3}
    return DriftSpec.model_validate({**base, **kw})


def at(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"2026-11-23T{10 + h:02d}:{m:02d}:{s:02d}Z"


RETRAIN = RetrainSpec.model_validate(
    {
        "template": {
            "model": "m",
            "dataset": {"uri": "sklearn://iris"},
            "estimator": "sklearn.tree.DecisionTreeClassifier",
            "output": {"storageUri": "pvc://models/m"},
        },
        "cooldown": "10m",
    }
)
NO_RETRAINS = Retrains()
SERVED = Served(active_version=2, previous_version=1, previous_good=True, rolled_forward_at=T0)
HIGH = Reading(features={"a": 0.9, "b": 0.1}, samples=500)
LOW = Reading(features={"a": 0.05, "b": 0.1}, samples=500)


def run(
    s: DriftSpec,
    readings: list[Reading],
    *,
    served: Served = SERVED,
    retrains: Retrains = NO_RETRAINS,
    start: int = 60,
    step: int = 10,
) -> list[Any]:
    """Feed readings one interval apart, carrying status.drift over as the handler does; return every plan."""
    last: dict[str, Any] = {}
    plans = []
    for i, r in enumerate(readings):
        plan = decide(s, RETRAIN, r, last, served, retrains, at(start + i * step))
        plans.append(plan)
        last = plan.status
    return plans


@pytest.mark.parametrize(
    ("reading", "verdict"),
    [
        (Reading(features={"a": 0.3}, samples=100), Assessment.BREACH),
        (Reading(features={"a": 0.25}, samples=100), Assessment.OK),  # "exceeds": equal is not a breach
        (Reading(features={"a": 0.3, "b": math.nan}, samples=100), Assessment.BREACH),
        (Reading(features={"a": 0.9}, samples=99), Assessment.INSUFFICIENT_SAMPLES),
        (Reading(features={"a": math.nan}, samples=1000), Assessment.INSUFFICIENT_SAMPLES),
        (Reading(features={}, samples=1000), Assessment.ERROR),
        (Reading(features={"a": math.inf}, samples=1000), Assessment.ERROR),
        (Reading(features={"a": -0.1}, samples=1000), Assessment.ERROR),
        (Reading(error="connection refused"), Assessment.ERROR),
        (Reading(score=0.5), Assessment.BREACH),  # Prometheus: no sample count, the score alone
        (Reading(score=math.nan), Assessment.INSUFFICIENT_SAMPLES),
    ],
)
def test_assess(reading: Reading, verdict: Assessment) -> None:
    assert assess(spec(), reading)[0] is verdict


def test_score_is_the_largest_feature_value() -> None:
    _, score, msg = assess(spec(), Reading(features={"a": 0.3, "b": 0.7, "c": math.nan}, samples=200))
    assert score == 0.7
    assert "0.7" in msg and "above threshold 0.25" in msg and "200 inputs" in msg


def test_alert_fires_once_after_consecutive_breaches() -> None:
    plans = run(spec(action="Alert"), [HIGH] * 5)
    assert [p.status["consecutiveBreaches"] for p in plans] == [1, 2, 3, 4, 5]
    assert [bool(p.events) for p in plans] == [False, False, True, False, False]
    assert [p.conditions[0].status for p in plans] == [False, False, True, True, True]
    assert plans[2].status["lastAction"] == "Alert" and plans[2].status["lastActionTime"] == at(80)
    assert plans[0].status["breachingSince"] == at(60) == plans[4].status["breachingSince"]
    assert all(p.action is None for p in plans)  # an alert needs no act beyond the Event and condition


def test_a_new_run_of_breaches_alerts_again() -> None:
    plans = run(spec(action="Alert", consecutive=2), [HIGH, HIGH, LOW, HIGH, HIGH])
    assert [bool(p.events) for p in plans] == [False, True, False, False, True]
    assert plans[2].status["breachingSince"] is None and plans[2].conditions[0].reason == "NoDrift"


def test_errors_never_count_as_breaches_nor_end_a_run() -> None:
    err = Reading(error="timeout")
    plans = run(spec(action="Alert"), [HIGH, err, err, HIGH, HIGH])
    assert [p.status["consecutiveBreaches"] for p in plans] == [1, 1, 1, 2, 3]
    assert [p.status["consecutiveErrors"] for p in plans] == [0, 1, 2, 0, 0]
    assert [p.status["assessment"] for p in plans][1] == "Error"
    assert plans[1].conditions[0] == Cond("Drifted", None, "MetricsUnavailable", "timeout")
    assert [bool(p.events) for p in plans] == [False, False, False, False, True]


def test_too_few_samples_are_never_judged_and_end_a_run() -> None:
    few = Reading(features={"a": 5.0}, samples=10)
    plans = run(spec(action="Alert"), [HIGH, HIGH, few, HIGH, HIGH, few])
    assert [p.status["consecutiveBreaches"] for p in plans] == [1, 2, 0, 1, 2, 0]
    assert not any(p.events for p in plans)
    assert plans[2].conditions[0].reason == "InsufficientSamples" and plans[2].conditions[0].status is None


def test_action_none_records_only() -> None:
    plans = run(spec(action="None"), [HIGH] * 4)
    assert plans[-1].conditions[0].status is True
    assert not any(p.events or p.action for p in plans) and plans[-1].status["lastAction"] is None


def test_rollback_when_the_drift_began_within_the_window_after_a_roll_forward() -> None:
    plans = run(spec(action="Rollback", rollbackWindowSeconds=600), [HIGH] * 3)
    last = plans[-1]
    assert last.action is MonitorAction.ROLLBACK and last.rollback_to == 1
    assert last.status["lastAction"] == "Rollback"
    assert last.status["breachingSince"] == at(60)
    assert "traffic back to version 1" in last.events[0].message and last.events[0].warning


@pytest.mark.parametrize(
    ("served", "why"),
    [
        (Served(2, 1, True, at(-7200)), "beyond rollbackWindowSeconds 600"),
        (Served(2, None, False, T0), "no previous version"),
        (Served(2, 1, False, T0), "previous version 1 is Rejected or RolledBack"),
        (Served(2, 1, True, None), "not in status.history"),
    ],
)
def test_no_rollback_falls_back_to_an_alert_saying_why(served: Served, why: str) -> None:
    plans = run(spec(action="Rollback", rollbackWindowSeconds=600), [HIGH] * 4, served=served)
    assert all(p.action is None for p in plans)
    assert plans[2].status["lastAction"] == "Alert" and why in plans[2].events[0].message
    assert not plans[3].events  # once per run


SETTLED = Served(active_version=2, previous_version=1, previous_good=True, rolled_forward_at=at(-7200))
"""Serving version 2 since long before the drift: the world changed, not the model."""


def test_retrain_when_none_in_flight_and_the_cooldown_passed() -> None:
    plans = run(spec(action="Retrain"), [HIGH] * 3, served=SETTLED)
    assert plans[-1].action is MonitorAction.RETRAIN
    assert plans[-1].history[0]["action"] == "Retrain" and plans[-1].history[0]["reason"] == "DriftDetected"


def test_retrain_waits_for_the_one_in_flight() -> None:
    plans = run(
        spec(action="Retrain"),
        [HIGH] * 4,
        served=SETTLED,
        retrains=Retrains(in_flight="svc-retrain-1", last_started=T0),
    )
    assert all(p.action is None for p in plans)
    assert "svc-retrain-1 is still running" in plans[-1].status["message"]


def test_retrain_respects_the_cooldown_then_fires_again_while_drift_lasts() -> None:
    s = spec(action="Retrain")
    started = at(0)
    early = run(s, [HIGH] * 3, served=SETTLED, retrains=Retrains(last_started=started), start=60)
    assert early[-1].action is None and "cooldown 10m" in early[-1].status["message"]
    late = run(s, [HIGH] * 3, served=SETTLED, retrains=Retrains(last_started=started), start=600)
    assert late[-1].action is MonitorAction.RETRAIN


def test_retrain_rolls_back_drift_that_followed_a_roll_forward_and_does_not_retrain_in_that_run() -> None:
    plans = run(spec(action="Retrain", rollbackWindowSeconds=600), [HIGH] * 6)
    assert [p.action for p in plans] == [None, None, MonitorAction.ROLLBACK, None, None, None]
    assert plans[2].rollback_to == 1 and "traffic back to version 1" in plans[2].rollback_message
    assert not plans[2].history  # the rollback's own history entry is written by the serving reconcile
    assert "rolled back" in plans[-1].status["message"] and plans[-1].status["lastAction"] == "Rollback"


def test_retrain_retrains_when_no_rollback_is_possible() -> None:
    nowhere = Served(active_version=1, previous_version=None, previous_good=False, rolled_forward_at=T0)
    assert run(spec(action="Retrain"), [HIGH] * 3, served=nowhere)[-1].action is MonitorAction.RETRAIN
    rejected_before = Served(active_version=2, previous_version=1, previous_good=False, rolled_forward_at=T0)
    assert run(spec(action="Retrain"), [HIGH] * 3, served=rejected_before)[-1].action is MonitorAction.RETRAIN


def test_top_features_are_sorted_and_skip_unknown_values() -> None:
    got = top_features({"a": 0.1, "b": 0.9, "c": math.nan, "d": 0.5}, n=2)
    assert got == [{"name": "b", "value": 0.9}, {"name": "d", "value": 0.5}]


def test_degraded_after_the_error_limit_and_only_a_ready_service_is_overlaid() -> None:
    s = spec(consecutiveErrorLimit=2)
    assert degraded(s, {"consecutiveErrors": 1}) is None
    why = degraded(s, {"consecutiveErrors": 2, "message": "no ready pod"})
    assert why is not None and "no ready pod" in why
    assert degraded(spec(enabled=False, consecutiveErrorLimit=2), {"consecutiveErrors": 9}) is None
    conds = [Cond("Ready", True, "Available"), Cond("Degraded", False, "Reconciled")]
    phase, out = overlay(ServicePhase.READY, conds, [why])
    assert phase is ServicePhase.DEGRADED
    assert [(c.type, c.status, c.reason) for c in out] == [
        ("Ready", True, "Available"),
        ("Degraded", True, "MetricsUnavailable"),
    ]
    assert overlay(ServicePhase.PROGRESSING, conds, [why]) == (ServicePhase.PROGRESSING, conds)
    assert overlay(ServicePhase.READY, conds, [None]) == (ServicePhase.READY, conds)


def test_served_from_status_finds_when_the_active_version_rolled_out() -> None:
    status = {
        "activeVersion": 2,
        "previousVersion": 1,
        "history": [
            {"time": at(0), "action": "RollForward", "toVersion": 1},
            {"time": at(30), "action": "CanaryPromoted", "toVersion": 2},
            {"time": at(90), "action": "Retrain", "toVersion": 2},
        ],
    }
    assert served_from(status, [1, 2]) == Served(2, 1, True, at(30))
    assert served_from(status, [2]).previous_good is False


def test_a_retrain_the_status_does_not_name_is_recorded_from_the_cluster() -> None:
    """The operator died between creating the retrain TrainingJob and writing status: the next reading records it
    (status and history, at the time it started) and starts no other while it runs."""
    record = RetrainRecord("svc-retrain-1", at(30), 1, "psi drift score 0.9 above threshold 0.25")
    retrains = Retrains(in_flight="svc-retrain-1", last_started=at(30), newest=record)
    last = {"consecutiveBreaches": 2, "breachingSince": at(10), "lastAction": None}
    plan = decide(spec(action="Retrain"), RETRAIN, HIGH, last, SETTLED, retrains, at(40))
    assert plan.action is None
    assert (plan.status["lastAction"], plan.status["lastActionTime"], plan.status["lastRetrainJob"]) == (
        "Retrain",
        at(30),
        "svc-retrain-1",
    )
    assert [(h["time"], h["action"], h["fromVersion"], h["message"]) for h in plan.history] == [
        (at(30), "Retrain", 1, record.reason)
    ]
    again = decide(spec(action="Retrain"), RETRAIN, HIGH, plan.status, SETTLED, retrains, at(50))
    assert again.history == [] and again.action is None  # recorded once


def test_retrains_from_reads_the_newest_and_its_annotations() -> None:
    def tj(name: str, created: str, phase: str, **notes: str) -> dict[str, Any]:
        meta = {"name": name, "creationTimestamp": created, "labels": {"driftline.dev/retrain": "1"}}
        return {"metadata": {**meta, "annotations": notes}, "status": {"phase": phase}}

    jobs = [
        tj("s-retrain-1", at(0), "Succeeded"),
        tj("s-retrain-2", at(60), "Running", **{"driftline.dev/retrain-served-version": "3"}),
        {"metadata": {"name": "by-hand", "creationTimestamp": at(90)}},
    ]
    got = retrains_from(jobs, "driftline.dev/retrain")
    assert got.in_flight == "s-retrain-2" and got.last_started == at(60)
    assert got.newest == RetrainRecord("s-retrain-2", at(60), 3, "retrain TrainingJob s-retrain-2")
    assert retrains_from([], "driftline.dev/retrain") == Retrains()


def test_only_a_breach_under_rollback_or_retrain_may_roll_back() -> None:
    assert may_roll_back(spec(action="Rollback"), HIGH) and may_roll_back(spec(action="Retrain"), HIGH)
    assert not may_roll_back(spec(action="Alert"), HIGH) and not may_roll_back(spec(action="Rollback"), LOW)
    assert not may_roll_back(spec(action="Rollback"), Reading(error="connection refused"))


def test_a_reading_that_changes_only_the_time_is_not_written_until_the_refresh_is_due() -> None:
    first = decide(spec(), None, LOW, {}, SERVED, NO_RETRAINS, at(0)).status
    assert worth_writing({}, first)
    # As the API server stores it: the merge patch dropped the None fields.
    stored = {k: v for k, v in first.items() if v is not None}
    again = decide(spec(), None, LOW, stored, SERVED, NO_RETRAINS, at(30)).status
    assert again["lastScrapeTime"] == at(30)
    assert not worth_writing(stored, again)
    assert worth_writing(stored, decide(spec(), None, LOW, stored, SERVED, NO_RETRAINS, at(300)).status)
    moved = Reading(features={"a": 0.06, "b": 0.1}, samples=500)
    assert worth_writing(stored, decide(spec(), None, moved, stored, SERVED, NO_RETRAINS, at(30)).status)
    breach = decide(spec(), None, HIGH, stored, SERVED, NO_RETRAINS, at(30)).status
    assert breach["consecutiveBreaches"] == 1 and worth_writing(stored, breach)


_COND = [{"type": "Drifted", "status": "False", "reason": "NoDrift", "message": "", "lastTransitionTime": "t0"}]
_QUIET = {"score": 0.1, "assessment": "Ok", "lastScrapeTime": "2026-12-07T00:00:00Z"}


@pytest.mark.parametrize(
    ("new_drift", "conditions", "history", "written"),
    [
        ({**_QUIET, "lastScrapeTime": "2026-12-07T00:00:10Z"}, _COND, [], False),  # only the time moved: no write
        ({**_QUIET, "lastScrapeTime": "2026-12-07T00:05:00Z"}, _COND, [], True),  # but at least every 5 minutes
        ({**_QUIET, "score": 0.3}, _COND, [], True),  # a new score
        (_QUIET, [{**_COND[0], "status": "True", "reason": "DriftDetected"}], [], True),  # a new condition
        (_QUIET, _COND, [{"action": "Retrain", "time": "2026-12-07T00:00:05Z"}], True),  # a decision to record
    ],
)
def test_a_reading_is_written_only_when_it_tells_something_new(
    new_drift: dict[str, Any], conditions: list[dict[str, Any]], history: list[dict[str, Any]], written: bool
) -> None:
    old = {"drift": _QUIET, "conditions": _COND, "history": [{"action": "RollForward", "time": "2026-12-06T23:00:00Z"}]}
    patch = drift_status_patch(old, MonitorPlan(status=new_drift, conditions=[], history=history), conditions)
    assert (patch is not None) is written
    if patch is not None and history:
        assert [h["action"] for h in patch["history"]] == ["RollForward", "Retrain"]  # in time order


def test_an_entry_recorded_after_the_fact_goes_where_it_happened() -> None:
    old = {"history": [{"action": "RollForward", "time": "2026-12-07T00:00:10Z"}]}
    late = {"action": "Retrain", "time": "2026-12-07T00:00:05Z"}
    patch = drift_status_patch(old, MonitorPlan(status=_QUIET, conditions=[], history=[late]), _COND)
    assert patch is not None and [h["action"] for h in patch["history"]] == ["Retrain", "RollForward"]


@pytest.mark.parametrize(
    ("last_errors", "new_errors", "action", "follows"),
    [
        (0, 0, None, False),  # a quiet reading
        (0, 0, MonitorAction.ROLLBACK, True),  # a rollback: serving moves now
        (4, 5, None, True),  # the fifth failed reading in a row: Degraded begins
        (5, 0, None, True),  # a good reading again: Degraded ends
        (5, 6, None, False),  # still Degraded
        (0, 0, MonitorAction.RETRAIN, False),  # a retrain runs on its own
    ],
)
def test_serving_reconciles_at_once_after_a_rollback_or_when_degraded_begins_or_ends(
    last_errors: int, new_errors: int, action: MonitorAction | None, follows: bool
) -> None:
    settings = DriftSpec.model_validate({"consecutiveErrorLimit": 5})
    plan = MonitorPlan(status={"consecutiveErrors": new_errors, "message": "down"}, conditions=[], action=action)
    assert serving_follows(settings, {"consecutiveErrors": last_errors, "message": "down"}, plan) is follows


@pytest.mark.parametrize(
    ("asked", "last", "retrain", "running", "want"),
    [
        (None, None, RETRAIN, None, None),  # nothing asked
        ("t1", "t1", RETRAIN, None, None),  # handled already: leaving the annotation in Git is harmless
        ("t2", "t1", RETRAIN, None, (True, "retrain requested (t2)")),  # a new value asks again, no cooldown
        ("t2", None, RETRAIN, "bc-retrain-3", (False, "while bc-retrain-3 is still running")),  # one at a time
        ("t2", None, None, None, (False, "spec.retrain is empty")),  # nothing to train
    ],
)
def test_a_retrain_request_starts_one_once_per_value_and_never_two_at_once(
    asked: str | None, last: str | None, retrain: RetrainSpec | None, running: str | None, want: Any
) -> None:
    from driftline.decide.drift import retrain_request

    ask = retrain_request(asked, last, retrain, Retrains(in_flight=running))
    if want is None:
        assert ask is None
    else:
        assert ask is not None and ask.token == asked and ask.start is want[0] and want[1] in ask.message


def test_a_run_of_failed_readings_is_written_up_to_the_limit_then_only_with_the_refresh() -> None:
    """A Prometheus that is down: each service counts its failures up to consecutiveErrorLimit (Degraded there), then
    writes only when the refresh is due, not at every reading."""
    s, down = spec(consecutiveErrorLimit=3), Reading(error="http://prometheus:9090: connection refused")
    stored: dict[str, Any] = {}
    written = []
    for i in range(12):  # a reading every 10 s for two minutes
        new = decide(s, None, down, stored, SERVED, NO_RETRAINS, at(10 * i)).status
        if worth_writing(stored, new, s.consecutive_error_limit):
            written.append(new["consecutiveErrors"])
            stored = {k: v for k, v in new.items() if v is not None}
    assert written == [1, 2, 3]  # past the limit nothing new to act on: the count rests at the limit
    assert degraded(s, stored) is not None
    # Five minutes on, the refresh writes the count read then; a reading that works again is written at once.
    late = decide(s, None, down, stored, SERVED, NO_RETRAINS, at(10 * 3 + 300)).status
    assert worth_writing(stored, late, s.consecutive_error_limit) and late["consecutiveErrors"] == 4
    ok = decide(s, None, LOW, stored, SERVED, NO_RETRAINS, at(10 * 12)).status
    assert ok["consecutiveErrors"] == 0 and worth_writing(stored, ok, s.consecutive_error_limit)


def test_a_handled_retrain_request_is_recorded_and_a_started_one_in_the_history_and_drifts_last_job() -> None:
    from driftline.decide.drift import RetrainAsk, retrain_request_status

    status = {"activeVersion": 2, "history": [{"action": "RollForward"}], "drift": {"assessment": "Ok"}}
    refused = RetrainAsk("t1", False, "retrain requested (t1) while bc-retrain-1 is still running")
    assert retrain_request_status(status, refused, None, T0) == {"lastRetrainRequest": "t1"}
    started = retrain_request_status(status, RetrainAsk("t2", True, "retrain requested (t2)"), "bc-retrain-2", T0)
    assert started["lastRetrainRequest"] == "t2" and started["drift"] == {"lastRetrainJob": "bc-retrain-2"}
    assert [h["action"] for h in started["history"]] == ["RollForward", "Retrain"]
    assert (started["history"][-1]["reason"], started["history"][-1]["toVersion"]) == ("RetrainRequested", 2)
    # Without drift watched, status.drift is left alone.
    assert "drift" not in retrain_request_status({"activeVersion": 2}, RetrainAsk("t3", True, "x"), "j", T0)
