"""What a drift reading means: the verdict on the served version's drift, judged by the DriftSpec; what it sets off is
the monitors' shared run (decide.monitor). Also a person's retrain request (the driftline.dev/retrain annotation).

A reading that errored, or whose values are missing, NaN or garbled, is an Error, never a breach; a window below
`minSamples`, or whose values are NaN (the servers export NaN below their own minimum), is InsufficientSamples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftline.api.constants import HISTORY_CAP, Reason
from driftline.api.drift import DriftSpec
from driftline.api.inferenceservice import HistoryAction, RetrainSpec
from driftline.api.monitor import Assessment, MonitorAction
from driftline.decide import monitor
from driftline.decide.monitor import Reading, Retrains, Served
from driftline.decide.numbers import apart
from driftline.decide.serving import history_entry

TOP_FEATURES = 10


def assess(spec: DriftSpec, reading: Reading) -> tuple[Assessment, float | None, str]:
    """The verdict on one reading, the score judged, and a message for people."""
    if reading.error:
        return Assessment.ERROR, None, reading.error
    values = list(reading.features.values()) if reading.score is None else [reading.score]
    garbled = [v for v in values if math.isinf(v) or v < 0]
    if garbled:
        return Assessment.ERROR, None, f"garbled drift values {garbled[:3]} ({spec.metric.value} is finite, >= 0)"
    if not values:
        return Assessment.ERROR, None, f"no {spec.metric.value} drift values among the metrics read"
    if reading.samples is not None and reading.samples < spec.min_samples:
        msg = f"{reading.samples} inputs in the live window, fewer than minSamples {spec.min_samples}: not judged"
        return Assessment.INSUFFICIENT_SAMPLES, None, msg
    known = [v for v in values if not math.isnan(v)]
    if not known:
        # The servers export NaN until their own window holds minSamples inputs.
        msg = "drift values are NaN: no serving pod's window holds minSamples inputs yet"
        return Assessment.INSUFFICIENT_SAMPLES, None, msg
    score = max(known)
    over = score > spec.threshold
    word = "above" if over else "within"
    shown, limit = apart(score, spec.threshold)
    msg = f"{spec.metric.value} drift score {shown} {word} threshold {limit}"
    if reading.samples is not None:
        msg += f" over {reading.samples} inputs"
    return (Assessment.BREACH if over else Assessment.OK), score, msg


def top_features(features: Mapping[str, float], n: int = TOP_FEATURES) -> list[dict[str, Any]]:
    known = [(name, v) for name, v in features.items() if not math.isnan(v) and not math.isinf(v)]
    known.sort(key=lambda kv: (-kv[1], kv[0]))
    return [{"name": name, "value": round(v, 6)} for name, v in known[:n]]


def may_roll_back(spec: DriftSpec, reading: Reading) -> bool:
    """Whether this reading could roll back (a breach, under Rollback or Retrain): only then are the model's versions
    worth reading."""
    actions = (MonitorAction.ROLLBACK, MonitorAction.RETRAIN)
    return spec.action in actions and assess(spec, reading)[0] is Assessment.BREACH


def decide(
    spec: DriftSpec,
    retrain: RetrainSpec | None,
    reading: Reading,
    last: Mapping[str, Any],
    served: Served,
    retrains: Retrains,
    now: str,
) -> monitor.MonitorPlan:
    """`last` is the previous status.drift."""
    assessment, score, message = assess(spec, reading)
    facts = {
        "score": None if score is None else round(score, 6),
        "method": spec.metric.value,
        "threshold": spec.threshold,
        "features": top_features(reading.features),
    }
    verdict = monitor.Verdict(assessment, message, facts)
    return monitor.run(spec, monitor.DRIFT, verdict, reading.samples, retrain, last, served, retrains, now)


@dataclass(frozen=True)
class RetrainAsk:
    """A person's retrain request (the driftline.dev/retrain annotation) and what comes of it."""

    token: str
    start: bool
    """A TrainingJob is started now; otherwise the request is refused, said in a Warning Event, and not retried."""
    message: str


def retrain_request(
    asked: str | None, last: str | None, retrain: RetrainSpec | None, retrains: Retrains
) -> RetrainAsk | None:
    """What a retrain request asks, or None when there is none or it was handled already. Unlike drift's own retrains
    there is no cooldown (a person asked now), but still one retrain at a time."""
    if not asked or asked == last:
        return None
    if retrain is None:
        return RetrainAsk(asked, False, f"retrain requested ({asked}), but spec.retrain is empty: nothing to train")
    if retrains.in_flight is not None:
        return RetrainAsk(asked, False, f"retrain requested ({asked}) while {retrains.in_flight} is still running")
    return RetrainAsk(asked, True, f"retrain requested ({asked})")


def retrain_request_status(status: Mapping[str, Any], ask: RetrainAsk, job: str | None, now: str) -> dict[str, Any]:
    """The InferenceService status patch that records `ask` as handled; with the TrainingJob `job` it started, the
    history entry too, and, where drift is watched, the job as status.drift.lastRetrainJob (the readings record a
    retrain they do not know as drift's own: this one is not)."""
    patch: dict[str, Any] = {"lastRetrainRequest": ask.token}
    if job is None:
        return patch
    active = status.get("activeVersion")
    entry = history_entry(now, HistoryAction.RETRAIN, active, int(active or 0), Reason.RETRAIN_REQUESTED, ask.message)
    patch["history"] = [*(status.get("history") or []), entry][-HISTORY_CAP:]
    if status.get("drift"):
        patch["drift"] = {"lastRetrainJob": job}
    return patch
