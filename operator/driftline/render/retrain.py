"""The TrainingJob a monitor starts (action Retrain) or a person asks for: the InferenceService's
spec.retrain.template, owned by it."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from driftline.api import constants as c
from driftline.render.common import child_name, owner_reference


def sequence(jobs: Sequence[dict[str, Any]]) -> int:
    """The next retrain's number: one past the highest among the service's retrains (never reused, so a retrain
    deleted by hand cannot make the next one's name collide)."""
    highest = 0
    for job in jobs:
        label = ((job.get("metadata") or {}).get("labels") or {}).get(c.LABEL_RETRAIN, "")
        if label.isdigit():
            highest = max(highest, int(label))
    return highest + 1


def trainingjob(
    isvc: dict[str, Any], seq: int, served_version: int | None = None, reason: str = "", trigger: str = c.TRIGGER_DRIFT
) -> dict[str, Any]:
    """`served_version`, `reason` and `trigger` (who started it) go into annotations: the history entry can be rebuilt
    from the TrainingJob alone should the operator die before writing it, by the monitor that started it."""
    meta = isvc["metadata"]
    annotations = {c.ANNOTATION_RETRAIN_TRIGGER: trigger}
    if reason:
        annotations[c.ANNOTATION_RETRAIN_REASON] = reason[:1024]
    if served_version is not None:
        annotations[c.ANNOTATION_RETRAIN_SERVED] = str(served_version)
    # The service's author wrote the retrain template: the retrain is checked as them (decide.authorship).
    recorded = meta.get("annotations") or {}
    annotations |= {k: recorded[k] for k in (c.ANNOTATION_AUTHOR, c.ANNOTATION_AUTHOR_GROUPS) if k in recorded}
    spec = isvc["spec"]
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.TRAINING_JOB.kind,
        "metadata": {
            "name": child_name(meta["name"], f"retrain-{seq}", meta["uid"]),
            "namespace": meta["namespace"],
            "labels": {
                c.LABEL_INFERENCE_SERVICE: meta["name"],
                c.LABEL_MODEL: spec["model"],
                c.LABEL_RETRAIN: str(seq),
                c.LABEL_APP_MANAGED_BY: c.MANAGED_BY,
                c.LABEL_APP_PART_OF: c.PART_OF,
            },
            "annotations": annotations,
            "ownerReferences": [owner_reference(isvc)],
        },
        "spec": copy.deepcopy(spec["retrain"]["template"]),
    }
