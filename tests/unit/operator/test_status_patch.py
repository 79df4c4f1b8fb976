"""Whether a status write is needed, and what it holds: nothing at steady state, a cleared field as null."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.decide.conditions import status_patch, warn_on_failure

pytestmark = pytest.mark.unit

READY = [{"type": "Ready", "status": "True", "reason": "RolledOut", "message": "v2", "lastTransitionTime": "t0"}]
OLD = {"phase": "Ready", "observedGeneration": 3, "activeVersion": 2, "canaryVersion": 3, "conditions": READY}


@pytest.mark.parametrize(
    ("phase", "conditions", "generation", "fields", "clear", "want"),
    [
        # Steady state: the same phase, conditions and fields: no write at all.
        ("Ready", READY, 3, {"activeVersion": 2, "canaryVersion": 3}, (), None),
        ("Ready", READY, 3, {"activeVersion": 2, "url": None}, (), None),  # None: left as it is
        # A new generation observed, a new field value, a new phase: written, with the conditions.
        ("Ready", READY, 4, {}, (), {"phase": "Ready", "observedGeneration": 4, "conditions": READY}),
        (
            "Ready",
            READY,
            3,
            {"activeVersion": 3},
            (),
            {"phase": "Ready", "observedGeneration": 3, "activeVersion": 3, "conditions": READY},
        ),
        # A field to clear that is set: removed (null in the merge patch); one that is absent: nothing to do.
        (
            "Ready",
            READY,
            3,
            {"canaryVersion": None},
            ("canaryVersion",),
            {"phase": "Ready", "observedGeneration": 3, "canaryVersion": None, "conditions": READY},
        ),
        ("Ready", READY, 3, {"canaryWeight": None}, ("canaryWeight",), None),
        # Conditions that differ only in when they last changed are the same (merge kept the time).
        ("Ready", [{**READY[0], "lastTransitionTime": "t0"}], 3, {}, (), None),
    ],
)
def test_a_status_is_written_only_when_a_reader_would_see_something_new(
    phase: str,
    conditions: list[dict[str, Any]],
    generation: int,
    fields: dict[str, Any],
    clear: tuple[str, ...],
    want: dict[str, Any] | None,
) -> None:
    assert status_patch(OLD, phase, conditions, generation, fields, clear) == want


@pytest.mark.parametrize(
    ("old_phase", "warn", "news"),
    [
        ("Ready", ("InvalidSpec", "spec.port: too low"), True),
        (None, ("InvalidSpec", "spec.port: too low"), True),
        ("Failed", ("InvalidSpec", "spec.port: too low"), False),  # already told: a retry is no new Event
        ("Ready", ("InvalidSpec", ""), False),
        ("Ready", None, False),
    ],
)
def test_a_failure_is_announced_once(old_phase: str | None, warn: tuple[str, str] | None, news: bool) -> None:
    assert warn_on_failure(old_phase, warn) is news
