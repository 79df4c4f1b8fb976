"""The view compared with the cluster every RESYNC_SECONDS (k8s/cache.Cache.resync), namespace by namespace, as
client-go's informers resync: kopf relists after a lost watch but never reports what was deleted meanwhile. A service
whose child or model version was found gone is reconciled at once; one found gone itself loses its metric series."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from driftline.api import constants as c
from driftline.handlers import inferenceservice, recheck, watches
from driftline.telemetry import forget, reconciler

log = logging.getLogger(__name__)

RESYNC_SECONDS = float(os.environ.get("DRIFTLINE_RESYNC_SECONDS") or 600)
"""Between two comparisons: each lists every watched kind of every namespace the view holds once (a page at a time)."""
_KEY = ("view-resync",)


@kopf.on.startup()
def start(**_: Any) -> None:
    recheck.after(_KEY, RESYNC_SECONDS, run)


@reconciler("ViewResync")
def run() -> None:
    """One comparison of every namespace, then the next one scheduled. A failure is retried by the schedule."""
    for namespace in watches.VIEW.namespaces():
        dropped = watches.VIEW.resync(namespace, watches.listings(namespace))
        owners: set[str] = set()
        for obj in dropped.objects:
            name = str(obj["metadata"]["name"])
            if obj.get("kind") == c.INFERENCE_SERVICE.kind:
                forget(namespace, name)
                log.info("resync: InferenceService %s/%s is gone", namespace, name)
                continue
            owner = (obj["metadata"].get("labels") or {}).get(c.LABEL_INFERENCE_SERVICE)
            log.info("resync: %s %s/%s is gone; reconciling %s", obj.get("kind"), namespace, name, owner)
            if owner:
                owners.add(str(owner))
        for model in dropped.models:
            log.info("resync: versions of model %s/%s are gone", namespace, model)
            owners.update(inferenceservice.following(namespace, model))
        for owner in sorted(owners):
            if watches.VIEW.services.get(namespace, owner) is not None:
                inferenceservice.reconcile(namespace, owner)
    recheck.after(_KEY, RESYNC_SECONDS, run)
