"""Canary analysis verdicts: Argo Rollouts' limits, and never a success from NaN, errors or too few samples."""

from __future__ import annotations

import math
from typing import Any

import pytest

from driftline.api.rollout import AnalysisPhase, AnalysisSpec, MeasurementPhase, Threshold
from driftline.decide.analysis import Reading, Tally, aborts, assess, judge, tally, worst

pytestmark = pytest.mark.unit

S, F, N, E = (  # Successful, Failed, iNconclusive, Error
    MeasurementPhase.SUCCESSFUL,
    MeasurementPhase.FAILED,
    MeasurementPhase.INCONCLUSIVE,
    MeasurementPhase.ERROR,
)


@pytest.mark.parametrize(
    ("reading", "threshold", "phase", "bounds"),
    [
        (Reading(0.01, 100), {"max": 0.05}, S, (None, 0.05)),
        (Reading(0.05, 100), {"max": 0.05}, S, (None, 0.05)),  # inclusive
        (Reading(0.2, 100), {"max": 0.05}, F, (None, 0.05)),
        (Reading(0.2, 100), {"min": 0.5}, F, (0.5, None)),
        (Reading(0.7, 100), {"min": 0.5, "max": 0.9}, S, (0.5, 0.9)),
        (Reading(math.nan, 100), {"max": 0.05}, E, (None, 0.05)),
        (Reading(math.inf, 100), {"max": 0.05}, E, (None, 0.05)),
        (Reading(None, 100), {"max": 0.05}, E, (None, 0.05)),
        (Reading(0.0, 100, error="connection refused"), {"max": 0.05}, E, (None, 0.05)),
        # Too few requests: never a success, even with a perfect value.
        (Reading(0.0, 3), {"max": 0.05}, N, (None, 0.05)),
        (Reading(0.0, None), {"max": 0.05}, S, (None, 0.05)),  # a provider that cannot count samples
        (Reading(math.nan, 0), {"max": 0.05}, N, (None, 0.05)),  # no requests at all: too few, not an error
        # Relative: at most the stable version's error rate plus one point.
        (Reading(0.025, 100, stable_value=0.02), {"max": 0.01, "relativeToStable": True}, S, (None, 0.03)),
        (Reading(0.04, 100, stable_value=0.02), {"max": 0.01, "relativeToStable": True}, F, (None, 0.03)),
        (Reading(0.0, 100, stable_value=math.nan), {"max": 0.01, "relativeToStable": True}, N, (None, None)),
        (Reading(0.0, 100, stable_value=None), {"max": 0.01, "relativeToStable": True}, N, (None, None)),
        # The stable version's value could not be read (its pods gone or unreadable): an Error, not a verdict.
        (
            Reading(0.0, 100, stable_error="no ready stable pod"),
            {"max": 0.01, "relativeToStable": True},
            E,
            (None, None),
        ),
        (Reading(0.0, 100, stable_error="no ready stable pod"), {"max": 0.05}, S, (None, 0.05)),  # not needed here
    ],
)
def test_judge(
    reading: Reading, threshold: dict[str, Any], phase: MeasurementPhase, bounds: tuple[float | None, float | None]
) -> None:
    verdict = judge(reading, Threshold.model_validate(threshold), min_samples=20)
    assert verdict.phase is phase
    got = tuple(None if b is None else round(b, 9) for b in (verdict.min, verdict.max))
    assert got == bounds
    assert bool(verdict.message) is (phase is not S)


def spec(**kw: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"count": 3, **kw})


@pytest.mark.parametrize(
    ("phases", "limits", "want"),
    [
        ([], {}, AnalysisPhase.RUNNING),
        ([S, S], {}, AnalysisPhase.RUNNING),
        ([S, S, S], {}, AnalysisPhase.SUCCESSFUL),
        ([F], {}, AnalysisPhase.FAILED),  # failureLimit 0: one failure aborts at once
        ([F, S, S], {"failureLimit": 1}, AnalysisPhase.SUCCESSFUL),
        ([F, F], {"failureLimit": 1}, AnalysisPhase.FAILED),
        ([N], {}, AnalysisPhase.INCONCLUSIVE),
        ([N, S, S], {"inconclusiveLimit": 1}, AnalysisPhase.SUCCESSFUL),
        ([E, E, E, E], {"count": 10}, AnalysisPhase.RUNNING),  # consecutiveErrorLimit 4
        ([E, E, E, E, E], {"count": 10}, AnalysisPhase.ERROR),
        ([E, E, S, E, E], {"count": 10, "consecutiveErrorLimit": 2}, AnalysisPhase.RUNNING),
        ([E, E, S, E, E, E], {"count": 10, "consecutiveErrorLimit": 2}, AnalysisPhase.ERROR),
        # Every measurement errored, within the limit: Argo Rollouts once called this a success. It fails.
        ([E, E, E], {}, AnalysisPhase.FAILED),
        ([E, S, E], {}, AnalysisPhase.SUCCESSFUL),
        # Nothing succeeded, within the limits: not a pass.
        ([N, N, E], {"inconclusiveLimit": 2}, AnalysisPhase.INCONCLUSIVE),
    ],
)
def test_assess(phases: list[MeasurementPhase], limits: dict[str, Any], want: AnalysisPhase) -> None:
    t = tally(phases)
    assert (t.successful, t.failed, t.inconclusive, t.errors, t.taken) == (
        phases.count(S),
        phases.count(F),
        phases.count(N),
        phases.count(E),
        len(phases),
    )
    phase, message = assess(t, spec(**limits))
    assert phase is want
    assert bool(message) is (want not in (AnalysisPhase.RUNNING, AnalysisPhase.SUCCESSFUL))


def test_consecutive_errors_count_the_trailing_run() -> None:
    assert tally([E, S, E, E]).consecutive_errors == 2
    assert tally([E, E, S]).consecutive_errors == 0
    assert Tally().add(E).add(E) == Tally(errors=2, consecutive_errors=2)


@pytest.mark.parametrize(
    ("phases", "want"),
    [
        ([], E),
        ([S, S], S),
        ([S, N], N),
        ([E, N], E),
        ([E, F, S], F),
    ],
)
def test_a_round_is_the_worst_of_its_metrics(phases: list[MeasurementPhase], want: MeasurementPhase) -> None:
    assert worst(phases) is want


def test_what_aborts_a_canary() -> None:
    assert [p for p in AnalysisPhase if aborts(p)] == [
        AnalysisPhase.FAILED,
        AnalysisPhase.INCONCLUSIVE,
        AnalysisPhase.ERROR,
    ]
