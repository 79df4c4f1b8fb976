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


LIVE_DATA_KEY = "data.csv"


def live_data_name(isvc: dict[str, Any], seq: int) -> str:
    meta = isvc["metadata"]
    return child_name(meta["name"], f"retrain-{seq}-data", meta["uid"])


def live_data(isvc: dict[str, Any], seq: int, csv: str) -> dict[str, Any]:
    """The ConfigMap holding retrain `seq`'s labelled live rows. Owned by the service, not the TrainingJob: the
    ModelVersion it makes names it as its dataset, and it stays while the service does."""
    meta = isvc["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": live_data_name(isvc, seq),
            "namespace": meta["namespace"],
            "labels": {
                c.LABEL_INFERENCE_SERVICE: meta["name"],
                c.LABEL_MODEL: isvc["spec"]["model"],
                c.LABEL_RETRAIN: str(seq),
                c.LABEL_APP_MANAGED_BY: c.MANAGED_BY,
                c.LABEL_APP_PART_OF: c.PART_OF,
            },
            "ownerReferences": [owner_reference(isvc)],
        },
        "data": {LIVE_DATA_KEY: csv},
    }


def trainingjob(
    isvc: dict[str, Any],
    seq: int,
    served_version: int | None = None,
    reason: str = "",
    trigger: str = c.TRIGGER_DRIFT,
    live: bool = False,
) -> dict[str, Any]:
    """`served_version`, `reason` and `trigger` (who started it) go into annotations: the history entry can be rebuilt
    from the TrainingJob alone should the operator die before writing it, by the monitor that started it. With `live`,
    it learns from the ConfigMap live_data(isvc, seq) instead of the template's dataset (its target, features and
    split kept)."""
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
        "spec": _spec(isvc, seq, live),
    }


def _spec(isvc: dict[str, Any], seq: int, live: bool) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(isvc["spec"]["retrain"]["template"])
    if live:
        dataset = {
            k: v
            for k, v in (spec.get("dataset") or {}).items()
            if k in ("target", "features", "validationSplit", "seed")
        }
        spec["dataset"] = {
            **dataset,
            "uri": f"configmap://{live_data_name(isvc, seq)}/{LIVE_DATA_KEY}",
            "format": "csv",
        }
    return spec
