"""decide.performance: the verdict on a live performance reading, against a floor or the version's own validation
metric, and the monitors' shared run it feeds (decide.monitor): the same breaches, errors and actions as drift."""

from __future__ import annotations

import math
from typing import Any

import pytest

from driftline.api.monitor import Assessment, MonitorAction
from driftline.api.performance import PerformanceSpec
from driftline.decide import monitor, performance
from driftline.decide.monitor import Reading, RetrainRecord, Retrains, Served
from driftline.decide.pod_readings import PERFORMANCE, combine, parse

pytestmark = pytest.mark.unit

SERVED = Served(active_version=2, previous_version=1, previous_good=True, rolled_forward_at="2026-11-23T10:00:00Z")


def spec(**kw: Any) -> PerformanceSpec:
    return PerformanceSpec.model_validate({"minSamples": 100, "consecutive": 2, **kw})


def at(seconds: int) -> str:
    m, s = divmod(seconds, 60)
    return f"2026-11-23T{10 + m // 60:02d}:{m % 60:02d}:{s:02d}Z"


def acc(value: float, samples: int | None = 500) -> Reading:
    return Reading(features={"accuracy": value, "f1_macro": 0.5}, samples=samples)


@pytest.mark.parametrize(
    ("policy", "reading", "validation", "verdict", "words"),
    [
        ({"threshold": 0.8}, acc(0.79), None, Assessment.BREACH, "live accuracy 0.79 below threshold 0.8 over 500"),
        ({"threshold": 0.8}, acc(0.8), None, Assessment.OK, "live accuracy 0.8 within threshold 0.8"),
        ({"maxDegradation": 0.05}, acc(0.90), 0.96, Assessment.BREACH, "(validation 0.96 - maxDegradation 0.05)"),
        ({"maxDegradation": 0.05}, acc(0.92), 0.96, Assessment.OK, "within threshold 0.91"),
        ({"maxDegradation": 0.05}, acc(0.5), None, Assessment.ERROR, "version 2 records no validation accuracy"),
        ({"metric": "log_loss", "threshold": 0.5}, Reading({"log_loss": 0.6}, samples=500), None, Assessment.BREACH,
         "live log_loss 0.6 above threshold 0.5"),
        ({"metric": "rmse", "maxDegradation": 1}, Reading({"rmse": 3.5}, samples=500), 2.0, Assessment.BREACH,
         "above threshold 3"),
        ({"threshold": 0.8}, acc(0.1, samples=99), None, Assessment.INSUFFICIENT_SAMPLES, "99 labelled rows"),
        ({"threshold": 0.8}, acc(math.nan), None, Assessment.INSUFFICIENT_SAMPLES, "is NaN"),
        ({"metric": "f1", "threshold": 0.8}, acc(0.1), None, Assessment.ERROR,
         "no live f1 among the metrics read (the pods export: accuracy, f1_macro)"),
        ({"threshold": 0.8}, acc(math.inf), None, Assessment.ERROR, "garbled"),
        ({"threshold": 0.8}, Reading(error="no ready pod"), None, Assessment.ERROR, "no ready pod"),
        ({"threshold": 0.8}, Reading(score=0.7), None, Assessment.BREACH, "live accuracy 0.7 below"),  # Prometheus
    ],
)  # fmt: skip
def test_assess(
    policy: dict[str, Any], reading: Reading, validation: float | None, verdict: Assessment, words: str
) -> None:
    got = performance.assess(spec(**policy), reading, validation, 2)
    assert got.assessment is verdict
    assert words in got.message, got.message


def test_the_status_says_the_value_and_the_bound_it_was_judged_against() -> None:
    got = performance.assess(spec(maxDegradation=0.05), acc(0.9), 0.96, 2)
    assert got.facts == {"metric": "accuracy", "value": 0.9, "threshold": 0.91, "validation": 0.96}
    floor = performance.assess(spec(threshold=0.8), acc(0.9), 0.96, 2)
    assert floor.facts["validation"] is None and floor.facts["threshold"] == 0.8


NO_RETRAINS = Retrains()


def run(s: PerformanceSpec, readings: list[Reading], retrains: Retrains = NO_RETRAINS) -> list[monitor.MonitorPlan]:
    last: dict[str, Any] = {}
    plans = []
    for i, r in enumerate(readings):
        plan = performance.decide(s, None, r, 0.96, last, SERVED, retrains, at(7200 + 10 * i))
        plans.append(plan)
        last = plan.status
    return plans


