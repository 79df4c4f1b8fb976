"""Invariants of the pure decisions over generated inputs (hypothesis): never two Production versions, never
serving or rolling back to a RolledBack or Rejected version, never acting on unknown metrics."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.api.drift import DriftSpec
from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.api.monitor import Assessment
from driftline.decide import drift, monitor, serving
from driftline.decide.promotion import Registered, survivor, to_archive

pytestmark = pytest.mark.unit

STAGES = [None, "Candidate", "Staging", "Production", "Archived", "Rejected", "RolledBack"]
GOOD = ("Candidate", "Staging", "Production", "Archived", None)


def _time(i: int) -> str:
    return f"2026-11-23T10:{i // 60:02d}:{i % 60:02d}Z"


versions_st = st.lists(
    st.builds(
        lambda stage, t: (stage, t),
        st.sampled_from(STAGES),
        st.integers(0, 3599),
    ),
    min_size=1,
    max_size=6,
).map(
    lambda raw: [
        serving.Version(
            version=i + 1,
            stage=stage,
            sha256="a" * 64,
            storage_uri=f"pvc://m/{i + 1}",
            name=f"m-v{i + 1}",
            promoted_at=_time(t) if stage == "Production" else None,
        )
        for i, (stage, t) in enumerate(raw)
    ]
)


@given(versions_st, st.data())
def test_a_promotion_leaves_exactly_one_production_version(versions: list[serving.Version], data: Any) -> None:
    promoted = data.draw(st.sampled_from(versions))
    registered = [Registered(v.name, v.version, v.stage, v.promoted_at) for v in versions]
    archived = set(to_archive(registered, promoted.name))
    after = [v.stage if v.name not in archived else "Archived" for v in versions if v.name != promoted.name]
    assert [*after, "Production"].count("Production") == 1
    prod = [r for r in registered if r.stage == "Production"]
    assert (survivor(registered) is None) == (not prod)
    assert survivor(registered) in {None, *(r.name for r in prod)}


@given(
    versions_st,
    st.one_of(st.none(), st.integers(1, 7)),
    st.one_of(st.none(), st.integers(1, 7)),
    st.one_of(st.none(), st.integers(1, 7)),
    st.one_of(st.none(), st.sampled_from(["a", "b"])),
    st.booleans(),
)
@settings(max_examples=300)
def test_serving_never_moves_to_a_bad_version(
    versions: list[serving.Version],
    pin: int | None,
    active: int | None,
    previous: int | None,
    request: str | None,
    deadline_exceeded: bool,
) -> None:
    spec = InferenceServiceSpec.model_validate({"model": "m", **({"version": pin} if pin else {})})
    rollout = (
        None
        if active is None
        else serving.Rollout(
            version=active,
            previous_version=previous,
            replicas=1,
            generation=2,
            observed_generation=2,
            total=1,
            updated=1,
            deadline_exceeded=deadline_exceeded,
        )
    )
    status = {"activeVersion": active, "previousVersion": previous, "lastRollbackRequest": "a"}
    plan = serving.decide(spec, versions, rollout, status, request, "2026-11-23T11:00:00Z")
    by_number = {v.version: v for v in versions}
    rolled_back = {plan.roll_back.version.version} if plan.roll_back else set()
    if plan.roll_back is not None:
        target = by_number[plan.roll_back.to_version]
        assert target.stage in GOOD and target.version not in rolled_back
    if plan.serve is not None and plan.step in (serving.Step.CREATE, serving.Step.ROLL):
        assert plan.serve.stage != "RolledBack" and plan.serve.version not in rolled_back
        if pin is None:  # following: never a Rejected or RolledBack version
            assert plan.serve.stage in GOOD


value_st = st.one_of(
    st.floats(0, 5, allow_nan=False),
    st.just(math.nan),
    st.just(math.inf),
    st.floats(-1, -0.001),
)
reading_st = st.one_of(
    st.builds(lambda e: monitor.Reading(error=e), st.sampled_from(["timeout", "HTTP 500", "no ready pod"])),
    st.builds(
        lambda fs, n: monitor.Reading(features=fs, samples=n),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), value_st, max_size=3),
        st.one_of(st.none(), st.integers(0, 2000)),
    ),
    st.builds(lambda v: monitor.Reading(score=v), value_st),
)


@given(
    st.lists(reading_st, min_size=1, max_size=25),
    st.sampled_from(["Alert", "Rollback", "Retrain", "None"]),
    st.integers(1, 4),
    st.booleans(),
)
@settings(max_examples=300)
def test_drift_never_acts_on_unknown_metrics_nor_rolls_back_to_a_bad_version(
    readings: list[monitor.Reading], action: str, consecutive: int, previous_good: bool
) -> None:
    s = DriftSpec.model_validate({"action": action, "consecutive": consecutive, "minSamples": 100})
    served = monitor.Served(2, 1, previous_good, "2026-11-23T10:00:00Z")
    last: dict[str, Any] = {}
    for i, r in enumerate(readings):
        plan = drift.decide(s, None, r, last, served, monitor.Retrains(), _time(60 + i * 5))
        verdict = drift.assess(s, r)[0]
        if plan.action is not None or plan.events:
            assert verdict is Assessment.BREACH
            assert plan.status["consecutiveBreaches"] >= consecutive
        if verdict is Assessment.ERROR:
            assert plan.status["consecutiveBreaches"] == int(last.get("consecutiveBreaches") or 0)
            assert plan.conditions[0].status is None
        if plan.action is not None and plan.rollback_to is not None:
            assert previous_good
        last = plan.status


metric_lines = st.lists(
    st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda name, labels, value: f"{name}{{{labels}}} {value}",
            st.sampled_from(["driftline_feature_drift", "driftline_drift_window_samples", "x"]),
            st.text(max_size=60),
            st.sampled_from(["NaN", "+Inf", "-Inf", "1e400", "0.3", "abc", ""]),
        ),
        st.builds(
            lambda n, v: "driftline_feature_drift{" + ",".join(f'l{i}="{"v" * 50}"' for i in range(n)) + f"}} {v}",
            st.integers(0, 300),
            st.sampled_from(["NaN", "0.1"]),
        ),
    ),
    max_size=20,
).map("\n".join)


@given(metric_lines)
@settings(max_examples=300)
def test_garbage_metrics_pages_are_errors_never_crashes_nor_breaches(text: str) -> None:
    from driftline.decide import measure, pod_readings

    with contextlib.suppress(ValueError):  # the canary's counters: an error, never another exception
        measure.parse(text)
    try:
        pod = pod_readings.parse(text, "psi")
    except ValueError:
        return
    reading = pod_readings.combine([pod])
    verdict, score, _ = drift.assess(DriftSpec.model_validate({"minSamples": 1}), reading)
    if verdict is Assessment.BREACH:  # only a finite, non-negative score above the threshold breaches
        assert score is not None and math.isfinite(score) and score > 0.25
