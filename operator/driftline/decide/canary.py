"""A canary: the new version runs in a second Deployment next to the stable one, its share of the pods raised step by
step while an analysis judges it; every step passed promotes it, a failed one aborts it.

No service mesh is assumed. The Service selects the pods of both tracks, so a canary's share of the traffic is its
share of the ready pods. The stable Deployment keeps all its replicas during a canary (capacity never drops, and an
abort is immediate: the canary's pods simply go), and the canary gets as many pods as make its share closest to the
step's weight, at least one. The share reached is reported as status.canaryWeight.

State lives in status.analysis (which version, which step, the step's tally, the newest measurements), so a
restarted operator carries on where it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from driftline.api.constants import ANALYSIS_MEASUREMENTS_CAP, ConditionType, Reason
from driftline.api.inferenceservice import HistoryAction, InferenceServiceSpec
from driftline.api.rollout import AnalysisMetric, AnalysisPhase, InconclusivePolicy, MeasurementPhase
from driftline.decide.analysis import Reading, Tally, aborts, assess, judge, worst
from driftline.decide.conditions import Cond
from driftline.decide.serving import EventNote, Plan, Rollout, Version, history_entry


class Outcome(StrEnum):
    CONTINUE = "Continue"  # keep the canary Deployment at `replicas` of the canary version
    PROMOTE = "Promote"  # every step passed: the stable Deployment moves to the canary's version
    ABORT = "Abort"  # the canary failed: its Deployment goes, its version becomes RolledBack


@dataclass(frozen=True)
class CanaryPlan:
    outcome: Outcome
    replicas: int
    """Canary pods (with CONTINUE)."""
    weight: int
    """The canary's share of the serving pods, in percent, once they are all ready."""
    analysis: dict[str, Any]
    """status.analysis."""
    reason: str = ""
    message: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[EventNote] = field(default_factory=list)


def canary_replicas(stable: int, weight: int) -> int:
    """Canary pods next to `stable` stable pods whose share of all the pods comes closest to `weight` percent."""
    return max(1, round(stable * weight / (100 - weight)))


def share(stable: int, canary: int) -> int:
    return round(100 * canary / (stable + canary)) if stable + canary else 0


def measurement(metric: AnalysisMetric, reading: Reading, min_samples: int, step: int, now: str) -> dict[str, Any]:
    """One judged reading as a status.analysis.measurements entry (non-finite numbers left out: JSON has none)."""
    verdict = judge(reading, metric.threshold, min_samples)
    entry: dict[str, Any] = {"metric": metric.name, "time": now, "step": step, "phase": verdict.phase.value}
    numbers = {
        "value": reading.value,
        "stableValue": reading.stable_value,
        "min": verdict.min,
        "max": verdict.max,
    }
    entry.update({k: float(v) for k, v in numbers.items() if v is not None and math.isfinite(v)})
    if reading.samples is not None:
        entry["samples"] = reading.samples
    if verdict.message:
        entry["message"] = verdict.message[:1024]
    return entry


def ready_to_measure(canary: Rollout | None, version: int, replicas: int) -> bool:
    """The canary Deployment runs the version at the step's size, every pod available: its numbers mean something."""
    return canary is not None and canary.version == version and canary.replicas == replicas and canary.complete


def _tally(analysis: Mapping[str, Any]) -> Tally:
    return Tally(
        int(analysis.get("successful") or 0),
        int(analysis.get("failed") or 0),
        int(analysis.get("inconclusive") or 0),
        int(analysis.get("errors") or 0),
        int(analysis.get("consecutiveErrors") or 0),
    )


def _with_tally(analysis: dict[str, Any], t: Tally) -> dict[str, Any]:
    return {
        **analysis,
        "successful": t.successful,
        "failed": t.failed,
        "inconclusive": t.inconclusive,
        "errors": t.errors,
        "consecutiveErrors": t.consecutive_errors,
    }


def _describe(m: Mapping[str, Any]) -> str:
    bounds = " and ".join(f"{'at least' if k == 'min' else 'at most'} {m[k]:.6g}" for k in ("min", "max") if k in m)
    value = f"{m['value']:.6g}" if "value" in m else "no value"
    text = f"{m['metric']} {value}" + (f" (must be {bounds})" if bounds else "")
    return text + (f": {m['message']}" if m.get("message") and m.get("phase") != "Failed" else "")