def test_a_drop_alerts_once_after_consecutive_breaches_with_its_own_condition() -> None:
    plans = run(spec(threshold=0.8), [acc(0.7), acc(0.7), acc(0.7)])
    assert [len(p.events) for p in plans] == [0, 1, 0]
    cond = plans[1].conditions[0]
    assert (cond.type, cond.status, cond.reason) == ("Underperforming", True, "PerformanceDropped")
    assert plans[0].conditions[0].status is False and "1 of 2" in plans[0].conditions[0].message
    assert plans[1].events[0].reason == "PerformanceDropped" and plans[1].status["lastAction"] == "Alert"


def test_missing_labels_never_act() -> None:
    plans = run(spec(threshold=0.8, action="Retrain"), [acc(0.1, samples=10)] * 5 + [acc(math.nan)] * 5)
    assert all(p.action is None and not p.events for p in plans)
    assert all(p.conditions[0].status is None and p.conditions[0].reason == "InsufficientSamples" for p in plans)


def test_a_drop_long_after_the_roll_forward_is_retrained_on() -> None:
    from driftline.api.inferenceservice import RetrainSpec

    template = {"model": "m", "dataset": {"uri": "sklearn://iris"}, "estimator": "sklearn.tree.DecisionTreeClassifier",
                "output": {"storageUri": "pvc://models/m"}}  # fmt: skip
    retrain = RetrainSpec.model_validate({"template": template})
    s = spec(threshold=0.8, action="Retrain", rollbackWindowSeconds=60)
    last: dict[str, Any] = {}
    for i in range(2):
        plan = performance.decide(s, retrain, acc(0.6), 0.96, last, SERVED, Retrains(), at(7200 + 10 * i))
        last = plan.status
    assert plan.action is MonitorAction.RETRAIN
    assert (
        plan.history[-1]["reason"] == "PerformanceDropped" and "live accuracy 0.6 below" in plan.history[-1]["message"]
    )


def test_a_drop_right_after_a_roll_forward_rolls_back() -> None:
    s = spec(threshold=0.8, action="Rollback")
    last: dict[str, Any] = {}
    for i in range(2):
        plan = performance.decide(s, None, acc(0.6), 0.96, last, SERVED, Retrains(), at(60 + 10 * i))
        last = plan.status
    assert plan.action is MonitorAction.ROLLBACK and plan.rollback_to == 1
    assert "drop in live performance began after version 2 rolled out" in plan.rollback_message


def test_each_monitor_records_only_the_retrains_it_started() -> None:
    def job(name: str, created: str, trigger: str | None) -> dict[str, Any]:
        notes = {"driftline.dev/retrain-trigger": trigger} if trigger else {}
        return {"metadata": {"name": name, "creationTimestamp": created, "labels": {"driftline.dev/retrain": "1"},
                             "annotations": notes}, "status": {"phase": "Succeeded"}}  # fmt: skip

    jobs = [job("r1", at(10), None), job("r2", at(20), "Performance"), job("r3", at(30), "Request")]
    by_drift = monitor.retrains_from(jobs, "driftline.dev/retrain", "Drift")
    by_performance = monitor.retrains_from(jobs, "driftline.dev/retrain", "Performance")
    assert by_drift.newest is not None and by_drift.newest.name == "r1"  # no trigger: started by drift
    assert by_performance.newest == RetrainRecord("r2", at(20), None, "retrain TrainingJob r2")
    assert by_drift.last_started == by_performance.last_started == at(30)  # one cooldown for all
    plan = performance.decide(spec(threshold=0.8), None, acc(0.9), 0.96, {}, SERVED, by_performance, at(40))
    assert plan.status["lastRetrainJob"] == "r2" and plan.history[0]["reason"] == "PerformanceDropped"


def test_pods_live_performance_is_read_and_combined_by_labelled_rows() -> None:
    def page(values: dict[str, float], samples: int) -> str:
        lines = [f'driftline_live_performance{{metric="{k}",model="m",version="1"}} {v}' for k, v in values.items()]
        lines.append(f'driftline_live_performance_samples{{model="m",version="1"}} {samples}')
        lines.append('driftline_feature_drift{feature="accuracy",method="psi",model="m",version="1"} 9')
        return "\n".join(["# TYPE driftline_live_performance gauge", *lines[:-2], *lines[-2:]]) + "\n"

    a = parse(page({"accuracy": 0.9, "log_loss": 0.3}, 300), "", PERFORMANCE)
    b = parse(page({"accuracy": 0.6, "log_loss": math.nan}, 100), "", PERFORMANCE)
    assert a.features == {"accuracy": 0.9, "log_loss": 0.3} and a.samples == 300
    reading = combine([a, b])
    assert reading.samples == 400 and reading.features["accuracy"] == pytest.approx(0.825)
    assert reading.features["log_loss"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="driftline_live_performance_samples"):
        parse('driftline_live_performance{metric="accuracy",model="m",version="1"} 0.9\n', "", PERFORMANCE)
