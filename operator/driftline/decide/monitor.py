"""What a monitor's reading sets off, whatever it watches (input drift, live performance): a pure function of the
policy, the reading's verdict, the monitor's last status and the service's history, and the retrains the cluster holds.

Fail-safe by construction:

- a reading that errored, or whose values are missing, NaN or garbled, is an Error: it never counts as a breach, it
  only counts towards `consecutiveErrorLimit` (after which the service is Degraded, see `degraded`);
- a window holding fewer than `minSamples` rows is InsufficientSamples: judged neither way, and it ends a run of
  breaches (a new window, e.g. after a rollout, starts afresh);
- an action fires only after `consecutive` breaching readings in a row; Alert and Rollback fire once per run of
  breaches, Retrain whenever none is in flight and the cooldown has passed;
- Retrain first rolls back, like Rollback, a breach that began within `rollbackWindowSeconds` of a roll forward.

Retrains are shared: one at a time and one cooldown for the service, whichever monitor (or person) started them; each
monitor records in its status only the retrains it started (the TrainingJob's trigger annotation says which).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from driftline.api.constants import (
    ANNOTATION_RETRAIN_REASON,
    ANNOTATION_RETRAIN_SERVED,
    ANNOTATION_RETRAIN_TRIGGER,
    HISTORY_CAP,
    TRIGGER_DRIFT,
    TRIGGER_PERFORMANCE,
    ConditionType,
    Reason,
)
from driftline.api.fields import parse_duration
from driftline.api.inferenceservice import HistoryAction, InferenceServiceSpec, RetrainSpec, ServicePhase
from driftline.api.monitor import Assessment, MonitorAction, MonitorPolicy
from driftline.decide.conditions import Cond, same
from driftline.decide.serving import EventNote, history_entry


@dataclass(frozen=True)
class Words:
    """How one monitor is named in status, conditions, Events and its retrains."""

    key: str
    """Its field in spec and status: drift, performance."""
    noun: str
    """In messages: "drift", "live performance"."""
    breach: str
    """What began when a run of breaches began, in messages: "drift", "drop in live performance"."""
    condition: ConditionType
    """True while a breach is confirmed."""
    detected: Reason
    ok: Reason
    trigger: str
    """The retrain trigger annotation of the TrainingJobs it starts."""


@dataclass(frozen=True)
class Reading:
    """One reading of the served version: per-name values (drift per feature; one metric for performance) from the
    pods, or only the aggregate (a Prometheus query), with the window's fill when the source tells it."""

    features: Mapping[str, float] = field(default_factory=dict)
    score: float | None = None
    """Set by sources that return only the aggregate."""
    samples: int | None = None
    error: str = ""


@dataclass(frozen=True)
class Verdict:
    """One reading judged by its monitor."""

    assessment: Assessment
    message: str
    facts: Mapping[str, Any] = field(default_factory=dict)
    """The monitor's own status fields for this reading (camelCase), e.g. the score and threshold."""


@dataclass(frozen=True)
class RetrainRecord:
    """The newest retrain TrainingJob a monitor started, with what its history entry says (from its annotations)."""

    name: str
    started: str
    served_version: int | None
    reason: str


@dataclass(frozen=True)
class Retrains:
    """The retrain TrainingJobs this service started, as the cluster holds them."""

    in_flight: str | None = None
    """Name of one that has not finished (started by anyone)."""
    last_started: str | None = None
    """creationTimestamp of the newest (started by anyone)."""
    newest: RetrainRecord | None = None
    """The newest one this monitor started."""


@dataclass(frozen=True)
class Served:
    """What the service serves, from its status: where a rollback would go."""

    active_version: int | None
    previous_version: int | None
    previous_good: bool
    rolled_forward_at: str | None
    """When the active version started serving (the newest RollForward or CanaryPromoted to it)."""


@dataclass(frozen=True)
class MonitorPlan:
    status: dict[str, Any]
    """The monitor's new status (camelCase, as the API stores it)."""
    conditions: list[Cond]
    action: MonitorAction | None = None
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


