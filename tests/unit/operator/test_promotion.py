"""The promotion verdict and the one-Production invariant, table-tested."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.api.constants import ANNOTATION_PROMOTE, ANNOTATION_REJECT
from driftline.api.promotion import PromotionPolicy
from driftline.decide import promotion
from driftline.decide.promotion import Registered, Request, assess, next_version, pending, survivor, to_archive

pytestmark = pytest.mark.unit


def policy(**kw: object) -> PromotionPolicy:
    return PromotionPolicy.model_validate({"auto": True, **kw})


@pytest.mark.parametrize(
    ("metrics", "pol", "prod", "passed", "fragment"),
    [
        ({"accuracy": 0.95}, {"gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}]}, None, True, "0.95"),
        (
            {"accuracy": 0.85},
            {"gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}]},
            None,
            False,
            "FAILED accuracy >= 0.9: 0.85",
        ),
        ({"rmse": 3.0}, {"gates": [{"metric": "rmse", "op": "<", "value": 2.5}]}, None, False, "FAILED rmse < 2.5: 3"),
        ({}, {"gates": [{"metric": "f1", "op": ">=", "value": 0.5}]}, None, False, "reports no f1"),
        ({"accuracy": math.nan}, {"gates": [{"metric": "accuracy", "value": 0.5}]}, None, False, "reports no accuracy"),
        ({"accuracy": 0.9}, {"mustBeat": {"metric": "accuracy"}}, None, True, "no Production version yet"),
        ({"accuracy": 0.9}, {"mustBeat": {"metric": "accuracy"}}, {"accuracy": 0.95}, False, "0.9 vs 0.95"),
        ({"accuracy": 0.95}, {"mustBeat": {"metric": "accuracy"}}, {"accuracy": 0.95}, True, "vs 0.95"),  # tie passes
        (
            {"accuracy": 0.955},
            {"mustBeat": {"metric": "accuracy", "minDelta": 0.01}},
            {"accuracy": 0.95},
            False,
            "by 0.01",
        ),
        (
            {"rmse": 1.0},
            {"mustBeat": {"metric": "rmse", "higherIsBetter": False}},
            {"rmse": 2.0},
            True,
            "lower is better",
        ),
        ({"rmse": 3.0}, {"mustBeat": {"metric": "rmse", "higherIsBetter": False}}, {"rmse": 2.0}, False, "3 vs 2"),
        ({"accuracy": 0.5}, {}, None, True, "no gates configured"),
    ],
)
def test_assess(
    metrics: dict[str, float], pol: dict[str, object], prod: dict[str, float] | None, passed: bool, fragment: str
) -> None:
    verdict = assess(metrics, policy(**pol), prod)
    assert verdict.passed is passed
    assert fragment in verdict.summary


def test_every_failed_gate_is_listed_with_its_numbers() -> None:
    pol = policy(gates=[{"metric": "accuracy", "value": 0.99}, {"metric": "f1", "value": 0.99}])
    verdict = assess({"accuracy": 0.9, "f1": 0.8}, pol, None)
    assert verdict.failures == ("FAILED accuracy >= 0.99: 0.9", "FAILED f1 >= 0.99: 0.8")


def test_archive_every_other_production_version() -> None:
    vs = [Registered("m-v1", 1, "Production"), Registered("m-v2", 2, "Candidate"), Registered("m-v3", 3, "Production")]
    assert to_archive(vs, "m-v3") == ["m-v1"]


stages = st.sampled_from([None, "Candidate", "Production", "Archived", "Rejected", "RolledBack"])


@given(st.lists(st.tuples(stages, st.sampled_from(["", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"])), max_size=12))
def test_after_repair_exactly_one_production_survives(rows: list[tuple[str | None, str]]) -> None:
    vs = [Registered(f"m-v{i + 1}", i + 1, stage, at or None) for i, (stage, at) in enumerate(rows)]
    keep = survivor(vs)
    if not any(v.stage == "Production" for v in vs):
        assert keep is None
        return
    archived = set(to_archive(vs, keep or ""))
    remaining = [v for v in vs if v.stage == "Production" and v.name not in archived]
    assert [v.name for v in remaining] == [keep]


@pytest.mark.parametrize(
    ("stages", "rolled_back", "to", "restored"),
    [
        # v2 took over from v1 and was rolled back: v1, archived when v2 came, is Production again.
        (["Archived", "RolledBack"], "m-v2", 1, "m-v1"),
        (["Archived", "Production"], "m-v2", 1, "m-v1"),  # the mark not yet seen: v2 counts as out all the same
        # A person promoted v3 since: it stays Production, and v1 stays archived.
        (["Archived", "RolledBack", "Production"], "m-v2", 1, None),
        # Never Production (served by a pin, or rejected): a rollback does not make it Production.
        (["Candidate", "RolledBack"], "m-v2", 1, None),
        (["Rejected", "RolledBack"], "m-v2", 1, None),
        (["RolledBack", "RolledBack"], "m-v2", 1, None),
        (["Production", "RolledBack"], "m-v2", 1, None),  # already Production: nothing to do
        (["Archived", "RolledBack"], "m-v2", 7, None),  # the version returned to is gone
    ],
)
def test_the_version_traffic_went_back_to_is_production_again(
    stages: list[str], rolled_back: str, to: int, restored: str | None
) -> None:
    vs = [Registered(f"m-v{i + 1}", i + 1, stage) for i, stage in enumerate(stages)]
    assert promotion.restored_after_rollback(vs, rolled_back, to) == restored


def test_next_version() -> None:
    assert next_version([]) == 1
    assert next_version([1, 3, 2]) == 4


@pytest.mark.parametrize(
    ("annotations", "status", "expected"),
    [
        ({}, {}, Request.REGISTER),
        ({}, {"stage": "Candidate"}, None),
        ({}, {"stage": "Archived"}, None),
        ({}, {"stage": "Production"}, Request.DEDUPE),
        ({ANNOTATION_PROMOTE: "ticket-1"}, {"stage": "Candidate"}, Request.PROMOTE),
        ({ANNOTATION_PROMOTE: "ticket-1"}, {"stage": "Production", "lastPromoteRequest": "ticket-1"}, Request.DEDUPE),
        ({ANNOTATION_PROMOTE: "ticket-1"}, {"stage": "Archived", "lastPromoteRequest": "ticket-1"}, None),
        ({ANNOTATION_PROMOTE: "False"}, {"stage": "Candidate"}, None),
        ({ANNOTATION_REJECT: "bad data", ANNOTATION_PROMOTE: "x"}, {"stage": "Candidate"}, Request.REJECT),
        ({ANNOTATION_REJECT: "bad data"}, {"stage": "Rejected", "lastRejectRequest": "bad data"}, None),
    ],
)
def test_pending_says_what_a_version_needs_and_nothing_for_a_settled_one(
    annotations: dict[str, str], status: dict[str, str], expected: Request | None
) -> None:
    assert pending(annotations, status) is expected


def test_the_first_version_created_keeps_an_artifact_others_name() -> None:
    holders = [
        promotion.Holder("credit-v1", "2026-12-05T10:00:01Z"),
        promotion.Holder("fraud-v1", "2026-12-05T10:00:00Z"),
        promotion.Holder("fraud-v2", "2026-12-05T10:00:00Z"),
    ]
    assert promotion.artifact_owner("credit-v1", holders) == "fraud-v1"
    assert promotion.artifact_owner("fraud-v2", holders) == "fraud-v1"  # a tie: by name
    assert promotion.artifact_owner("fraud-v1", holders) is None
    assert promotion.artifact_owner("fraud-v1", holders[1:2]) is None
    assert promotion.artifact_owner("x", []) is None
    # Created in the same second, the one already accepted keeps it, whatever the names.
    same = [promotion.Holder("fraud-v1", "2026-12-05T10:00:00Z", accepted=True),
            promotion.Holder("credit-v1", "2026-12-05T10:00:00Z")]  # fmt: skip
    assert promotion.artifact_owner("credit-v1", same) == "fraud-v1"
    assert promotion.artifact_owner("fraud-v1", same) is None
