"""The monitors of a served model: for every InferenceService with drift (or live performance) watching on, a daemon
takes a reading of the served version every scrapeInterval (with jitter, so services do not read in lockstep) and
carries out what decide.drift (decide.performance) and decide.monitor say.

Level-based: each reading re-reads the InferenceService, its pods, its versions and its retrain TrainingJobs; the run
of breaches and errors is in status.drift (status.performance), so a restarted operator carries on where it stopped.
A rollback marks the breaching version RolledBack (model-wide) and lets the serving reconcile move traffic, as for any
rolled-back version. A retrain is a TrainingJob owned by the service, named by its sequence number and annotated with
who started it: at most one in flight, spaced by the cooldown, whichever monitor or person started them, all judged
from the TrainingJobs in the cluster.
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
from driftline.api.drift import DriftSpec
from driftline.api.fields import parse_duration
from driftline.api.inferenceservice import InferenceServiceSpec, RetrainData
from driftline.api.modelversion import Stage
from driftline.api.monitor import MonitorAction, MonitorPolicy
from driftline.api.performance import PerformanceSpec
from driftline.decide import authorship, drift, live_data, monitor, online, performance, pod_readings, shadow
from driftline.decide import conditions as conds
from driftline.decide.serving import RollBack, Version
from driftline.handlers import authors, failpoints, inferenceservice, readings, registry, watches
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
    LIVE_PERFORMANCE,
    LIVE_PERFORMANCE_BREACHES,
    LIVE_PERFORMANCE_THRESHOLD,
    forget,
    reconciler,
    set_gauge,
)

log = logging.getLogger(__name__)

JITTER = 0.1
"""Each wait is the interval times a factor drawn from 1 ± JITTER."""
DRIFT = monitor.DRIFT.key
PERFORMANCE = monitor.PERFORMANCE.key
SHADOW = "shadow"


def _watching(key: str) -> Any:
    def when(spec: kopf.Spec, **_: Any) -> bool:
        settings = spec.get(key)
        return isinstance(settings, dict) and settings.get("enabled", True) is not False

    return when


def _interval(spec: Any, key: str) -> float:
    try:
        return max(1.0, parse_duration(str((spec.get(key) or {}).get("scrapeInterval") or "30s")))
    except ValueError:
        return 30.0


async def _watch(key: str, namespace: str | None, name: str, spec: kopf.Spec, stopped: kopf.DaemonStopped) -> None:
    if not namespace:
        return
    interval = _interval(spec, key)
    while not stopped:
        wait = interval * random.uniform(1 - JITTER, 1 + JITTER)
        due = time.monotonic() + wait
        await asyncio.sleep(wait)
        if stopped:
            break
        try:
            # Readings reach tenants' servers (up to 5 s each): reconciles must not wait behind them.
            interval, follow_up = await readings.run(_read_when_due, due, namespace, name, key)
        except Exception:  # a reading must never kill the watch: log, wait an interval, read again
            log.exception("%s reading of %s/%s failed", key, namespace, name)
            continue
        if follow_up:  # traffic moves now, not on the next watch event
            await asyncio.to_thread(inferenceservice.reconcile, namespace, name)


@kopf.daemon(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural, when=_watching(DRIFT), cancellation_timeout=5.0)
async def drift_daemon(
    name: str, namespace: str | None, spec: kopf.Spec, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    await _watch(DRIFT, namespace, name, spec, stopped)


@kopf.daemon(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural, when=_watching(PERFORMANCE), cancellation_timeout=5.0)
async def performance_daemon(
    name: str, namespace: str | None, spec: kopf.Spec, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    await _watch(PERFORMANCE, namespace, name, spec, stopped)


def _shadowing(spec: kopf.Spec, **_: Any) -> bool:
    return isinstance(spec.get("shadow"), dict)


@kopf.daemon(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural, when=_shadowing, cancellation_timeout=5.0)
async def shadow_daemon(
    name: str, namespace: str | None, spec: kopf.Spec, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """status.shadow every shadow.scrapeInterval: the mirror's counters and both versions' live metrics."""
    if not namespace:
        return
    while not stopped:
        await asyncio.sleep(_interval(spec, SHADOW) * random.uniform(1 - JITTER, 1 + JITTER))
        if stopped:
            break
        try:
            await readings.run(read_shadow, namespace, name)
        except Exception:  # a reading must never kill the watch
            log.exception("shadow reading of %s/%s failed", namespace, name)


@reconciler("InferenceServiceShadow")
def read_shadow(namespace: str, name: str) -> None:
    """status.shadow from the pods; and, for a candidate Evaluating online here, the verdict of its online gate."""
    with lock(("inferenceservice", namespace, name)):
        if (found := _service(namespace, name)) is None:
            return
        isvc, spec = found
        status = isvc.get("status") or {}
        shadowing = any(
            cond.get("type") == c.ConditionType.SHADOWING and cond.get("status") == "True"
            for cond in status.get("conditions") or []
        )
        versions = inferenceservice.versions_of(namespace, spec.model)
        challenger, _ = shadow.challenger(spec, versions, status.get("activeVersion"), name)
        if not shadowing or challenger is None:
            return  # the reconcile says why in the Shadowing condition
        track = f"{c.LABEL_INFERENCE_SERVICE}={name},{c.LABEL_TRACK}="
        primary, errors = _pages(namespace, track + c.TRACK_STABLE, spec.port)
        pages, more = _pages(namespace, f"{track}{c.TRACK_SHADOW},{c.LABEL_VERSION}={challenger.version}", spec.port)
        new = shadow.status(challenger.version, primary, pages, [*errors, *more], registry.now())
        old = status.get("shadow") or {}
        fresh = not monitor.worth_writing(_undated(old), _undated(new)) and _fresh(old, new)
        if old.get("version") != challenger.version or not fresh:
            # Only onto the status read: the reconcile that ends a shadow clears status.shadow, and a reading that
            # waited for the lock behind it must not bring it back from a view that has not seen that write yet.
            rv = str(isvc["metadata"].get("resourceVersion") or "")
            with contextlib.suppress(objects.Conflict):
                objects.patch_status(c.INFERENCE_SERVICE, namespace, name, {"shadow": new}, resource_version=rv)
    evaluating = challenger.stage == Stage.EVALUATING and challenger.evaluated_by == name
    if evaluating and _judge(isvc, spec.model, challenger.name, new):
        inferenceservice.reconcile(namespace, name)  # roll forward to the winner, or stop shadowing the loser


def _judge(isvc: dict[str, Any], model: str, version_name: str, shadow_status: dict[str, Any]) -> bool:
    """The online gate of a candidate Evaluating in this service's shadow: promoted when it wins, rejected with the
    numbers when it loses, left Evaluating while either side has too few labelled rows. Whether it was decided."""
    namespace = isvc["metadata"]["namespace"]
    with lock(("model", namespace, model)):
        mv = objects.get(c.MODEL_VERSION, namespace, version_name)
        st = (mv or {}).get("status") or {}
        if mv is None or st.get("stage") != Stage.EVALUATING or not st.get("evaluation"):
            return False  # a person decided meanwhile, or it went away
        verdict = online.judge(st["evaluation"], shadow_status)
        if verdict.outcome is online.Outcome.WAIT:
            return False
        service = isvc["metadata"]["name"]
        if verdict.outcome is online.Outcome.PROMOTE:
            msg = f"online evaluation passed in shadow of {service}: {verdict.message}"
            registry.promote(mv, f"online:{service}", msg, c.Reason.ONLINE_EVALUATION_PASSED)
            events.normal(isvc, c.Reason.ONLINE_EVALUATION_PASSED, f"{version_name} promoted: {verdict.message}")
        else:
            msg = f"online evaluation failed in shadow of {service}: {verdict.message}"
            registry.reject(mv, c.Reason.ONLINE_EVALUATION_FAILED, msg)
            events.warning(isvc, c.Reason.ONLINE_EVALUATION_FAILED, f"{version_name} rejected: {verdict.message}")
        return True


def _service(namespace: str, name: str) -> tuple[dict[str, Any], InferenceServiceSpec] | None:
    """The service as the operator's view holds it, with its spec; None when it is gone, going, or its spec is
    invalid (the serving reconcile reports that)."""
    isvc = watches.prime(namespace).services.get(namespace, name)
    if isvc is None or isvc["metadata"].get("deletionTimestamp"):
        return None
    try:
        return isvc, InferenceServiceSpec.model_validate(isvc["spec"])
    except ValidationError:
        return None


def _undated(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k != "lastReadTime"}


def _fresh(old: dict[str, Any], new: dict[str, Any]) -> bool:
    age = monitor.seconds_between(old.get("lastReadTime"), new.get("lastReadTime"))
    return age is not None and age < monitor.REFRESH_SECONDS


def _pages(namespace: str, selector: str, port: int) -> tuple[list[str], list[str]]:
    """The /metrics pages of the ready pods `selector` selects, and one message per pod that could not be read."""
    pages: list[str] = []
    errors: list[str] = []
    for ip in pods_provider.ready_pods(objects.list_pods(namespace, selector)).values():
        try:
            pages.append(pods_provider.fetch(ip, port))
        except pods_provider.ScrapeError as e:
            errors.append(str(e))
    return pages, errors


@kopf.on.delete(c.GROUP, c.VERSION, c.INFERENCE_SERVICE.plural, optional=True)
def on_deleted(name: str, namespace: str | None, **_: Any) -> None:
    if namespace:
        forget(namespace, name)


def _read_when_due(due: float, namespace: str, name: str, key: str = DRIFT) -> tuple[float, bool]:
    DRIFT_READING_DELAY.observe(max(0.0, time.monotonic() - due))
    return read_and_act(namespace, name, key)


def _policy(spec: InferenceServiceSpec, key: str) -> MonitorPolicy | None:
    return spec.drift if key == DRIFT else spec.performance


@reconciler("InferenceServiceMonitor")
def read_and_act(namespace: str, name: str, key: str = DRIFT) -> tuple[float, bool]:
    """One reading of the monitor at spec[`key`] and its consequences: (seconds to the next reading, whether serving
    must reconcile now)."""
    with lock(("inferenceservice", namespace, name)):
        view = watches.prime(namespace)
        isvc = view.services.get(namespace, name)
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            return 30.0, False
        interval = _interval(isvc.get("spec") or {}, key)
        try:
            spec = InferenceServiceSpec.model_validate(isvc["spec"])
        except ValidationError:
            return interval, False  # the serving reconcile reports the spec as invalid
        settings = _policy(spec, key)
        status = isvc.get("status") or {}
        active = status.get("activeVersion")
        if settings is None or not getattr(settings, "enabled", True) or active is None:
            return interval, False
        words = monitor.DRIFT if key == DRIFT else monitor.PERFORMANCE
        reading = _read(isvc, spec, settings, int(active))
        # The retrains are read at every reading of a Retrain service: one the status does not name yet (a crash
        # between creating it and writing status) is recorded from the cluster.
        jobs = watches.retrains_of(namespace, name) if settings.action is MonitorAction.RETRAIN else []
        retrains = monitor.retrains_from(jobs, c.LABEL_RETRAIN, words.trigger)
        last = status.get(key) or {}
        now = registry.now()
        versions: list[Version] = []
        if isinstance(settings, DriftSpec):
            # The model's versions matter to drift only for a rollback, which only a breach can set off.
            if drift.may_roll_back(settings, reading):
                versions = inferenceservice.versions_of(namespace, spec.model)
            served = monitor.served_from(status, [v.version for v in versions if v.good])
            plan = drift.decide(settings, spec.retrain, reading, last, served, retrains, now)
        else:
            assert isinstance(settings, PerformanceSpec)
            versions = inferenceservice.versions_of(namespace, spec.model)
            served = monitor.served_from(status, [v.version for v in versions if v.good])
            mine = next((v for v in versions if v.version == active), None)
            validation = dict(mine.metrics).get(settings.metric.value) if mine is not None else None
            plan = performance.decide(settings, spec.retrain, reading, validation, last, served, retrains, now)

        if plan.action is not None:
            failpoints.hit("drift.action-decided")
        if plan.action is MonitorAction.RETRAIN:
            plan.status["lastRetrainJob"] = _start_retrain(isvc, spec, jobs, plan.history[-1], words.trigger)
            failpoints.hit("drift.retrain-created")
        elif plan.action is MonitorAction.ROLLBACK and plan.rollback_to is not None:
            leaving = next(v for v in versions if v.version == active)
            inferenceservice.mark_rolled_back(
                namespace, spec.model, RollBack(leaving, plan.rollback_to, words.detected, plan.rollback_message)
            )
        _write(isvc, key, plan, settings.consecutive_error_limit)
        for note in plan.events:
            (events.warning if note.warning else events.normal)(isvc, note.reason, note.message)
        _export(namespace, name, settings, plan.status)
        return interval, monitor.serving_follows(settings, words, last, plan)


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
        if (found := _service(namespace, name)) is None:
            return
        isvc, spec = found
        status = isvc.get("status") or {}
        jobs = watches.retrains_of(namespace, name)
        asked = (isvc["metadata"].get("annotations") or {}).get(c.ANNOTATION_RETRAIN)
        ask = drift.retrain_request(
            asked,
            status.get("lastRetrainRequest"),
            spec.retrain,
            monitor.retrains_from(jobs, c.LABEL_RETRAIN, c.TRIGGER_REQUEST),
        )
        if ask is None:
            return
        if not ask.start:
            patch = drift.retrain_request_status(status, ask, None, registry.now())
            objects.patch_status(c.INFERENCE_SERVICE, namespace, name, patch)
            events.warning(isvc, c.Reason.RETRAIN_REQUESTED, f"{ask.message}: not started")
            return
        body, data = _retrain_body(isvc, spec, jobs, status.get("activeVersion"), ask.message, c.TRIGGER_REQUEST)
        with contextlib.suppress(objects.AlreadyExists):  # made before a status write that was lost
            objects.create(c.TRAINING_JOB, namespace, body)
        job = str(body["metadata"]["name"])
        objects.patch_status(
            c.INFERENCE_SERVICE, namespace, name, drift.retrain_request_status(status, ask, job, registry.now())
        )
        events.normal(isvc, c.Reason.RETRAIN_REQUESTED, f"started TrainingJob {job} ({ask.message}){data}")


def _start_retrain(
    isvc: dict[str, Any], spec: InferenceServiceSpec, jobs: list[dict[str, Any]], entry: dict[str, Any], trigger: str
) -> str:
    body, data = _retrain_body(isvc, spec, jobs, entry.get("fromVersion"), entry["message"], trigger)
    with contextlib.suppress(objects.AlreadyExists):  # made by a reading whose status write was lost
        objects.create(c.TRAINING_JOB, isvc["metadata"]["namespace"], body)
    events.normal(isvc, c.Reason.RETRAIN_STARTED, f"started TrainingJob {body['metadata']['name']}{data}")
    return str(body["metadata"]["name"])


def _retrain_body(
    isvc: dict[str, Any],
    spec: InferenceServiceSpec,
    jobs: list[dict[str, Any]],
    served: int | None,
    reason: str,
    trigger: str,
) -> tuple[dict[str, Any], str]:
    """The retrain TrainingJob, and what it learns from for its Event. Under data LiveLabels, the serving pods'
    labelled rows go first into a ConfigMap the TrainingJob reads."""
    seq = render_retrain.sequence(jobs)
    if spec.retrain is None or spec.retrain.data is not RetrainData.LIVE_LABELS:
        return render_retrain.trainingjob(isvc, seq, served, reason, trigger), ""
    refused = authors.refusal(isvc, [authorship.LIVE_DATA]) if config.current().check_authors else None
    if refused is not None:
        return render_retrain.trainingjob(isvc, seq, served, reason, trigger), f", on the template's dataset: {refused}"
    data, unread = _labelled_rows(isvc, spec, served)
    if data is None:
        why = f": {unread}" if unread else ""
        body = render_retrain.trainingjob(isvc, seq, served, reason, trigger)
        return body, f", on the template's dataset: no labelled live rows to learn from{why}"
    with contextlib.suppress(objects.AlreadyExists):  # made by a retrain whose TrainingJob was not: same rows, near
        objects.create_config_map(render_retrain.live_data(isvc, seq, data.csv))
    return render_retrain.trainingjob(isvc, seq, served, reason, trigger, live=True), f", on {data.note}"


def _labelled_rows(
    isvc: dict[str, Any], spec: InferenceServiceSpec, version: int | None
) -> tuple[live_data.LiveData | None, str]:
    """The served version's pods' labelled windows as one dataset, and why some pods could not be read."""
    meta = isvc["metadata"]
    selector = f"{c.LABEL_INFERENCE_SERVICE}={meta['name']},{c.LABEL_TRACK}={c.TRACK_STABLE}"
    if version is not None:
        selector += f",{c.LABEL_VERSION}={version}"
    ready = pods_provider.ready_pods(objects.list_pods(meta["namespace"], selector))
    pages: list[str] = []
    errors: list[str] = []
    for ip in ready.values():
        try:
            pages.append(pods_provider.labelled_rows(ip, spec.port, spec.model))
        except pods_provider.ScrapeError as e:
            errors.append(str(e))
    return live_data.merge(pages), "; ".join(errors)[:512]


def _read(isvc: dict[str, Any], spec: InferenceServiceSpec, settings: MonitorPolicy, active: int) -> monitor.Reading:
    meta = isvc["metadata"]
    ns, name = meta["namespace"], meta["name"]
    source = settings.source.prometheus
    if source is not None:
        values = {"namespace": ns, "name": name, "model": spec.model, "version": str(active)}
        try:
            promql = prometheus.render_query(source.query, values)
            return monitor.Reading(
                score=prometheus.query(str(source.url), promql, allowed=config.current().allowed_prometheus_urls)
            )
        except prometheus.QueryError as e:
            return monitor.Reading(error=str(e))
    selector = f"{c.LABEL_INFERENCE_SERVICE}={name},{c.LABEL_TRACK}={c.TRACK_STABLE},{c.LABEL_VERSION}={active}"
    ready = pods_provider.ready_pods(objects.list_pods(ns, selector))
    if not ready:
        return monitor.Reading(error=f"no ready pod of version {active} to read from")
    if isinstance(settings, DriftSpec):
        gauges, selected = pod_readings.DRIFT, settings.metric.value
    else:
        gauges, selected = pod_readings.PERFORMANCE, ""
    read: list[pod_readings.PodDrift] = []
    errors: list[str] = []
    for ip in ready.values():
        try:
            read.append(pod_readings.parse(pods_provider.fetch(ip, spec.port), selected, gauges))
        except (pods_provider.ScrapeError, ValueError) as e:
            errors.append(f"{ip}: {e}")
    if not read:
        return monitor.Reading(error="; ".join(errors)[:1024])
    return pod_readings.combine(read)


def _write(isvc: dict[str, Any], key: str, plan: monitor.MonitorPlan, error_limit: int) -> None:
    meta, old = isvc["metadata"], isvc.get("status") or {}
    merged = conds.merge(old.get("conditions"), plan.conditions, meta.get("generation"), registry.now())
    patch = monitor.status_patch(key, old, plan, merged, error_limit)
    if patch is not None:
        objects.patch_status(c.INFERENCE_SERVICE, meta["namespace"], meta["name"], patch)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _export(namespace: str, name: str, settings: MonitorPolicy, status: dict[str, Any]) -> None:
    breaches = float(status.get("consecutiveBreaches") or 0)
    if isinstance(settings, DriftSpec):
        labels = (settings.metric.value,)
        set_gauge(DRIFT_SCORE, namespace, name, labels, _number(status.get("score")))
        set_gauge(DRIFT_THRESHOLD, namespace, name, labels, settings.threshold)
        set_gauge(DRIFT_SAMPLES, namespace, name, labels, _number(status.get("samples")))
        set_gauge(DRIFT_BREACHES, namespace, name, labels, breaches)
        return
    assert isinstance(settings, PerformanceSpec)
    labels = (settings.metric.value,)
    set_gauge(LIVE_PERFORMANCE, namespace, name, labels, _number(status.get("value")))
    set_gauge(LIVE_PERFORMANCE_THRESHOLD, namespace, name, labels, _number(status.get("threshold")))
    set_gauge(LIVE_PERFORMANCE_BREACHES, namespace, name, labels, breaches)