def seconds_between(earlier: str | None, later: str | None) -> float | None:
    a, b = _time(earlier), _time(later)
    return None if a is None or b is None else (b - a).total_seconds()


REFRESH_SECONDS = 300.0
"""How stale a monitor's lastScrapeTime may grow while the readings change nothing else."""


def worth_writing(last: Mapping[str, Any], new: Mapping[str, Any], error_limit: int | None = None) -> bool:
    """Whether a reading's status differs from the stored one in more than its time, or the stored time is
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


def run(
    policy: MonitorPolicy,
    words: Words,
    verdict: Verdict,
    samples: int | None,
    retrain: RetrainSpec | None,
    last: Mapping[str, Any],
    served: Served,
    retrains: Retrains,
    now: str,
) -> MonitorPlan:
    """`last` is the monitor's previous status."""
    assessment, message = verdict.assessment, verdict.message
    breaches = int(last.get("consecutiveBreaches") or 0)
    errors = int(last.get("consecutiveErrors") or 0)
    since: str | None = last.get("breachingSince")
    if assessment is Assessment.BREACH:
        breaches, errors, since = breaches + 1, 0, since if breaches > 0 and since else now
    elif assessment is Assessment.ERROR:
        errors += 1  # neither a breach nor the end of a run of them
    else:
        breaches, errors, since = 0, 0, None

    status: dict[str, Any] = {
        **verdict.facts,
        "assessment": assessment.value,
        "samples": samples,
        "lastScrapeTime": now,
        "consecutiveBreaches": breaches,
        "breachingSince": since,
        "consecutiveErrors": errors,
        "message": message[:1024],
        "lastAction": last.get("lastAction"),
        "lastActionTime": last.get("lastActionTime"),
        "lastRetrainJob": last.get("lastRetrainJob"),
    }
    confirmed = assessment is Assessment.BREACH and breaches >= policy.consecutive
    plan = MonitorPlan(
        status=status,
        conditions=[_condition(words, assessment, confirmed, breaches, policy, message)],
        history=_unrecorded(words, retrains.newest, status, served),
    )
    if not confirmed or policy.action is MonitorAction.NONE:
        return plan
    after_start = seconds_between(since, status.get("lastActionTime"))
    fired_this_run = after_start is not None and after_start >= 0
    detail = f"{message}, {breaches} readings in a row"
    fired: str | None = status.get("lastAction") if fired_this_run else None
    if policy.action in (MonitorAction.ROLLBACK, MonitorAction.RETRAIN) and fired is None:
        # A breach that began right after a roll forward was caused by the new version, not by the world: going back
        # to the good version before it cures it at once; a retrain would only learn the new version's mistake.
        why_not = _why_no_rollback(policy, words, served, since)
        if why_not is None and served.previous_version is not None and served.active_version is not None:
            msg = f"{words.breach} began after version {served.active_version} rolled out ({detail}); traffic "
            msg += f"back to version {served.previous_version}"
            _fired(plan, MonitorAction.ROLLBACK, now)  # once: the served version's new window ends the run
            return replace(
                plan,
                action=MonitorAction.ROLLBACK,
                events=[EventNote(True, words.detected, msg)],
                rollback_to=served.previous_version,
                rollback_message=msg,
            )
        if policy.action is MonitorAction.ROLLBACK:
            _fired(plan, MonitorAction.ALERT, now)
            plan.events.append(EventNote(True, words.detected, f"{detail}; no rollback: {why_not}"))
            return plan
    if policy.action is MonitorAction.RETRAIN:
        if fired == MonitorAction.ROLLBACK.value:
            plan.status["message"] = f"{detail}; rolled back, waiting for the served version's new window"
            return plan
        return _retrain(plan, words, retrain, retrains, detail, served, now)
    if fired is not None:
        return plan
    _fired(plan, MonitorAction.ALERT, now)
    plan.events.append(EventNote(True, words.detected, detail))
    return plan