def advance(
    spec: InferenceServiceSpec,
    stable_version: int,
    target: Version,
    canary: Rollout | None,
    analysis: Mapping[str, Any] | None,
    measurements: Sequence[dict[str, Any]],
    now: str,
) -> CanaryPlan:
    """One step of the canary of `target` next to `stable_version`. `measurements` is the round taken now (one entry
    per metric, from `measurement`), empty when none was due."""
    cs = spec.rollout.canary_or_default()
    steps = [s.weight for s in cs.steps]
    a: dict[str, Any] = dict(analysis or {})
    history: list[dict[str, Any]] = []
    events: list[EventNote] = []
    repromoted = bool(target.promoted_at and a.get("startedAt") and target.promoted_at > str(a["startedAt"]))
    same = a.get("version") == target.version and not repromoted

    if same and a.get("phase") == AnalysisPhase.SUCCESSFUL:  # promoted before, the stable patch not yet seen
        return CanaryPlan(Outcome.PROMOTE, 0, 100, a, Reason.CANARY_PROMOTED, str(a.get("message") or ""))
    if same and a.get("phase") in (AnalysisPhase.FAILED, AnalysisPhase.INCONCLUSIVE, AnalysisPhase.ERROR):
        return CanaryPlan(Outcome.ABORT, 0, 0, a, Reason.ANALYSIS_FAILED, str(a.get("message") or ""))
    if not same or a.get("phase") != AnalysisPhase.RUNNING:
        a = _with_tally(
            {
                "phase": AnalysisPhase.RUNNING.value,
                "version": target.version,
                "step": 0,
                "weight": steps[0],
                "startedAt": now,
                "message": "",
                "measurements": [],
            },
            Tally(),
        )
        msg = f"canary of version {target.version} next to stable version {stable_version}, steps {steps}%"
        history.append(
            history_entry(now, HistoryAction.CANARY_STARTED, stable_version, target.version, Reason.CANARY_STARTED, msg)
        )
        events.append(EventNote(False, Reason.CANARY_STARTED, msg))

    step = int(a["step"])
    replicas = canary_replicas(spec.replicas, steps[step])
    weight = share(spec.replicas, replicas)

    def abort(phase: AnalysisPhase, reason: str, why: str) -> CanaryPlan:
        msg = f"canary of version {target.version} aborted at step {step} ({steps[step]}%): {why}; stable version "
        msg += f"{stable_version} keeps serving"
        done = {**a, "phase": phase.value, "message": msg[:1024]}
        entry = history_entry(now, HistoryAction.CANARY_ABORTED, stable_version, target.version, reason, msg)
        return CanaryPlan(
            Outcome.ABORT, 0, 0, done, reason, msg, [*history, entry], [*events, EventNote(True, reason, msg)]
        )

    if canary is not None and canary.version == target.version and canary.observed and canary.deadline_exceeded:
        why = f"its pods did not become available within {spec.rollout.progress_deadline_seconds}s"
        return abort(AnalysisPhase.FAILED, Reason.PROGRESS_DEADLINE_EXCEEDED, why)

    if measurements:
        rnd = [dict(m, step=step) for m in measurements]
        a["measurements"] = [*a.get("measurements", []), *rnd][-ANALYSIS_MEASUREMENTS_CAP:]
        t = _tally(a).add(worst([MeasurementPhase(m["phase"]) for m in rnd]))
        a = _with_tally(a, t)
        phase, why = assess(t, cs.analysis)
        policy = cs.analysis.on_inconclusive
        if phase is AnalysisPhase.INCONCLUSIVE and policy is InconclusivePolicy.PAUSE:
            # Too few requests to judge: stay at the step and measure it again from scratch.
            detail = "; ".join(_describe(m) for m in rnd if m["phase"] == MeasurementPhase.INCONCLUSIVE)
            msg = f"canary of version {target.version} paused at step {step} ({steps[step]}%): {why}"
            msg += f" ({detail}); measuring again, it goes on once there is traffic" if detail else "; measuring again"
            if not a.get("paused"):
                events.append(EventNote(False, Reason.ANALYSIS_PAUSED, msg))
            a = _with_tally({**a, "paused": True, "message": msg[:1024]}, Tally())
            phase = AnalysisPhase.RUNNING
        elif phase is AnalysisPhase.INCONCLUSIVE and policy is InconclusivePolicy.PROMOTE:
            a = {
                **a,
                "message": f"step {step} passed without enough requests to judge (onInconclusive: Promote): {why}",
            }
            phase = AnalysisPhase.SUCCESSFUL
        elif a.get("paused") and worst([MeasurementPhase(m["phase"]) for m in rnd]) != MeasurementPhase.INCONCLUSIVE:
            a = {**a, "paused": False, "message": ""}  # traffic came: the step is judged again
        if aborts(phase):
            bad = [m for m in rnd if m["phase"] != MeasurementPhase.SUCCESSFUL]
            detail = "; ".join(_describe(m) for m in bad)
            reason = Reason.ANALYSIS_INCONCLUSIVE if phase is AnalysisPhase.INCONCLUSIVE else Reason.ANALYSIS_FAILED
            return abort(phase, reason, f"{why} ({detail})" if detail else why)
        if phase is AnalysisPhase.SUCCESSFUL:
            if step + 1 < len(steps):
                step += 1
                a = _with_tally({**a, "step": step, "weight": steps[step], "paused": False}, Tally())
                replicas = canary_replicas(spec.replicas, steps[step])
                weight = share(spec.replicas, replicas)
                msg = f"canary of version {target.version} passed step {step - 1}; now at {steps[step]}% "
                msg += f"({replicas} canary pod(s) next to {spec.replicas} stable)"
                events.append(EventNote(False, Reason.CANARY_STEP, msg))
            else:
                msg = f"canary of version {target.version} passed every step {steps}%: promoted to stable"
                a = {**a, "phase": AnalysisPhase.SUCCESSFUL.value, "message": msg}
                entry = history_entry(
                    now, HistoryAction.CANARY_PROMOTED, stable_version, target.version, Reason.CANARY_PROMOTED, msg
                )
                return CanaryPlan(
                    Outcome.PROMOTE,
                    0,
                    100,
                    a,
                    Reason.CANARY_PROMOTED,
                    msg,
                    [*history, entry],
                    [*events, EventNote(False, Reason.CANARY_PROMOTED, msg)],
                )

    taken = _tally(a).taken
    msg = f"canary of version {target.version} at step {step} ({steps[step]}%, {replicas} pod(s) next to "
    msg += f"{spec.replicas} stable): {taken}/{cs.analysis.count} measurements"
    return CanaryPlan(
        Outcome.CONTINUE, replicas, weight, {**a, "weight": steps[step]}, Reason.CANARY_STEP, msg, history, events
    )


