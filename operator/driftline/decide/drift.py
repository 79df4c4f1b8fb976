"""What a drift reading means and what it sets off: a pure function of the DriftSpec, the reading, the service's last
drift status and history, and the retrains the cluster holds.

Fail-safe by construction:

- a reading that errored, or whose values are missing, NaN or garbled, is an Error: it never counts as a breach, it
  only counts towards `consecutiveErrorLimit` (after which the service is Degraded, see `degraded`);
- a window holding fewer than `minSamples` inputs is InsufficientSamples: judged neither way, and it ends a run of
  breaches (a new window, e.g. after a rollout, starts afresh);
- an action fires only after `consecutive` breaching readings in a row; Alert and Rollback fire once per run of
  breaches, Retrain whenever none is in flight and the cooldown has passed;
- Retrain first rolls back, like Rollback, drift that began within `rollbackWindowSeconds` of a roll forward.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from driftline.api.constants import (
    ANNOTATION_RETRAIN_REASON,
    ANNOTATION_RETRAIN_SERVED,
    HISTORY_CAP,
    ConditionType,
    Reason,
)
from driftline.api.drift import DriftAction, DriftAssessment, DriftSpec
from driftline.api.fields import parse_duration
from driftline.api.inferenceservice import HistoryAction, RetrainSpec, ServicePhase
from driftline.decide.conditions import Cond, same
from driftline.decide.numbers import apart
from driftline.decide.serving import EventNote, history_entry

TOP_FEATURES = 10


@dataclass(frozen=True)
class Reading:
    """One drift reading of the served version: per-feature values of the spec's metric (pods), or only the score
    (a Prometheus query), with the live window's fill when the source tells it."""

    features: Mapping[str, float] = field(default_factory=dict)
    score: float | None = None
    """Set by sources that return only the aggregate; otherwise the largest feature value is the score."""
    samples: int | None = None
    error: str = ""


@dataclass(frozen=True)
class RetrainRecord:
    """The newest retrain TrainingJob, with what its history entry says (from its annotations)."""

    name: str
    started: str
    served_version: int | None
    reason: str


@dataclass(frozen=True)
class Retrains:
    """The retrain TrainingJobs this service started, as the cluster holds them."""

    in_flight: str | None = None
    """Name of one that has not finished."""
    last_started: str | None = None
    """creationTimestamp of the newest."""
    newest: RetrainRecord | None = None


@dataclass(frozen=True)
class Served:
    """What the service serves, from its status: where a drift rollback would go."""

    active_version: int | None
    previous_version: int | None
    previous_good: bool
    rolled_forward_at: str | None
    """When the active version started serving (the newest RollForward or CanaryPromoted to it)."""


@dataclass(frozen=True)
class DriftPlan:
    status: dict[str, Any]
    """The new status.drift (camelCase, as the API stores it)."""
    conditions: list[Cond]
    action: DriftAction | None = None
    """Rollback or Retrain to carry out now; Alert needs nothing but the Event and condition below."""
    events: list[EventNote] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    """Entries to append to status.history."""
    rollback_to: int | None = None
    rollback_message: str = ""
    """Why, for the RolledBack version's status."""


def _time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


REFRESH_SECONDS = 300.0
"""How stale status.drift.lastScrapeTime may grow while the readings change nothing else."""


def worth_writing(last: Mapping[str, Any], new: Mapping[str, Any], error_limit: int | None = None) -> bool:
    """Whether a reading's status.drift differs from the stored one in more than its time, or the stored time is
    REFRESH_SECONDS old: at 1,000 quiet services a write per reading would be one every 30 ms. Failed readings count
    exactly up to `error_limit` (the service is Degraded there); beyond it the count is refreshed with the time only,
    or a Prometheus that is down would have every service write its status at every reading."""

    def facts(status: Mapping[str, Any]) -> dict[str, Any]:  # a None is a key the merge patch removed
        out = {k: v for k, v in status.items() if k != "lastScrapeTime" and v is not None}
        if error_limit is not None and int(out.get("consecutiveErrors") or 0) > error_limit:
            out["consecutiveErrors"] = error_limit
        return out

    if facts(last) != facts(new):
        return True
    age = seconds_between(last.get("lastScrapeTime"), new.get("lastScrapeTime"))
    return age is None or age >= REFRESH_SECONDS


def seconds_between(earlier: str | None, later: str | None) -> float | None:
    a, b = _time(earlier), _time(later)
    return None if a is None or b is None else (b - a).total_seconds()