def _unrecorded(
    words: Words, record: RetrainRecord | None, status: dict[str, Any], served: Served
) -> list[dict[str, Any]]:
    """A retrain of this monitor that the cluster holds but its status does not name: the operator died between
    creating it and writing status. The TrainingJob is the truth; its status and history entry are written now, so
    the history has no gap."""
    if record is None or record.name == status.get("lastRetrainJob"):
        return []
    status.update(lastAction=MonitorAction.RETRAIN.value, lastActionTime=record.started, lastRetrainJob=record.name)
    version = record.served_version or served.active_version or 0
    entry = history_entry(record.started, HistoryAction.RETRAIN, version, version, words.detected, record.reason)
    return [entry]


def _fired(plan: MonitorPlan, action: MonitorAction, now: str) -> None:
    plan.status.update(lastAction=action.value, lastActionTime=now)


def _why_no_rollback(policy: MonitorPolicy, words: Words, served: Served, since: str | None) -> str | None:
    if served.active_version is None:
        return "no version is served"
    if served.previous_version is None or served.previous_version == served.active_version:
        return f"version {served.active_version} has no previous version to return to"
    if not served.previous_good:
        return f"the previous version {served.previous_version} is Rejected or RolledBack"
    after = seconds_between(served.rolled_forward_at, since)
    if after is None:
        return f"when version {served.active_version} rolled out is not in status.history"
    if after > policy.rollback_window_seconds:
        return (
            f"the {words.breach} began {after:.0f}s after version {served.active_version} rolled out, beyond "
            f"rollbackWindowSeconds {policy.rollback_window_seconds}: not caused by the roll forward"
        )
    return None


def _retrain(
    plan: MonitorPlan,
    words: Words,
    retrain: RetrainSpec | None,
    retrains: Retrains,
    detail: str,
    served: Served,
    now: str,
) -> MonitorPlan:
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
    _fired(plan, MonitorAction.RETRAIN, now)
    msg = f"{detail}; retraining model {retrain.template.model}"
    entry = history_entry(
        now, HistoryAction.RETRAIN, served.active_version, served.active_version or 0, words.detected, msg
    )
    return replace(
        plan,
        action=MonitorAction.RETRAIN,
        events=[EventNote(True, words.detected, detail)],
        history=[*plan.history, entry],
    )


def _condition(
    words: Words, assessment: Assessment, confirmed: bool, breaches: int, policy: MonitorPolicy, message: str
) -> Cond:
    kind = words.condition
    if confirmed:
        return Cond(kind, True, words.detected, f"{message}, {breaches} readings in a row")
    if assessment is Assessment.BREACH:
        msg = f"{message}: {breaches} of {policy.consecutive} breaching readings in a row needed"
        return Cond(kind, False, words.ok, msg)
    if assessment is Assessment.OK:
        return Cond(kind, False, words.ok, message)
    if assessment is Assessment.INSUFFICIENT_SAMPLES:
        return Cond(kind, None, Reason.INSUFFICIENT_SAMPLES, message)
    return Cond(kind, None, Reason.METRICS_UNAVAILABLE, message)


def degraded(policy: MonitorPolicy | None, words: Words, status: Mapping[str, Any] | None) -> str | None:
    """Why a monitor makes the service Degraded: `consecutiveErrorLimit` failed readings in a row."""
    if policy is None or not policy.enabled or not status:
        return None
    errors = int(status.get("consecutiveErrors") or 0)
    if errors < policy.consecutive_error_limit:
        return None
    why = status.get("message") or "unknown"
    limit = policy.consecutive_error_limit
    return f"{words.noun} could not be read {errors} times in a row (consecutiveErrorLimit {limit}): {why}"


DRIFT = Words("drift", "drift", "drift", ConditionType.DRIFTED, Reason.DRIFT_DETECTED, Reason.NO_DRIFT, TRIGGER_DRIFT)
PERFORMANCE = Words(
    "performance",
    "live performance",
    "drop in live performance",
    ConditionType.UNDERPERFORMING,
    Reason.PERFORMANCE_DROPPED,
    Reason.PERFORMANCE_OK,
    TRIGGER_PERFORMANCE,
)


