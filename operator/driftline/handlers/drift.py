"""Drift watching: for every InferenceService with drift enabled, a daemon reads the served version's drift every
scrapeInterval (with jitter, so services do not scrape in lockstep) and carries out what decide.drift says.

Level-based: each reading re-reads the InferenceService, its pods and its retrain TrainingJobs; the run of breaches
and errors is in status.drift, so a restarted operator carries on where it stopped. A rollback marks the drifting
version RolledBack (model-wide) and lets the serving reconcile move traffic, as for any rolled-back version. A retrain
is a TrainingJob owned by the service, named by its sequence number: at most one in flight, spaced by the cooldown,
both judged from the TrainingJobs in the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from typing import Any

import kopf
from pydantic import ValidationError

from driftline import config
from driftline.api import constants as c
from driftline.api.drift import DriftAction, DriftSpec
from driftline.api.fields import parse_duration
from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.decide import conditions as conds
from driftline.decide import drift, drift_metrics
from driftline.decide.serving import RollBack
from driftline.handlers import failpoints, inferenceservice, readings, registry, watches
from driftline.handlers.locks import lock
from driftline.k8s import events, objects
from driftline.metrics import pods as pods_provider
from driftline.metrics import prometheus
from driftline.render import retrain as render_retrain
from driftline.telemetry import (
    DRIFT_BREACHES,
    DRIFT_READING_DELAY,
    DRIFT_SAMPLES,
    DRIFT_SCORE,
    DRIFT_THRESHOLD,
    forget,
    reconciler,
    set_gauge,
)

log = logging.getLogger(__name__)

JITTER = 0.1
"""Each wait is the interval times a factor drawn from 1 ± JITTER."""


def _watching(spec: kopf.Spec, **_: Any) -> bool:
    settings = spec.get("drift")
    return isinstance(settings, dict) and settings.get("enabled", True) is not False


def _interval(spec: Any) -> float:
    try:
        return max(1.0, parse_duration(str((spec.get("drift") or {}).get("scrapeInterval") or "30s")))
    except ValueError:
        return 30.0


@kopf.daemon(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural, when=_watching, cancellation_timeout=5.0)
async def drift_daemon(
    name: str, namespace: str | None, spec: kopf.Spec, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    if not namespace:
        return
    interval = _interval(spec)
    while not stopped:
        wait = interval * random.uniform(1 - JITTER, 1 + JITTER)
        due = time.monotonic() + wait
        await asyncio.sleep(wait)
        if stopped:
            break
        try:
            # Readings reach tenants' servers (up to 5 s each): reconciles must not wait behind them.
            interval, follow_up = await readings.run(_read_when_due, due, namespace, name)
        except Exception:  # a reading must never kill the watch: log, wait an interval, read again
            log.exception("drift reading of %s/%s failed", namespace, name)
            continue
        if follow_up:  # traffic moves now, not on the next watch event
            await asyncio.to_thread(inferenceservice.reconcile, namespace, name)


@kopf.on.delete(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural, optional=True)
def on_deleted(name: str, namespace: str | None, **_: Any) -> None:
    if namespace:
        forget(namespace, name)


def _read_when_due(due: float, namespace: str, name: str) -> tuple[float, bool]:
    DRIFT_READING_DELAY.observe(max(0.0, time.monotonic() - due))
    return read_and_act(namespace, name)


@reconciler("InferenceServiceDrift")
def read_and_act(namespace: str, name: str) -> tuple[float, bool]:
    """One drift reading and its consequences: (seconds to the next reading, whether serving must reconcile now)."""
    with lock(("inferenceservice", namespace, name)):
        view = watches.prime(namespace)
        isvc = view.services.get(namespace, name)
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            return 30.0, False
        interval = _interval(isvc.get("spec") or {})
        try:
            spec = InferenceServiceSpec.model_validate(isvc["spec"])
        except ValidationError:
            return interval, False  # the serving reconcile reports the spec as invalid
        settings = spec.drift
        status = isvc.get("status") or {}
        active = status.get("activeVersion")
        if settings is None or not settings.enabled or active is None:
            return interval, False
        reading = _read(isvc, spec, settings, int(active))
        # The model's versions matter only to a rollback, which only a breach can set off.
        versions = inferenceservice.versions_of(namespace, spec.model) if drift.may_roll_back(settings, reading) else []
        served = drift.served_from(status, [v.version for v in versions if v.good])
        # The retrains are read at every reading of a Retrain service: one the status does not name yet (a crash
        # between creating it and writing status) is recorded from the cluster.
        jobs = watches.retrains_of(namespace, name) if settings.action is DriftAction.RETRAIN else []
        last = status.get("drift") or {}
        now = registry.now()
        plan = drift.decide(
            settings, spec.retrain, reading, last, served, drift.retrains_from(jobs, c.LABEL_RETRAIN), now
        )

        if plan.action is not None:
            failpoints.hit("drift.action-decided")
        if plan.action is DriftAction.RETRAIN:
            plan.status["lastRetrainJob"] = _start_retrain(isvc, jobs, plan.history[-1])
            failpoints.hit("drift.retrain-created")
        elif plan.action is DriftAction.ROLLBACK and plan.rollback_to is not None:
            leaving = next(v for v in versions if v.version == active)
            inferenceservice.mark_rolled_back(
                namespace,
                spec.model,
                RollBack(leaving, plan.rollback_to, c.Reason.DRIFT_DETECTED, plan.rollback_message),
            )
        _write(isvc, plan, settings.consecutive_error_limit)
        for note in plan.events:
            (events.warning if note.warning else events.normal)(isvc, note.reason, note.message)
        _export(namespace, name, settings, plan.status)
        return interval, drift.serving_follows(settings, last, plan)


@kopf.on.event(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural, annotations={c.ANNOTATION_RETRAIN: kopf.PRESENT})
async def on_retrain_request(body: kopf.Body, namespace: str | None, name: str, type: str | None, **_: Any) -> None:
    """A person's retrain request (the annotation, once per value). Level-based: kopf's first listing after a restart
    brings every annotated service here, and one whose request status already records is no news."""
    if not namespace or type == "DELETED":
        return
    asked = (body.metadata.annotations or {}).get(c.ANNOTATION_RETRAIN)
    if asked == (body.get("status") or {}).get("lastRetrainRequest"):
        return
    await asyncio.to_thread(carry_out_retrain_request, namespace, name)


@reconciler("InferenceServiceRetrain")
def carry_out_retrain_request(namespace: str, name: str) -> None:
    with lock(("inferenceservice", namespace, name)):
        isvc = watches.prime(namespace).services.get(namespace, name)
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            return
        try:
            spec = InferenceServiceSpec.model_validate(isvc["spec"])
        except ValidationError:
            return  # the serving reconcile reports the spec as invalid
        status = isvc.get("status") or {}
        jobs = watches.retrains_of(namespace, name)
        asked = (isvc["metadata"].get("annotations") or {}).get(c.ANNOTATION_RETRAIN)
        ask = drift.retrain_request(
            asked, status.get("lastRetrainRequest"), spec.retrain, drift.retrains_from(jobs, c.LABEL_RETRAIN)
        )
        if ask is None:
            return
        if not ask.start:
            patch = drift.retrain_request_status(status, ask, None, registry.now())
            objects.patch_status(c.INFERENCE_SERVICE, namespace, name, patch)
            events.warning(isvc, c.Reason.RETRAIN_REQUESTED, f"{ask.message}: not started")
            return
        body = render_retrain.trainingjob(isvc, render_retrain.sequence(jobs), status.get("activeVersion"), ask.message)
        with contextlib.suppress(objects.AlreadyExists):  # made before a status write that was lost
            objects.create(c.TRAINING_JOB, namespace, body)
        job = str(body["metadata"]["name"])
        objects.patch_status(
            c.INFERENCE_SERVICE, namespace, name, drift.retrain_request_status(status, ask, job, registry.now())
        )
        events.normal(isvc, c.Reason.RETRAIN_REQUESTED, f"started TrainingJob {job} ({ask.message})")


def _start_retrain(isvc: dict[str, Any], jobs: list[dict[str, Any]], entry: dict[str, Any]) -> str:
    body = render_retrain.trainingjob(isvc, render_retrain.sequence(jobs), entry.get("fromVersion"), entry["message"])
    with contextlib.suppress(objects.AlreadyExists):  # made by a reading whose status write was lost
        objects.create(c.TRAINING_JOB, isvc["metadata"]["namespace"], body)
    events.normal(isvc, c.Reason.RETRAIN_STARTED, f"started TrainingJob {body['metadata']['name']}")
    return str(body["metadata"]["name"])


def _read(isvc: dict[str, Any], spec: InferenceServiceSpec, settings: DriftSpec, active: int) -> drift.Reading:
    meta = isvc["metadata"]
    ns, name = meta["namespace"], meta["name"]
    source = settings.source.prometheus
    if source is not None:
        values = {"namespace": ns, "name": name, "model": spec.model, "version": str(active)}
        try:
            promql = prometheus.render_query(source.query, values)
            return drift.Reading(
                score=prometheus.query(str(source.url), promql, allowed=config.current().allowed_prometheus_urls)
            )
        except prometheus.QueryError as e:
            return drift.Reading(error=str(e))
    selector = f"{c.LABEL_INFERENCE_SERVICE}={name},{c.LABEL_TRACK}={c.TRACK_STABLE},{c.LABEL_VERSION}={active}"
    ready = pods_provider.ready_pods(objects.list_pods(ns, selector))
    if not ready:
        return drift.Reading(error=f"no ready pod of version {active} to read drift from")
    read: list[drift_metrics.PodDrift] = []
    errors: list[str] = []
    for ip in ready.values():
        try:
            read.append(drift_metrics.parse(pods_provider.fetch(ip, spec.port), settings.metric.value))
        except (pods_provider.ScrapeError, ValueError) as e:
            errors.append(f"{ip}: {e}")
    if not read:
        return drift.Reading(error="; ".join(errors)[:1024])
    return drift_metrics.combine(read)


def _write(isvc: dict[str, Any], plan: drift.DriftPlan, error_limit: int) -> None:
    meta, old = isvc["metadata"], isvc.get("status") or {}
    merged = conds.merge(old.get("conditions"), plan.conditions, meta.get("generation"), registry.now())
    patch = drift.status_patch(old, plan, merged, error_limit)
    if patch is not None:
        objects.patch_status(c.INFERENCE_SERVICE, meta["namespace"], meta["name"], patch)


def _export(namespace: str, name: str, settings: DriftSpec, status: dict[str, Any]) -> None:
    labels = (settings.metric.value,)
    score, samples = status.get("score"), status.get("samples")
    set_gauge(DRIFT_SCORE, namespace, name, labels, math.nan if score is None else float(score))
    set_gauge(DRIFT_THRESHOLD, namespace, name, labels, settings.threshold)
    set_gauge(DRIFT_SAMPLES, namespace, name, labels, math.nan if samples is None else float(samples))
    set_gauge(DRIFT_BREACHES, namespace, name, labels, float(status.get("consecutiveBreaches") or 0))