def measuring(
    spec: InferenceServiceSpec, analysis: Mapping[str, Any] | None, canary: Rollout | None, version: int
) -> int | None:
    """The step to measure now: the analysis of `version` is running and the step's canary pods are all available."""
    a = analysis or {}
    steps = spec.rollout.canary_or_default().steps
    step = int(a.get("step") or 0)
    if a.get("version") != version or a.get("phase") != AnalysisPhase.RUNNING or step >= len(steps):
        return None
    return step if ready_to_measure(canary, version, canary_replicas(spec.replicas, steps[step].weight)) else None


def abandoned(analysis: Mapping[str, Any] | None, why: str) -> dict[str, Any] | None:
    """The analysis of a canary that no longer runs (its version was rolled back, or the service stopped moving to
    it) ends as Failed with the reason, so status never shows a Running analysis of a canary that is gone. None when
    there is nothing to end."""
    if not analysis or analysis.get("phase") != AnalysisPhase.RUNNING:
        return None
    return {**analysis, "phase": AnalysisPhase.FAILED.value, "message": why[:1024]}


@dataclass(frozen=True)
class Settled:
    """What a reconcile writes once the serving plan and the canary step are known."""

    stable: Version | None
    """The version the stable Deployment is rendered for."""
    previous_version: int | None
    active_version: int | None
    delete_canary: bool
    """The canary Deployment goes: its canary was promoted, aborted, or is no longer wanted."""
    status: dict[str, Any]
    """canaryVersion, canaryWeight (None: cleared) and, where it changes, analysis."""


def settle(plan: Plan, cplan: CanaryPlan | None, status: Mapping[str, Any], canary_deployed: bool) -> Settled:
    """A promoted canary swaps in as stable (its version active, the old stable previous); the canary Deployment
    stays only while its canary continues; status.analysis is the canary's, or the last one's, ended as Failed if
    its canary was abandoned (rolled back on request, or no longer wanted)."""
    stable, previous, active = plan.serve, plan.previous_version, plan.active_version
    promoted = cplan is not None and cplan.outcome is Outcome.PROMOTE
    if promoted and plan.serve is not None and plan.canary is not None:
        stable, previous, active = plan.canary, plan.serve.version, plan.canary.version
    delete = canary_deployed and (cplan is None or cplan.outcome is not Outcome.CONTINUE)
    out: dict[str, Any] = {"canaryVersion": None, "canaryWeight": None}
    if cplan is not None:
        out["analysis"] = cplan.analysis
        if cplan.outcome is Outcome.CONTINUE and plan.canary is not None:
            out.update(canaryVersion=plan.canary.version, canaryWeight=cplan.weight)
        return Settled(stable, previous, active, delete, out)
    analysis = status.get("analysis") or {}
    why = f"the canary of version {analysis.get('version')} was abandoned: the service no longer moves to it"
    if plan.roll_back is not None and plan.roll_back.version.version == analysis.get("version"):
        why = plan.roll_back.message
    ended = abandoned(analysis, why)
    if ended is not None:
        out["analysis"] = ended
    return Settled(stable, previous, active, delete, out)


def overlay(conditions: list[Cond], cplan: CanaryPlan | None) -> list[Cond]:
    """The serving plan's conditions with a paused canary's say: Ready and Progressing name AnalysisPaused and why
    (too few requests, against minSamples), instead of a plain canary step."""
    if cplan is None or cplan.outcome is not Outcome.CONTINUE or not cplan.analysis.get("paused"):
        return conditions
    why = str(cplan.analysis.get("message") or "paused: too few requests to judge")
    return [
        Cond(c.type, c.status, Reason.ANALYSIS_PAUSED, why)
        if c.type in (ConditionType.READY, ConditionType.PROGRESSING)
        else c
        for c in conditions
    ]
