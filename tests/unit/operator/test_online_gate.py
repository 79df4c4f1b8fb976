"""decide.online: a candidate Evaluating in shadow is promoted when it beats the served version on the same live
labels, rejected with the numbers when it does not, and waits while either side has too few labelled rows."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.api.modelversion import Evaluation, ModelVersionStatus
from driftline.api.promotion import PromotionPolicy
from driftline.decide import online, promotion
from driftline.handlers import status as status_writer

pytestmark = pytest.mark.unit

GATE = {"service": "bc", "metric": "accuracy", "minSamples": 100, "margin": 0.01}


def shadow(mine: float, theirs: float, n_mine: int = 200, n_theirs: int = 500, name: str = "accuracy") -> Any:
    return {
        "challenger": [{"name": name, "value": mine}],
        "challengerSamples": n_mine,
        "production": [{"name": name, "value": theirs}],
        "productionSamples": n_theirs,
    }


@pytest.mark.parametrize(
    ("gate", "status", "outcome", "words"),
    [
        (GATE, shadow(0.95, 0.90), online.Outcome.PROMOTE,
         "live accuracy 0.95 over 200 labelled mirrored rows, at least 0.91"),
        (GATE, shadow(0.905, 0.90), online.Outcome.REJECT,
         "below 0.91 (the served version's 0.9 over 500 rows + margin 0.01)"),
        (GATE, shadow(0.99, 0.90, n_mine=99), online.Outcome.WAIT, "99 (candidate) and 500 (served)"),
        (GATE, shadow(0.99, 0.90, n_theirs=10), online.Outcome.WAIT, "100 each needed"),
        (GATE, {"challenger": [], "production": []}, online.Outcome.WAIT, "0 (candidate)"),
        ({**GATE, "metric": "log_loss"}, shadow(0.30, 0.35, name="log_loss"), online.Outcome.PROMOTE, "at most 0.34"),
        ({**GATE, "metric": "log_loss"}, shadow(0.345, 0.35, name="log_loss"), online.Outcome.REJECT, "above 0.34"),
        ({**GATE, "margin": 0}, shadow(0.9, 0.9), online.Outcome.PROMOTE, "at least 0.9"),  # a tie wins at margin 0
    ],
)  # fmt: skip
def test_judge(gate: dict[str, Any], status: dict[str, Any], outcome: online.Outcome, words: str) -> None:
    got = online.judge(gate, status)
    assert got.outcome is outcome
    assert words in got.message, got.message


def test_an_online_gate_needs_auto_promotion() -> None:
    with pytest.raises(ValueError, match="online needs auto: true"):
        PromotionPolicy.model_validate({"online": {"service": "bc"}})
    policy = PromotionPolicy.model_validate({"auto": True, "online": {"service": "bc", "metric": "rmse"}})
    assert policy.online is not None and policy.online.min_samples == 200


def test_an_evaluating_version_says_what_it_waits_for_in_its_status() -> None:
    gate = Evaluation(service="bc", metric="rmse", min_samples=300, margin=0.5)
    said = promotion.online_wait(gate)
    assert "InferenceService bc runs it in shadow" in said and "rmse over 300 labelled rows is at most" in said
    status = ModelVersionStatus(stage="Evaluating", evaluation=gate, reason=said).api_fields()
    assert status["evaluation"] == {"service": "bc", "metric": "rmse", "minSamples": 300, "margin": 0.5}
    status_writer.checked(ModelVersionStatus, status)
