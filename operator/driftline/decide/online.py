"""The online promotion gate: a candidate in stage Evaluating, run in shadow by the InferenceService its policy names,
must beat the version served on the same live labelled traffic before it becomes Production.

Pure: judged from status.shadow (both versions' live metrics, read from their pods) and the gate the ModelVersion
recorded when it began Evaluating.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from driftline.api.performance import LOWER_IS_BETTER
from driftline.decide.numbers import apart
from driftline.decide.shadow import value_of


class Outcome(StrEnum):
    WAIT = "Wait"
    PROMOTE = "Promote"
    REJECT = "Reject"


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    message: str


def judge(gate: Mapping[str, Any], shadow: Mapping[str, Any]) -> Judgement:
    """`gate`: the ModelVersion's status.evaluation (metric, minSamples, margin); `shadow`: the service's status.shadow
    with the candidate as its version. Too few labelled rows on either side (or a metric not yet defined) waits."""
    metric = str(gate.get("metric") or "accuracy")
    need = int(gate.get("minSamples") or 0)
    margin = float(gate.get("margin") or 0.0)
    mine = value_of(shadow.get("challenger") or [], metric)
    theirs = value_of(shadow.get("production") or [], metric)
    have = (int(shadow.get("challengerSamples") or 0), int(shadow.get("productionSamples") or 0))
    if mine is None or theirs is None or min(have) < need:
        msg = f"live {metric} on {have[0]} (candidate) and {have[1]} (served) labelled rows; {need} each needed"
        return Judgement(Outcome.WAIT, msg)
    lower = metric in {m.value for m in LOWER_IS_BETTER}
    bar = round(theirs - margin if lower else theirs + margin, 12)  # 0.35 - 0.01 reads 0.34, not 0.33999999999999997
    wins = mine <= bar if lower else mine >= bar
    shown, shown_bar = apart(mine, bar)
    word = ("at most" if lower else "at least") if wins else ("above" if lower else "below")
    sign = "-" if lower else "+"
    msg = (
        f"live {metric} {shown} over {have[0]} labelled mirrored rows, {word} {shown_bar} (the served version's "
        f"{theirs:.6g} over {have[1]} rows {sign} margin {margin:g})"
    )
    return Judgement(Outcome.PROMOTE if wins else Outcome.REJECT, msg)
