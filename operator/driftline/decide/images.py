"""Which runtime image the stable Deployment runs, when its version stays and the image it should run changes (a new
spec.image): the move is a rolling update of the same version, and if its pods are not available within the progress
deadline the Deployment goes back to the image before, as `kubectl rollout undo` would, and the service reports the
failed image until spec.image names another. A broken image, or a model that will not load under it (a pickle from
another scikit-learn), so costs no traffic: the old pods serve until new ones are ready, and never crash-loop for good.

Level-based like decide.serving: the image to return to is written on the Deployment with the move
(driftline.dev/previous-image), the failed image in status.failedImage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftline.api.constants import ConditionType, Reason
from driftline.api.inferenceservice import HistoryAction, InferenceServiceSpec, ServicePhase
from driftline.decide.conditions import Cond, lifecycle
from driftline.decide.serving import EventNote, Plan, Rollout, Step, history_entry


@dataclass(frozen=True)
class ImagePlan:
    image: str | None
    """The image the stable Deployment is rendered with; None: the one spec and version choose."""
    previous_image: str | None = None
    """The image a move under way returns to if it fails (the Deployment's annotation)."""
    failed: dict[str, Any] | None = None
    """status.failedImage (None: cleared)."""
    rolled_back: str | None = None
    """With a failed image in force: why the service serves the image before (its Degraded message)."""
    history: list[dict[str, Any]] = field(default_factory=list)
    events: list[EventNote] = field(default_factory=list)


def failure_message(failed: Mapping[str, Any], serving: str | None) -> str:
    msg = f"image {failed.get('image')} did not serve version {failed.get('version')}"
    msg += f" ({failed['message']})" if failed.get("message") else ""
    msg += f"; serving it with {serving} again" if serving else ""
    return msg + "; name another image in spec.image (or remove it) to move again"


def decide(
    version: int,
    wanted: str,
    rollout: Rollout | None,
    failed: Mapping[str, Any] | None,
    last_image: str | None,
    deadline_seconds: int,
    now: str,
    not_starting: str | None = None,
) -> ImagePlan:
    """The image for the stable Deployment serving `version` (staying on it this reconcile), which should run
    `wanted`. `failed`: status.failedImage; `last_image`: status.image, what the stable pods ran when last looked at
    (a person's `kubectl set image` is an edit to undo, not a move: the spec still wants what ran);
    `not_starting`: why the pods of the rollout do not start, if known."""
    if rollout is None or rollout.version != version or rollout.image is None:
        return ImagePlan(None)  # a new Deployment, or a move to another version: that rollout's own rules apply
    live, before = rollout.image, rollout.previous_image
    if failed and failed.get("image") == wanted and failed.get("version") == version and live != wanted:
        # The failed image is still what the spec asks for: stay on the one before until the spec changes.
        return ImagePlan(live, failed=dict(failed), rolled_back=failure_message(failed, live))
    if live != wanted and last_image == wanted:
        return ImagePlan(None)  # someone else's edit of the Deployment: the apply puts the spec's image back
    if live != wanted:
        msg = f"moving version {version} from image {live} to {wanted}"
        entry = history_entry(now, HistoryAction.IMAGE_MOVE, version, version, Reason.IMAGE_MOVE, msg)
        note = EventNote(False, Reason.IMAGE_MOVE, msg)
        return ImagePlan(wanted, previous_image=live, history=[entry], events=[note])
    if before is None or before == live:
        return ImagePlan(None)
    # A move to `live` is under way, with `before` to go back to.
    if rollout.observed and rollout.deadline_exceeded:
        why = f"its pods were not available within {deadline_seconds}s"
        why += f" ({rollout.progress_message})" if rollout.progress_message else ""
        why += f"; {not_starting}" if not_starting else ""
        record = {
            "image": live,
            "version": version,
            "reason": Reason.PROGRESS_DEADLINE_EXCEEDED.value,
            "message": why[:1024],
            "time": now,
        }
        msg = failure_message(record, before)
        entry = history_entry(now, HistoryAction.IMAGE_ROLLBACK, version, version, Reason.IMAGE_ROLLED_BACK, msg)
        return ImagePlan(
            before,
            failed=record,
            rolled_back=msg,
            history=[entry],
            events=[EventNote(True, Reason.IMAGE_ROLLED_BACK, msg)],
        )
    if rollout.complete:
        return ImagePlan(None)  # the move is done: nothing to go back to any more
    return ImagePlan(live, previous_image=before)


def for_plan(
    plan: Plan,
    spec: InferenceServiceSpec,
    rollout: Rollout | None,
    status: Mapping[str, Any],
    runtime_image: str,
    now: str,
    not_starting: str | None = None,
) -> ImagePlan:
    """The image step of a reconcile whose serving plan keeps the stable Deployment on its version (SYNC); any other
    step moves versions or waits, and a failed image of the version left behind is forgotten."""
    if plan.step is not Step.SYNC or plan.serve is None:
        return ImagePlan(None)
    wanted = spec.serving_image(plan.serve.image, runtime_image)
    deadline = spec.rollout.progress_deadline_seconds
    failed, last = status.get("failedImage"), status.get("image")
    return decide(plan.serve.version, wanted, rollout, failed, last, deadline, now, not_starting)


def overlay(phase: ServicePhase, conditions: list[Cond], iplan: ImagePlan) -> tuple[ServicePhase, list[Cond]]:
    """With a failed image in force the service serves, but not what its spec asks: Degraded, and Stalled until the
    spec changes (as a rolled-back pin is reported)."""
    if iplan.rolled_back is None:
        return phase, conditions
    why = iplan.rolled_back
    mine = [
        *lifecycle(False, Reason.IMAGE_ROLLED_BACK, why, reconciling=False, stalled=True),
        Cond(ConditionType.PROGRESSING, False, Reason.IMAGE_ROLLED_BACK, why),
        Cond(ConditionType.DEGRADED, True, Reason.IMAGE_ROLLED_BACK, why),
    ]
    replaced = {c.type for c in mine}
    return ServicePhase.DEGRADED, [*mine, *(c for c in conditions if c.type not in replaced)]