def assess(spec: DriftSpec, reading: Reading) -> tuple[DriftAssessment, float | None, str]:
    """The verdict on one reading, the score judged, and a message for people."""
    if reading.error:
        return DriftAssessment.ERROR, None, reading.error
    values = list(reading.features.values()) if reading.score is None else [reading.score]
    garbled = [v for v in values if math.isinf(v) or v < 0]
    if garbled:
        return DriftAssessment.ERROR, None, f"garbled drift values {garbled[:3]} ({spec.metric.value} is finite, >= 0)"
    if not values:
        return DriftAssessment.ERROR, None, f"no {spec.metric.value} drift values among the metrics read"
    if reading.samples is not None and reading.samples < spec.min_samples:
        msg = f"{reading.samples} inputs in the live window, fewer than minSamples {spec.min_samples}: not judged"
        return DriftAssessment.INSUFFICIENT_SAMPLES, None, msg
    known = [v for v in values if not math.isnan(v)]
    if not known:
        # The servers export NaN until their own window holds minSamples inputs.
        msg = "drift values are NaN: no serving pod's window holds minSamples inputs yet"
        return DriftAssessment.INSUFFICIENT_SAMPLES, None, msg
    score = max(known)
    over = score > spec.threshold
    word = "above" if over else "within"
    shown, limit = apart(score, spec.threshold)
    msg = f"{spec.metric.value} drift score {shown} {word} threshold {limit}"
    if reading.samples is not None:
        msg += f" over {reading.samples} inputs"
    return (DriftAssessment.BREACH if over else DriftAssessment.OK), score, msg


def top_features(features: Mapping[str, float], n: int = TOP_FEATURES) -> list[dict[str, Any]]:
    known = [(name, v) for name, v in features.items() if not math.isnan(v) and not math.isinf(v)]
    known.sort(key=lambda kv: (-kv[1], kv[0]))
    return [{"name": name, "value": round(v, 6)} for name, v in known[:n]]


def may_roll_back(spec: DriftSpec, reading: Reading) -> bool:
    """Whether this reading could roll back (a breach, under Rollback or Retrain): only then are the model's versions
    worth reading."""
    actions = (DriftAction.ROLLBACK, DriftAction.RETRAIN)
    return spec.action in actions and assess(spec, reading)[0] is DriftAssessment.BREACH


def decide(
    spec: DriftSpec,
    retrain: RetrainSpec | None,
    reading: Reading,
    last: Mapping[str, Any],
    served: Served,
    retrains: Retrains,
    now: str,
) -> DriftPlan:
    """`last` is the previous status.drift."""
    assessment, score, message = assess(spec, reading)
    breaches = int(last.get("consecutiveBreaches") or 0)
    errors = int(last.get("consecutiveErrors") or 0)
    since: str | None = last.get("breachingSince")
    if assessment is DriftAssessment.BREACH:
        breaches, errors, since = breaches + 1, 0, since if breaches > 0 and since else now
    elif assessment is DriftAssessment.ERROR:
        errors += 1  # neither a breach nor the end of a run of them
    else:
        breaches, errors, since = 0, 0, None

    status: dict[str, Any] = {
        "score": None if score is None else round(score, 6),
        "method": spec.metric.value,
        "threshold": spec.threshold,
        "assessment": assessment.value,
        "features": top_features(reading.features),
        "samples": reading.samples,
        "lastScrapeTime": now,
        "consecutiveBreaches": breaches,
        "breachingSince": since,
        "consecutiveErrors": errors,
        "message": message[:1024],
        "lastAction": last.get("lastAction"),
        "lastActionTime": last.get("lastActionTime"),
        "lastRetrainJob": last.get("lastRetrainJob"),
    }
    confirmed = assessment is DriftAssessment.BREACH and breaches >= spec.consecutive
    plan = DriftPlan(
        status=status,
        conditions=[_drifted(assessment, confirmed, breaches, spec, message)],
        history=_unrecorded(retrains.newest, status, served),
    )
    if not confirmed or spec.action is DriftAction.NONE:
        return plan
    after_start = seconds_between(since, status.get("lastActionTime"))
    fired_this_run = after_start is not None and after_start >= 0
    detail = f"{message}, {breaches} readings in a row"
    fired: str | None = status.get("lastAction") if fired_this_run else None
    if spec.action in (DriftAction.ROLLBACK, DriftAction.RETRAIN) and fired is None:
        # Drift that began right after a roll forward was caused by the new version, not by the world: going back
        # to the good version before it cures it at once; a retrain would only learn the new version's mistake.
        why_not = _why_no_rollback(spec, served, since)
        if why_not is None and served.previous_version is not None and served.active_version is not None:
            msg = f"drift began after version {served.active_version} rolled out ({detail}); traffic back to "
            msg += f"version {served.previous_version}"
            _fired(plan, DriftAction.ROLLBACK, now)  # once: the served version's new window ends the run
            return replace(
                plan,
                action=DriftAction.ROLLBACK,
                events=[EventNote(True, Reason.DRIFT_DETECTED, msg)],
                rollback_to=served.previous_version,
                rollback_message=msg,
            )
        if spec.action is DriftAction.ROLLBACK:
            _fired(plan, DriftAction.ALERT, now)
            plan.events.append(EventNote(True, Reason.DRIFT_DETECTED, f"{detail}; no rollback: {why_not}"))
            return plan
    if spec.action is DriftAction.RETRAIN:
        if fired == DriftAction.ROLLBACK.value:
            plan.status["message"] = f"{detail}; rolled back, waiting for the served version's new window"
            return plan
        return _retrain(plan, retrain, retrains, detail, served, now)
    if fired is not None:
        return plan
    _fired(plan, DriftAction.ALERT, now)
    plan.events.append(EventNote(True, Reason.DRIFT_DETECTED, detail))
    return plan


