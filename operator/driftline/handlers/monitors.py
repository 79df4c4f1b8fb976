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
from dataclasses import dataclass
from typing import Any

import kopf
from prometheus_client import Gauge
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
from driftline.handlers import (
    authors,
    failpoints,
    inferenceservice,
    prometheus_batches,
    readings,
    registry,
    watches,
)
from driftline.handlers.locks import lock
from driftline.k8s import events, objects
from driftline.metrics import pods as pods_provider
from driftline.metrics import prometheus, query_batch
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
    counted,
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
    asked = _Asked()
    while not stopped:
        wait = interval * random.uniform(1 - JITTER, 1 + JITTER)
        due = time.monotonic() + wait
        await asyncio.sleep(wait)
        if stopped:
            break
        DRIFT_READING_DELAY.observe(max(0.0, time.monotonic() - due))
        try:
            interval, follow_up = await _reading(namespace, name, key, asked)
        except Exception:  # a reading must never kill the watch: log, wait an interval, read again
            log.exception("%s reading of %s/%s failed", key, namespace, name)
            continue
        if follow_up:  # traffic moves now, not on the next watch event
            await asyncio.to_thread(inferenceservice.reconcile, namespace, name)


Found = tuple[dict[str, Any], InferenceServiceSpec]
"""A service as the view holds it, and its validated spec."""


@dataclass
class _Asked:
    """What a monitor's daemon keeps between its readings: its Prometheus query as it last asked it and the kind of
    its answer (a batch needs it), and the service as last decoded and validated, with the uid and resourceVersion
    it had (decoding and validating it at every reading cost more than the reading's decision)."""

    promql: str = ""
    kind: query_batch.Kind | None = None
    seen: tuple[tuple[str, int], Found] | None = None
    exported: tuple[tuple[str, ...], tuple[float, ...]] | None = None

    def service(self, namespace: str, name: str) -> Found | None:
        """The service and its spec as the view holds them now; None when it is gone, going or invalid."""
        held = watches.VIEW.services.version(namespace, name)
        if held is not None and self.seen is not None and self.seen[0] == held:
            return self.seen[1]
        found = _service(namespace, name)
        self.seen = (held, found) if held is not None and found is not None else None
        return found


async def _reading(namespace: str, name: str, key: str, asked: _Asked) -> tuple[float, bool]:
    """One reading: (seconds to the next, whether serving must reconcile now). A Prometheus reading is asked on the
    event loop, in a batch with the other readings due to the same server (handlers.prometheus_batches), and settled
    there when it changes nothing; what reads pods, writes or acts runs on a reading thread, where a tenant's slow
    server holds no reconcile."""
    ask = _prometheus_question(namespace, name, key, asked)
    if ask is None:
        return await readings.run(read_and_act, namespace, name, key)
    url, promql, active = ask
    try:
        value, kind = await prometheus_batches.BATCHES.value(
            url, namespace, promql, asked.kind if asked.promql == promql else None
        )
        asked.promql, asked.kind = promql, kind
        reading = monitor.Reading(score=value)
    except prometheus.QueryError as e:
        asked.kind = None  # asked alone until it answers again
        reading = monitor.Reading(error=str(e))
    settled = settle_quietly(namespace, name, key, (active, reading), asked)
    if settled is not None:
        return settled
    return await readings.run(read_and_act, namespace, name, key, (active, reading))


def _prometheus_question(namespace: str, name: str, key: str, asked: _Asked) -> tuple[str, str, int] | None:
    """The Prometheus server, query and served version of the monitor's next reading, from the view; None when it
    does not read a Prometheus (or the view must first be filled from the API server, which the event loop must not
    wait for)."""
    if not watches.VIEW.primed(namespace) or (found := asked.service(namespace, name)) is None:
        return None
    isvc, spec = found
    settings = _policy(spec, key)
    active = (isvc.get("status") or {}).get("activeVersion")
    source = settings.source.prometheus if settings is not None and settings.enabled else None
    if source is None or active is None:
        return None
    values = {"namespace": namespace, "name": name, "model": spec.model, "version": str(active)}
    return str(source.url), prometheus.render_query(source.query, values), int(active)


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


def _policy(spec: InferenceServiceSpec, key: str) -> MonitorPolicy | None:
    return spec.drift if key == DRIFT else spec.performance


Given = tuple[int, monitor.Reading]
"""A reading already taken, with the version it was taken of."""


@dataclass
class _Planned:
    """What a reading comes to, before anything is written."""

    isvc: dict[str, Any]
    spec: InferenceServiceSpec
    settings: MonitorPolicy
    words: monitor.Words
    plan: monitor.MonitorPlan
    patch: dict[str, Any] | None
    last: dict[str, Any]
    jobs: list[dict[str, Any]]
    versions: list[Version]
    interval: float
    """Seconds to the next reading."""

    @property
    def quiet(self) -> bool:
        """Nothing to act on, announce or write: only the gauges change."""
        return self.plan.action is None and not self.plan.events and self.patch is None


