"""Numbers in messages: as short as they can be while still telling a value from its bound."""

from __future__ import annotations

import pytest

from driftline.api.drift import DriftSpec
from driftline.api.rollout import Threshold
from driftline.decide import drift, monitor
from driftline.decide.analysis import Reading, judge
from driftline.decide.numbers import apart

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "bound", "want"),
    [
        (0.31, 0.25, ("0.31", "0.25")),  # short when short will do
        (0.250015, 0.25, ("0.25001", "0.25")),  # once read "0.25 above threshold 0.25"
        (0.25000000000000006, 0.25, ("0.2500000000000001", "0.25")),  # as far as a float goes
        (0.2499999, 0.25, ("0.2499999", "0.25")),  # below stays below
        (0.25, 0.25, ("0.25", "0.25")),  # equal stays equal
        (1234567.0, 1234568.0, ("1234567", "1234568")),
        (0.031, 0.030000000000000002, ("0.031", "0.030000000000000002")),  # a relative bound's sum, exactly
    ],
)
def test_a_value_and_its_bound_are_written_apart(value: float, bound: float, want: tuple[str, str]) -> None:
    assert apart(value, bound) == want


def test_a_drift_breach_never_reads_as_equal_to_its_threshold() -> None:
    _, score, message = drift.assess(DriftSpec(), monitor.Reading(score=0.250015, samples=500))
    assert score == 0.250015
    assert message == "psi drift score 0.25001 above threshold 0.25 over 500 inputs"


def test_a_failed_measurement_never_reads_as_equal_to_its_bound() -> None:
    verdict = judge(Reading(0.0500001, 100), Threshold(max=0.05), min_samples=20)
    assert verdict.message == "0.0500001 is above the maximum 0.05"