def _unrecorded(record: RetrainRecord | None, status: dict[str, Any], served: Served) -> list[dict[str, Any]]:
    """A retrain the cluster holds but status.drift does not name: the operator died between creating it and writing
    status. The TrainingJob is the truth; its status and history entry are written now, so the history has no gap."""
    if record is None or record.name == status.get("lastRetrainJob"):
        return []
    status.update(lastAction=DriftAction.RETRAIN.value, lastActionTime=record.started, lastRetrainJob=record.name)
    version = record.served_version or served.active_version or 0
    entry = history_entry(record.started, HistoryAction.RETRAIN, version, version, Reason.DRIFT_DETECTED, record.reason)
    return [entry]


def _fired(plan: DriftPlan, action: DriftAction, now: str) -> None:
    plan.status.update(lastAction=action.value, lastActionTime=now)


def _why_no_rollback(spec: DriftSpec, served: Served, since: str | None) -> str | None:
    if served.active_version is None:
        return "no version is served"
    if served.previous_version is None or served.previous_version == served.active_version:
        return f"version {served.active_version} has no previous version to return to"
    if not served.previous_good:
        return f"the previous version {served.previous_version} is Rejected or RolledBack"
    after = seconds_between(served.rolled_forward_at, since)
    if after is None:
        return f"when version {served.active_version} rolled out is not in status.history"
    if after > spec.rollback_window_seconds:
        return (
            f"the drift began {after:.0f}s after version {served.active_version} rolled out, beyond "
            f"rollbackWindowSeconds {spec.rollback_window_seconds}: not caused by the roll forward"
        )
    return None


def _retrain(
    plan: DriftPlan, retrain: RetrainSpec | None, retrains: Retrains, detail: str, served: Served, now: str
) -> DriftPlan:
    if retrain is None:  # the CRD refuses this; an old object may still hold it
        plan.status["message"] = f"{detail}; no retrain: spec.retrain is empty"
        return plan
    if retrains.in_flight is not None:
        plan.status["message"] = f"{detail}; retrain {retrains.in_flight} is still running"
        return plan
    cooldown = parse_duration(retrain.cooldown)
    elapsed = seconds_between(retrains.last_started, now)
    if elapsed is not None and elapsed < cooldown:
        wait = cooldown - elapsed
        plan.status["message"] = f"{detail}; next retrain allowed in {wait:.0f}s (cooldown {retrain.cooldown})"
        return plan
    _fired(plan, DriftAction.RETRAIN, now)
    msg = f"{detail}; retraining model {retrain.template.model}"
    entry = history_entry(
        now, HistoryAction.RETRAIN, served.active_version, served.active_version or 0, Reason.DRIFT_DETECTED, msg
    )
    return replace(
        plan,
        action=DriftAction.RETRAIN,
        events=[EventNote(True, Reason.DRIFT_DETECTED, detail)],
        history=[*plan.history, entry],
    )


def _drifted(assessment: DriftAssessment, confirmed: bool, breaches: int, spec: DriftSpec, message: str) -> Cond:
    if confirmed:
        return Cond(ConditionType.DRIFTED, True, Reason.DRIFT_DETECTED, f"{message}, {breaches} readings in a row")
    if assessment is DriftAssessment.BREACH:
        msg = f"{message}: {breaches} of {spec.consecutive} breaching readings in a row needed"
        return Cond(ConditionType.DRIFTED, False, Reason.NO_DRIFT, msg)
    if assessment is DriftAssessment.OK:
        return Cond(ConditionType.DRIFTED, False, Reason.NO_DRIFT, message)
    if assessment is DriftAssessment.INSUFFICIENT_SAMPLES:
        return Cond(ConditionType.DRIFTED, None, Reason.INSUFFICIENT_SAMPLES, message)
    return Cond(ConditionType.DRIFTED, None, Reason.METRICS_UNAVAILABLE, message)