def _plan(namespace: str, name: str, key: str, given: Given | None, found: Found | None = None) -> _Planned | float:
    """The reading's plan, or the seconds to the next reading when there is nothing to read. Reads only the view
    (unless `found` holds what it holds of the service), and the metrics themselves unless `given` holds a reading
    of the version served now."""
    if found is None:
        isvc = watches.prime(namespace).services.get(namespace, name)
        if isvc is None or isvc["metadata"].get("deletionTimestamp"):
            return 30.0
        try:
            spec = InferenceServiceSpec.model_validate(isvc["spec"])
        except ValidationError:
            return _interval(isvc.get("spec") or {}, key)  # the serving reconcile reports the spec as invalid
    else:
        isvc, spec = found
    interval = _interval(isvc.get("spec") or {}, key)
    settings = _policy(spec, key)
    status = isvc.get("status") or {}
    active = status.get("activeVersion")
    if settings is None or not settings.enabled or active is None:
        return interval
    words = monitor.DRIFT if key == DRIFT else monitor.PERFORMANCE
    reading = given[1] if given is not None and given[0] == int(active) else _read(isvc, spec, settings, int(active))
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
    patch = _patch(isvc, key, plan, settings.consecutive_error_limit, now)
    return _Planned(isvc, spec, settings, words, plan, patch, last, jobs, versions, interval)


def settle_quietly(namespace: str, name: str, key: str, given: Given, asked: _Asked) -> tuple[float, bool] | None:
    """A reading settled on the event loop when it changes nothing but the gauges (the steady state of every
    watched service): (seconds to the next reading, whether serving must reconcile now). None when it must be
    carried out on a reading thread: it acts, announces or writes, the view must be filled first, or another
    thread works on the service now."""
    held = lock(("inferenceservice", namespace, name))
    if not watches.VIEW.primed(namespace) or not held.acquire(blocking=False):
        return None
    try:
        start = time.perf_counter()
        if (found := asked.service(namespace, name)) is None:
            return 30.0, False
        if (found[0].get("status") or {}).get("activeVersion") != given[0]:
            return None  # another version is served since: read again, off the loop
        planned = _plan(namespace, name, key, given, found)
        if not isinstance(planned, _Planned):
            return planned, False
        if not planned.quiet:
            return None
        _export(namespace, name, planned.settings, planned.plan.status, asked)
        counted("InferenceServiceMonitor", start)
        return planned.interval, monitor.serving_follows(planned.settings, planned.words, planned.last, planned.plan)
    finally:
        held.release()


@reconciler("InferenceServiceMonitor")
def read_and_act(namespace: str, name: str, key: str = DRIFT, given: Given | None = None) -> tuple[float, bool]:
    """One reading of the monitor at spec[`key`] (or the one `given`) and its consequences: (seconds to the next
    reading, whether serving must reconcile now)."""
    with lock(("inferenceservice", namespace, name)):
        planned = _plan(namespace, name, key, given)
        if not isinstance(planned, _Planned):
            return planned, False
        isvc, spec, plan, words = planned.isvc, planned.spec, planned.plan, planned.words
        if plan.action is not None:
            failpoints.hit("drift.action-decided")
        if plan.action is MonitorAction.RETRAIN:
            plan.status["lastRetrainJob"] = _start_retrain(isvc, spec, planned.jobs, plan.history[-1], words.trigger)
            failpoints.hit("drift.retrain-created")
            planned.patch = _patch(isvc, key, plan, planned.settings.consecutive_error_limit, registry.now())
        elif plan.action is MonitorAction.ROLLBACK and plan.rollback_to is not None:
            active = int(isvc["status"]["activeVersion"])
            leaving = next(v for v in planned.versions if v.version == active)
            inferenceservice.mark_rolled_back(
                namespace, spec.model, RollBack(leaving, plan.rollback_to, words.detected, plan.rollback_message)
            )
        if planned.patch is not None:
            meta = isvc["metadata"]
            objects.patch_status(c.INFERENCE_SERVICE, meta["namespace"], meta["name"], planned.patch)
        for note in plan.events:
            (events.warning if note.warning else events.normal)(isvc, note.reason, note.message)
        _export(namespace, name, planned.settings, plan.status)
        return planned.interval, monitor.serving_follows(planned.settings, words, planned.last, plan)


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


def _patch(
    isvc: dict[str, Any], key: str, plan: monitor.MonitorPlan, error_limit: int, now: str
) -> dict[str, Any] | None:
    """The status patch of a reading's plan, None when it changes nothing a reader needs."""
    meta, old = isvc["metadata"], isvc.get("status") or {}
    merged = conds.merge(old.get("conditions"), plan.conditions, meta.get("generation"), now)
    return monitor.status_patch(key, old, plan, merged, error_limit)


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _export(
    namespace: str, name: str, settings: MonitorPolicy, status: dict[str, Any], asked: _Asked | None = None
) -> None:
    """The monitor's gauges; not set again when a daemon (`asked`) exported the same values last."""
    breaches = float(status.get("consecutiveBreaches") or 0)
    gauges: tuple[Gauge, ...]
    values: tuple[float, ...]
    if isinstance(settings, DriftSpec):
        labels = (settings.metric.value,)
        gauges = (DRIFT_SCORE, DRIFT_THRESHOLD, DRIFT_SAMPLES, DRIFT_BREACHES)
        values = (_number(status.get("score")), settings.threshold, _number(status.get("samples")), breaches)
    else:
        assert isinstance(settings, PerformanceSpec)
        labels = (settings.metric.value,)
        gauges = (LIVE_PERFORMANCE, LIVE_PERFORMANCE_THRESHOLD, LIVE_PERFORMANCE_BREACHES)
        values = (_number(status.get("value")), _number(status.get("threshold")), breaches)
    if asked is not None and asked.exported == (labels, values):
        return
    for gauge, value in zip(gauges, values, strict=True):
        set_gauge(gauge, namespace, name, labels, value)
    if asked is not None:
        asked.exported = (labels, values)
