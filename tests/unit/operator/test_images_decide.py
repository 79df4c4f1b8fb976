"""Moving a served version to another runtime image (a new spec.image), and back when the image fails."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.api.constants import ANNOTATION_PREVIOUS_IMAGE, Reason
from driftline.api.inferenceservice import FailedImage, InferenceServiceSpec, ServicePhase
from driftline.decide import images
from driftline.decide.serving import Rollout, Step, decide, observe_deployment
from tests.unit.operator.test_serving_decide import NOW, ready_status, rollout, v

pytestmark = pytest.mark.unit

OLD, NEW, BROKEN = "driftline/runtime:0.1.0", "driftline/runtime:0.2.0", "registry.invalid/runtime:9"
POD_SAYS = "pod bc-stable-x: ErrImageNeverPull: image 'registry.invalid/runtime:9' cannot be run"


def stuck(image: str, before: str, version: int = 1, previous: int | None = None) -> Rollout:
    """A rollout of `version` with `image` past its progress deadline, with `before` to go back to."""
    return rollout(
        version,
        previous,
        image=image,
        previous_image=before,
        updated=0,
        deadline_exceeded=True,
        rolled_out=False,
        progress_message='ReplicaSet "bc-stable-2" has timed out progressing.',
    )


def failed_record(image: str = BROKEN) -> dict[str, Any]:
    return {"image": image, "version": 1, "reason": "ProgressDeadlineExceeded", "message": "m", "time": NOW}


@pytest.mark.parametrize(
    ("case", "wanted", "live", "failed", "image", "previous", "kept_failed", "rolled_back", "history"),
    [
        ("steady: nothing to do", OLD, rollout(1, image=OLD), None, None, None, False, False, []),
        ("a new spec.image: the move starts", NEW, rollout(1, image=OLD), None, NEW, OLD, False, False, ["ImageMove"]),
        (
            "under way: the image to go back to is kept",
            NEW,
            rollout(1, image=NEW, previous_image=OLD, updated=0, rolled_out=False),
            None,
            NEW,
            OLD,
            False,
            False,
            [],
        ),
        (
            "done: nothing to go back to",
            NEW,
            rollout(1, image=NEW, previous_image=OLD),
            None,
            None,
            None,
            False,
            False,
            [],
        ),
        ("past the deadline: back", BROKEN, stuck(BROKEN, OLD), None, OLD, None, True, True, ["ImageRollback"]),
        (
            "rolled back: stays until the spec changes",
            BROKEN,
            rollout(1, image=OLD),
            failed_record(),
            OLD,
            None,
            True,
            True,
            [],
        ),
        (
            "the spec names another: a new move, the failure forgotten",
            NEW,
            rollout(1, image=OLD),
            failed_record(),
            NEW,
            OLD,
            False,
            False,
            ["ImageMove"],
        ),
        (
            "a failure of another version is not this one's",
            BROKEN,
            rollout(1, image=OLD),
            {**failed_record(), "version": 7},
            BROKEN,
            OLD,
            False,
            False,
            ["ImageMove"],
        ),
        ("a new Deployment: its own rollout", NEW, None, None, None, None, False, False, []),
        (
            "another version's rollout: not an image move",
            NEW,
            rollout(2, image=OLD),
            None,
            None,
            None,
            False,
            False,
            [],
        ),
    ],
)
def test_which_image_the_stable_deployment_runs(
    case: str,
    wanted: str,
    live: Rollout | None,
    failed: dict[str, Any] | None,
    image: str | None,
    previous: str | None,
    kept_failed: bool,
    rolled_back: bool,
    history: list[str],
) -> None:
    last = live.image if live is not None else None  # status.image: what the stable pods ran when last looked at
    plan = images.decide(1, wanted, live, failed, last, 600, NOW, POD_SAYS)
    assert (plan.image, plan.previous_image) == (image, previous), case
    assert (plan.failed is not None, plan.rolled_back is not None) == (kept_failed, rolled_back), case
    assert [h["action"] for h in plan.history] == history, case
    assert all(h["fromVersion"] == h["toVersion"] == 1 for h in plan.history), case  # the version never moves


def test_a_persons_kubectl_set_image_is_undone_not_taken_for_a_move() -> None:
    """The spec still wants what ran at the last look: the live image is someone's edit, and the apply puts it back
    (announced as EditReverted by the handler), with no move and nothing to go back to."""
    plan = images.decide(1, OLD, rollout(1, image="example.com/someone/server:hotfix"), None, OLD, 600, NOW)
    assert (plan.image, plan.previous_image, plan.history, plan.events) == (None, None, [], [])
    # The same live image with a spec that now asks for a new one is a move (from what runs).
    moved = images.decide(1, NEW, rollout(1, image="example.com/someone/server:hotfix"), None, OLD, 600, NOW)
    assert (moved.image, moved.previous_image) == (NEW, "example.com/someone/server:hotfix")


def test_a_failed_image_is_recorded_with_why_its_pods_did_not_start_and_fits_the_status_model() -> None:
    plan = images.decide(1, BROKEN, stuck(BROKEN, OLD), None, OLD, 30, NOW, POD_SAYS)
    assert plan.failed is not None and plan.rolled_back is not None
    assert FailedImage.model_validate(plan.failed).api_fields() == plan.failed  # written as decided
    assert plan.failed["image"] == BROKEN and plan.failed["reason"] == Reason.PROGRESS_DEADLINE_EXCEEDED
    assert "not available within 30s" in plan.failed["message"] and POD_SAYS in plan.failed["message"]
    (note,) = plan.events
    assert note.warning and note.reason == Reason.IMAGE_ROLLED_BACK
    assert f"serving it with {OLD} again" in note.message and "spec.image" in note.message


def test_a_failed_image_makes_the_service_degraded_and_stalled_not_failed() -> None:
    plan = images.decide(1, BROKEN, rollout(1, image=OLD), failed_record(), OLD, 600, NOW)
    phase, conds = images.overlay(ServicePhase.READY, [], plan)
    by_type = {c.type: c for c in conds}
    assert phase is ServicePhase.DEGRADED
    assert (by_type["Ready"].status, by_type["Degraded"].status, by_type["Stalled"].status) == (False, True, True)
    assert by_type["Ready"].reason == Reason.IMAGE_ROLLED_BACK and BROKEN in by_type["Ready"].message


def test_an_image_move_past_its_deadline_never_rolls_the_version_back() -> None:
    """v2 serves, v1 before it: a stuck rollout of v2 to a new image is the image's fault, not v2's. The serving
    decision keeps v2 (a version's own stuck rollout would go back to v1); the image plan goes back to the old image."""
    spec = InferenceServiceSpec.model_validate({"model": "m", "image": BROKEN})
    versions = [v(1, "Archived"), v(2, "Production")]
    live = stuck(BROKEN, OLD, version=2, previous=1)
    plan = decide(spec, versions, live, ready_status(2, previousVersion=1), None, NOW)
    assert plan.roll_back is None and plan.step is Step.SYNC and plan.serve is not None and plan.serve.version == 2
    iplan = images.for_plan(plan, spec, live, {}, OLD, NOW)
    assert iplan.image == OLD and iplan.failed is not None and iplan.failed["version"] == 2
    # The same rollout stuck on a version move (no image to go back to) does roll back to v1, as before.
    version_move = stuck(OLD, OLD, version=2, previous=1)
    assert decide(spec, versions, version_move, ready_status(2, previousVersion=1), None, NOW).roll_back is not None


def test_the_image_and_the_one_to_go_back_to_are_read_off_the_deployment() -> None:
    dep = {
        "metadata": {"generation": 3, "annotations": {ANNOTATION_PREVIOUS_IMAGE: OLD}},
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"labels": {"v": "1"}},
                "spec": {"containers": [{"name": "sidecar", "image": "x"}, {"name": "server", "image": NEW}]},
            },
        },
        "status": {"observedGeneration": 3},
    }
    seen = observe_deployment(dep, "v", "p")
    assert seen is not None and (seen.image, seen.previous_image, seen.moving_image) == (NEW, OLD, True)
