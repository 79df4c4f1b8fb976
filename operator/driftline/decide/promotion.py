"""Whether a candidate ModelVersion becomes Production, and which versions a promotion archives."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from driftline.api.constants import ANNOTATION_PROMOTE, ANNOTATION_REJECT
from driftline.api.modelversion import Evaluation, Stage
from driftline.api.performance import LOWER_IS_BETTER
from driftline.api.promotion import PromotionPolicy


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: tuple[str, ...]
    """One line per gate, passed or failed, with the numbers: the Event and status.reason read these."""

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(c for c in self.checks if c.startswith("FAILED"))

    @property
    def summary(self) -> str:
        shown = self.failures if not self.passed else self.checks
        return "; ".join(shown) if shown else "no gates configured"


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def assess(candidate: Mapping[str, float], policy: PromotionPolicy, production: Mapping[str, float] | None) -> Verdict:
    """Every gate and the must-beat rule, each reported with its numbers. A missing or non-finite metric fails."""
    checks: list[str] = []
    for gate in policy.gates:
        value = candidate.get(gate.metric)
        if value is None or not math.isfinite(value):
            checks.append(
                f"FAILED {gate.metric} {gate.op.value} {_fmt(gate.value)}: the version reports no {gate.metric}"
            )
            continue
        ok = gate.op.holds(value, gate.value)
        checks.append(f"{'passed' if ok else 'FAILED'} {gate.metric} {gate.op.value} {_fmt(gate.value)}: {_fmt(value)}")
    rule = policy.must_beat
    if rule is not None:
        mine = candidate.get(rule.metric)
        theirs = None if production is None else production.get(rule.metric)
        if production is None:
            checks.append(f"passed must beat Production on {rule.metric}: no Production version yet")
        elif mine is None or not math.isfinite(mine):
            checks.append(f"FAILED must beat Production on {rule.metric}: the version reports no {rule.metric}")
        elif theirs is None or not math.isfinite(theirs):
            checks.append(f"passed must beat Production on {rule.metric}: Production reports no {rule.metric}")
        else:
            gain = (mine - theirs) if rule.higher_is_better else (theirs - mine)
            ok = gain >= rule.min_delta
            direction = "higher" if rule.higher_is_better else "lower"
            checks.append(
                f"{'passed' if ok else 'FAILED'} must beat Production on {rule.metric} by {_fmt(rule.min_delta)} "
                f"({direction} is better): {_fmt(mine)} vs {_fmt(theirs)}"
            )
    return Verdict(passed=not any(c.startswith("FAILED") for c in checks), checks=tuple(checks))


@dataclass(frozen=True)
class Registered:
    """What promotion needs to know of one ModelVersion of a model."""

    name: str
    version: int
    stage: str | None
    promoted_at: str | None = None


@dataclass(frozen=True)
class Holder:
    """A ModelVersion naming some artifact, and when it was created."""

    name: str
    created: str  # metadata.creationTimestamp, RFC 3339 in UTC: ordered as text
    accepted: bool = False  # already given a stage, other than refused for sharing


def artifact_owner(name: str, holders: Sequence[Holder]) -> str | None:
    """Two versions never share an artifact: one already accepted keeps it, else the first created (by name on a
    tie: timestamps have whole seconds). The version that does when `name` does not, else None. A second version of
    the same bytes would let whoever registers it promote what someone else trained, under another model's name or
    gates."""
    first = min(holders, key=lambda h: (not h.accepted, h.created, h.name), default=None)
    return first.name if first is not None and first.name != name else None


def to_archive(versions: Sequence[Registered], promoted: str) -> list[str]:
    """After `promoted` became Production, every other Production version of the model is archived."""
    return [v.name for v in versions if v.stage == Stage.PRODUCTION and v.name != promoted]


def several_in_production(versions: Sequence[Registered]) -> bool:
    """Whether a crash left more than one Production version of the model, for `survivor` to settle."""
    return sum(1 for v in versions if v.stage == Stage.PRODUCTION) > 1


def survivor(versions: Sequence[Registered]) -> str | None:
    """When a crash left two Production versions, the most recently promoted one stays (ties: the higher version)."""
    prod = [v for v in versions if v.stage == Stage.PRODUCTION]
    if not prod:
        return None
    return max(prod, key=lambda v: (v.promoted_at or "", v.version)).name


def restored_after_rollback(versions: Sequence[Registered], rolled_back: str, to_version: int) -> str | None:
    """The version that is Production again once `rolled_back` is out of service and traffic went back to
    `to_version`, so the registry says what serves. Only a version that was Production before (Archived) comes back;
    none does when another version is Production (a person promoted one since) or the one returned to is gone."""
    if any(v.stage == Stage.PRODUCTION and v.name != rolled_back for v in versions):
        return None
    back = next((v for v in versions if v.version == to_version and v.name != rolled_back), None)
    return back.name if back is not None and back.stage == Stage.ARCHIVED else None


def next_version(existing: Sequence[int]) -> int:
    return max(existing, default=0) + 1


class Request(StrEnum):
    """What a ModelVersion's own reconcile has to do, read from its annotations and status."""

    REJECT = "Reject"
    """A person or Git asked for a rejection not yet carried out."""
    PROMOTE = "Promote"
    """A promotion request not yet carried out."""
    REGISTER = "Register"
    """Registered by hand or by Git, with no stage yet: it becomes a Candidate."""
    DEDUPE = "Dedupe"
    """Production: a crash between promoting one version and archiving another can leave two."""


def pending(annotations: Mapping[str, str], status: Mapping[str, Any]) -> Request | None:
    """None: nothing to do, and no reason to read anything more (most versions, most of the time)."""
    reject = annotations.get(ANNOTATION_REJECT)
    if reject and reject != status.get("lastRejectRequest"):
        return Request.REJECT
    promote = annotations.get(ANNOTATION_PROMOTE)
    if promote and promote.lower() != "false" and promote != status.get("lastPromoteRequest"):
        return Request.PROMOTE
    stage = status.get("stage")
    if stage is None:
        return Request.REGISTER
    return Request.DEDUPE if stage == Stage.PRODUCTION else None


def online_wait(gate: Evaluation) -> str:
    """What an Evaluating version waits for, in its status.reason."""
    better = "at most" if gate.metric in {m.value for m in LOWER_IS_BETTER} else "at least"
    return (
        f"evaluating online: InferenceService {gate.service} runs it in shadow (spec.shadow), and it becomes "
        f"Production if its live {gate.metric} over {gate.min_samples} labelled rows is {better} the served "
        f"version's {'-' if better == 'at most' else '+'} {gate.margin:g}"
    )