def why_degraded(spec: InferenceServiceSpec, status: Mapping[str, Any]) -> list[str | None]:
    """Each monitor's reason to make the service Degraded (see degraded), for overlay."""
    return [
        degraded(spec.drift, DRIFT, status.get("drift")),
        degraded(spec.performance, PERFORMANCE, status.get("performance")),
    ]


def retrains_from(jobs: Sequence[Mapping[str, Any]], retrain_label: str, trigger: str) -> Retrains:
    """The retrains among a service's TrainingJobs (those carrying `retrain_label`): one still running and when the
    newest started, whoever started them, and the newest `trigger` started (one without a trigger annotation was
    started by drift, before retrains said who started them)."""
    mine = [j for j in jobs if retrain_label in ((j.get("metadata") or {}).get("labels") or {})]
    if not mine:
        return Retrains()
    running = (
        j["metadata"]["name"] for j in mine if (j.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
    )

    def newest_of(jobs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
        return max(jobs, key=lambda j: (str(j["metadata"].get("creationTimestamp") or ""), j["metadata"]["name"]))

    def trigger_of(job: Mapping[str, Any]) -> str:
        return str((job["metadata"].get("annotations") or {}).get(ANNOTATION_RETRAIN_TRIGGER) or TRIGGER_DRIFT)

    own = [j for j in mine if trigger_of(j) == trigger]
    record = None
    if own:
        meta = newest_of(own)["metadata"]
        notes = meta.get("annotations") or {}
        served = str(notes.get(ANNOTATION_RETRAIN_SERVED, ""))
        record = RetrainRecord(
            name=meta["name"],
            started=str(meta.get("creationTimestamp") or ""),
            served_version=int(served) if served.isdigit() else None,
            reason=str(notes.get(ANNOTATION_RETRAIN_REASON) or f"retrain TrainingJob {meta['name']}"),
        )
    started = str(newest_of(mine)["metadata"].get("creationTimestamp") or "")
    return Retrains(in_flight=next(running, None), last_started=started or None, newest=record)


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


def overlay(
    phase: ServicePhase, conditions: list[Cond], why_degraded: Sequence[str | None]
) -> tuple[ServicePhase, list[Cond]]:
    """The serving plan's phase and conditions with the monitors' say: a service that would be Ready but whose
    monitors cannot read is Degraded (it serves, but is not watched as asked)."""
    reasons = [why for why in why_degraded if why]
    if not reasons or phase is not ServicePhase.READY:
        return phase, conditions
    out = [cond for cond in conditions if cond.type != ConditionType.DEGRADED]
    out.append(Cond(ConditionType.DEGRADED, True, Reason.METRICS_UNAVAILABLE, "; ".join(reasons)))
    return ServicePhase.DEGRADED, out


def status_patch(
    key: str,
    old: Mapping[str, Any],
    plan: MonitorPlan,
    conditions: list[dict[str, Any]],
    error_limit: int | None = None,
) -> dict[str, Any] | None:
    """The InferenceService status patch of a reading of the monitor at status[`key`] (`conditions`: the merged
    ones), or None when it changes nothing a reader needs (see worth_writing). History entries go in by time: one
    recorded after the fact goes where it happened."""
    patch: dict[str, Any] = {key: plan.status, "conditions": conditions}
    if (
        not plan.history
        and same(old.get("conditions"), conditions)
        and not worth_writing(old.get(key) or {}, plan.status, error_limit)
    ):
        return None
    if plan.history:
        merged = sorted([*(old.get("history") or []), *plan.history], key=lambda h: str(h.get("time", "")))
        patch["history"] = merged[-HISTORY_CAP:]
    return patch


def serving_follows(policy: MonitorPolicy, words: Words, last: Mapping[str, Any] | None, plan: MonitorPlan) -> bool:
    """Whether the serving reconcile must run now: a rollback was decided, or the service's Degraded state (too many
    failed readings) began or ended."""
    degraded_changed = (degraded(policy, words, last) is None) != (degraded(policy, words, plan.status) is None)
    return plan.action is MonitorAction.ROLLBACK or degraded_changed