def degraded(spec: DriftSpec | None, drift_status: Mapping[str, Any] | None) -> str | None:
    """Why drift watching makes the service Degraded: `consecutiveErrorLimit` failed readings in a row."""
    if spec is None or not spec.enabled or not drift_status:
        return None
    errors = int(drift_status.get("consecutiveErrors") or 0)
    if errors < spec.consecutive_error_limit:
        return None
    why = drift_status.get("message") or "unknown"
    limit = spec.consecutive_error_limit
    return f"drift could not be read {errors} times in a row (consecutiveErrorLimit {limit}): {why}"


def retrains_from(jobs: Sequence[Mapping[str, Any]], retrain_label: str) -> Retrains:
    """The retrains among a service's TrainingJobs (those carrying `retrain_label`): one still running, and when the
    newest started."""
    mine = [j for j in jobs if retrain_label in ((j.get("metadata") or {}).get("labels") or {})]
    running = (
        j["metadata"]["name"] for j in mine if (j.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    )
    if not mine:
        return Retrains()
    newest = max(mine, key=lambda j: (str(j["metadata"].get("creationTimestamp") or ""), j["metadata"]["name"]))
    meta = newest["metadata"]
    notes = meta.get("annotations") or {}
    served = str(notes.get(ANNOTATION_RETRAIN_SERVED, ""))
    record = RetrainRecord(
        name=meta["name"],
        started=str(meta.get("creationTimestamp") or ""),
        served_version=int(served) if served.isdigit() else None,
        reason=str(notes.get(ANNOTATION_RETRAIN_REASON) or f"retrain TrainingJob {meta['name']}"),
    )
    return Retrains(in_flight=next(running, None), last_started=record.started or None, newest=record)


def served_from(status: Mapping[str, Any], good: Sequence[int]) -> Served:
    """What the service serves and when it started to, from status (activeVersion, previousVersion, history)."""
    active = status.get("activeVersion")
    previous = status.get("previousVersion")
    rolled = None
    for entry in reversed(status.get("history") or []):
        if entry.get("toVersion") == active and entry.get("action") in (
            HistoryAction.ROLL_FORWARD.value,
            HistoryAction.CANARY_PROMOTED.value,
        ):
            rolled = entry.get("time")
            break
    return Served(
        active_version=active,
        previous_version=previous,
        previous_good=previous in good,
        rolled_forward_at=rolled,
    )


def overlay(phase: ServicePhase, conditions: list[Cond], why_degraded: str | None) -> tuple[ServicePhase, list[Cond]]:
    """The serving plan's phase and conditions with drift's say: a service that would be Ready but whose drift
    cannot be read is Degraded (it serves, but is not watched as asked)."""
    if why_degraded is None or phase is not ServicePhase.READY:
        return phase, conditions
    out = [cond for cond in conditions if cond.type != ConditionType.DEGRADED]
    out.append(Cond(ConditionType.DEGRADED, True, Reason.METRICS_UNAVAILABLE, why_degraded))
    return ServicePhase.DEGRADED, out


def status_patch(
    old: Mapping[str, Any], plan: DriftPlan, conditions: list[dict[str, Any]], error_limit: int | None = None
) -> dict[str, Any] | None:
    """The InferenceService status patch of a reading (`conditions`: the merged ones), or None when it changes
    nothing a reader needs (see worth_writing). History entries go in by time: one recorded after the fact goes
    where it happened."""
    patch: dict[str, Any] = {"drift": plan.status, "conditions": conditions}
    if (
        not plan.history
        and same(old.get("conditions"), conditions)
        and not worth_writing(old.get("drift") or {}, plan.status, error_limit)
    ):
        return None
    if plan.history:
        merged = sorted([*(old.get("history") or []), *plan.history], key=lambda h: str(h.get("time", "")))
        patch["history"] = merged[-HISTORY_CAP:]
    return patch


def serving_follows(settings: DriftSpec, last: Mapping[str, Any] | None, plan: DriftPlan) -> bool:
    """Whether the serving reconcile must run now: a rollback was decided, or the service's Degraded state (too many
    failed readings) began or ended."""
    degraded_changed = (degraded(settings, last) is None) != (degraded(settings, plan.status) is None)
    return plan.action is DriftAction.ROLLBACK or degraded_changed


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
