"""TrainingJob -> one batch Job -> a ModelVersion, then the promotion policy. Level-based and restart-safe:
the Job's name is deterministic and the ModelVersion carries the run's uid, so nothing is ever made twice."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from driftline import config
from driftline.api import constants as c
from driftline.api.modelversion import Evaluation, ModelVersionStatus, Stage
from driftline.api.trainingjob import TrainingJobSpec, TrainingJobStatus
from driftline.config import OperatorConfig
from driftline.decide import authorship, promotion, training
from driftline.decide import conditions as conds
from driftline.handlers import authors, failpoints, hints, podstart, recheck, registry
from driftline.handlers import status as status_writer
from driftline.handlers.locks import lock
from driftline.k8s import events, objects
from driftline.render import training as render
from driftline.render.common import controlled_by
from driftline.telemetry import reconciler

log = logging.getLogger(__name__)
_MAX_VERSION_ATTEMPTS = 20


_write_status = functools.partial(status_writer.write, c.TRAINING_JOB, clear=("message",))


@kopf.on.resume(c.GROUP, c.VERSION, c.TRAINING_JOB.plural)
@kopf.on.create(c.GROUP, c.VERSION, c.TRAINING_JOB.plural)
@kopf.on.update(c.GROUP, c.VERSION, c.TRAINING_JOB.plural)
def on_trainingjob(name: str, namespace: str | None, body: kopf.Body, **_: Any) -> None:
    if namespace:  # kopf hands over the object as its watch has it: no need to read it again
        reconcile(namespace, name, tj=dict(body))


@kopf.on.event(
    "batch", "v1", "jobs", labels={c.LABEL_TRAINING_JOB: kopf.PRESENT, c.LABEL_COMPONENT: c.COMPONENT_TRAINER}
)
def on_job(labels: Mapping[str, str], namespace: str | None, type: str | None, body: kopf.Body, **_: Any) -> None:
    if type is None or not namespace:  # kopf's initial listing: the TrainingJob's own resume handler covers it
        return
    job, name = dict(body), labels[c.LABEL_TRAINING_JOB]
    # Judged once a reconcile of the TrainingJob in progress is done: the Job it is creating comes back as ADDED.
    with lock(("trainingjob", namespace, name)):
        if not hints.is_news(_seen_jobs, type, job["metadata"].get("uid"), lambda: training.job_facts(job)):
            return
    # The event carries the Job as it is now: no need to read it again (a deleted one is read, and found gone).
    reconcile(namespace, name, job=None if type == "DELETED" else job)


_seen_jobs: dict[str, str] = {}
"""Job uid -> training.job_facts of the Job the last reconcile of its TrainingJob acted on (handlers.hints)."""


@reconciler("TrainingJob")
def reconcile(namespace: str, name: str, job: dict[str, Any] | None = None, tj: dict[str, Any] | None = None) -> None:
    """`job`: the TrainingJob's Job as a watch event just delivered it, if that is what triggered this; `tj`: the
    TrainingJob as kopf's watch delivered it (a moment old at most: every step is idempotent, so a status this
    misses costs at most a repeated write, never a second Job or version)."""
    with lock(("trainingjob", namespace, name)):
        if tj is None:
            tj = objects.get(c.TRAINING_JOB, namespace, name)
        if tj is None or tj["metadata"].get("deletionTimestamp"):
            return
        _reconcile(tj, config.current(), job)


def _reconcile(tj: dict[str, Any], cfg: OperatorConfig, known_job: dict[str, Any] | None = None) -> None:
    meta = tj["metadata"]
    ns = meta["namespace"]
    try:
        spec = TrainingJobSpec.model_validate(tj["spec"])
        refused = training.refusal(spec, tj["spec"], cfg.allowed_estimator_prefixes, cfg.custom_pods)
    except ValidationError as e:
        problem = "; ".join(f"spec.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        spec, refused = None, (c.Reason.INVALID_SPEC, problem)
    if refused is not None or spec is None:
        _refuse(tj, *(refused or (c.Reason.INVALID_SPEC, "")))
        return  # no exception: a hopeless spec is not retried; fixing it triggers on.update

    job_name = render.job_name(tj)
    recorded = tj.get("status") or {}
    # An event's Job counts only if it is this run's (a TrainingJob re-created under the same name has a new Job).
    job = known_job if known_job is not None and known_job["metadata"]["name"] == job_name else None
    if job is None and recorded.get("jobName"):
        job = objects.get_job(ns, job_name)
    elif job is None:  # no Job recorded yet: create it, finding out on a conflict whether one exists already
        job = _start_job(tj, spec, cfg, job_name)
        if job is None:
            return
    if job is not None and _foreign(tj, job, job_name):
        return
    mv = _find_version(ns, meta["uid"]) if training.needs_versions(job) else None
    failure = (
        training.trainer_words(_job_pods(ns, job_name), failed=True) if training.needs_failure_message(job) else None
    )
    mv_name = mv["metadata"]["name"] if mv else None
    obs = training.observe(job, training.failure_text(failure), mv_name, recorded)

    if obs.step is training.Step.CREATE_JOB:  # the recorded Job is gone before it finished: run it again
        job = _start_job(tj, spec, cfg, job_name)
        if job is None or _foreign(tj, job, job_name):
            return
        obs = training.observe(job, None, mv_name, recorded)
    elif (
        obs.step is training.Step.WAIT
        and job is not None
        and bool((job.get("spec") or {}).get("suspend")) != spec.suspend
    ):
        objects.patch_job(ns, job_name, {"spec": {"suspend": spec.suspend}})
    elif obs.step is training.Step.REGISTER:
        failpoints.hit("trainingjob.job-finished")
        expected = render.output_location(tj, spec).uri
        pods = _job_pods(ns, job_name)
        summary = training.parse_summary(training.trainer_words(pods, failed=False), expected)
        if not summary.ok:
            msg = f"{summary.reason}: {summary.message}"
            outside = summary.reason == c.Reason.ARTIFACT_OUTSIDE_RUN
            reason = c.Reason.ARTIFACT_OUTSIDE_RUN if outside else c.Reason.SUMMARY_UNREADABLE
            _write_status(
                tj,
                "Failed",
                conds.lifecycle(False, reason, msg, reconciling=False, stalled=True),
                TrainingJobStatus(message=msg),
                warn=(reason, msg),
            )
            return
        mv = _register(tj, spec, summary.raw, cfg, training.trainer_image(pods))
        obs = training.observe(job, None, mv["metadata"]["name"])
    if mv is not None and obs.step is training.Step.DONE:
        _apply_policy(tj, spec, mv)
    not_starting = podstart.problem(ns, f"job-name={job_name}") if training.needs_pods(job, datetime.now(UTC)) else None
    obs = training.with_pod_problem(obs, not_starting)
    if (wait := training.recheck_after(job)) is not None:
        recheck.after(("trainingjob", ns, meta["name"]), wait, functools.partial(reconcile, ns, meta["name"]))
    if not_starting is not None:
        warn: tuple[str, str] | None = (not_starting.reason, not_starting.text())
    else:
        warn = (c.Reason.JOB_FAILED, obs.message) if obs.phase == "Failed" else None
    version = int(mv["spec"]["version"]) if mv else None
    _write_status(
        tj,
        obs.phase,
        obs.conditions,
        TrainingJobStatus(
            message=obs.message or None,
            job_name=job_name,
            start_time=obs.start_time,
            completion_time=obs.completion_time,
            model_version=mv["metadata"]["name"] if mv else None,
            version=version,
        ),
        warn=warn,
    )
    ttl = training.ttl_patch(job, obs.step, spec.ttl_seconds_after_finished)
    if ttl is not None:
        objects.patch_job(ns, job_name, ttl)
    elif job is not None:
        _seen_jobs[job["metadata"]["uid"]] = training.job_facts(job)


def _refuse(tj: dict[str, Any], reason: str, problem: str) -> None:
    _write_status(
        tj,
        "Failed",
        conds.lifecycle(False, reason, problem, reconciling=False, stalled=True),
        TrainingJobStatus(message=problem),
        warn=(reason, problem),
    )


def _start_job(tj: dict[str, Any], spec: TrainingJobSpec, cfg: OperatorConfig, job_name: str) -> dict[str, Any] | None:
    """The run's Job, created now or found existing; None when the recorded author may not start it (reported)."""
    if cfg.check_authors and (why := authors.refusal(tj, authorship.trainingjob_needs(tj["spec"]))) is not None:
        _refuse(tj, c.Reason.AUTHOR_NOT_ALLOWED, why)
        return None
    return _create_job(tj, spec, cfg, job_name)


def _foreign(tj: dict[str, Any], job: dict[str, Any], job_name: str) -> bool:
    """Whether the Job with this run's name is someone else's (reported: never adopted)."""
    if controlled_by(job, tj["metadata"]["uid"]):
        return False
    _report_foreign_job(tj, job_name)
    return True


def _create_job(tj: dict[str, Any], spec: TrainingJobSpec, cfg: OperatorConfig, job_name: str) -> dict[str, Any]:
    """The Job, created now or found existing (a crash after creating it, before the status said so)."""
    body = render.training_job(
        tj,
        spec,
        runtime_image=cfg.runtime_image,
        allowed_prefixes=cfg.allowed_estimator_prefixes,
        pod_defaults=cfg.pod_defaults,
    )
    try:
        job = objects.create_job(body)
    except objects.AlreadyExists:
        found = objects.get_job(tj["metadata"]["namespace"], job_name)
        if found is None:
            raise kopf.TemporaryError(f"Job {job_name} is being deleted; creating it again shortly", delay=2) from None
        return found
    failpoints.hit("trainingjob.job-created")
    events.normal(tj, c.Reason.JOB_CREATED, f"created Job {job_name}")
    return job


def _report_foreign_job(tj: dict[str, Any], job_name: str) -> None:
    """A Job with this run's name that is someone else's is never adopted, suspended, patched or deleted. Nothing
    the operator watches says when it goes, so look again now and then."""
    meta = tj["metadata"]
    msg = f"a Job named {job_name} exists and is not this TrainingJob's; delete or rename it"
    _write_status(
        tj,
        "Failed",
        conds.lifecycle(False, c.Reason.CHILD_CONFLICT, msg, reconciling=False, stalled=True),
        TrainingJobStatus(message=msg),
        warn=(c.Reason.CHILD_CONFLICT, msg),
    )
    key, again = (
        ("trainingjob", meta["namespace"], meta["name"]),
        functools.partial(reconcile, meta["namespace"], meta["name"]),
    )
    recheck.after(key, training.CONFLICT_RECHECK_SECONDS, again)


def _find_version(namespace: str, uid: str) -> dict[str, Any] | None:
    found = objects.list_(c.MODEL_VERSION, namespace, {render.LABEL_TRAINING_JOB_UID: uid})
    return found[0] if found else None


def _job_pods(namespace: str, job_name: str) -> list[dict[str, Any]]:
    """The Job's pods: the trainer's last words (decide.training.trainer_words) and the image it ran are in them."""
    return objects.list_pods(namespace, f"job-name={job_name}")


def _register(
    tj: dict[str, Any],
    spec: TrainingJobSpec,
    summary: dict[str, Any],
    cfg: OperatorConfig,
    ran: training.TrainerImage | None,
) -> dict[str, Any]:
    """Create the ModelVersion with the next free integer version. Two runs of one model finishing together both try
    the same name; the API server lets exactly one create it, and the other moves on to the next number."""
    ns = tj["metadata"]["namespace"]
    image = spec.image or cfg.runtime_image
    image_id, serving_image = (ran.id if ran else None), training.pinned(image, ran)
    with lock(("model", ns, spec.model)):
        for _ in range(_MAX_VERSION_ATTEMPTS):
            existing = [int(m["spec"]["version"]) for m in registry.versions_of(ns, spec.model)]
            version = promotion.next_version(existing)
            body = render.model_version(tj, spec, summary, version, image, image_id, serving_image)
            try:
                mv = objects.create(c.MODEL_VERSION, ns, body)
            except objects.AlreadyExists:
                continue
            failpoints.hit("trainingjob.version-created")
            status = registry.stage_status(
                mv,
                Stage.CANDIDATE,
                c.Reason.REGISTERED,
                f"trained by TrainingJob {tj['metadata']['name']}",
                ModelVersionStatus(headline_metric=_headline(mv["spec"].get("metrics") or {})),
            )
            objects.patch_status(c.MODEL_VERSION, ns, mv["metadata"]["name"], status)
            mv["status"] = status
            events.normal(tj, c.Reason.MODEL_VERSION_CREATED, f"registered ModelVersion {mv['metadata']['name']}")
            return mv
    raise kopf.TemporaryError(
        f"no free version number for model {spec.model} after {_MAX_VERSION_ATTEMPTS} tries", delay=5
    )


def _headline(metrics: dict[str, float]) -> str | None:
    for key in ("accuracy", "r2", "f1", "roc_auc", "rmse"):
        if key in metrics:
            return f"{key}={metrics[key]:.4g}"
    return None


def _apply_policy(tj: dict[str, Any], spec: TrainingJobSpec, mv: dict[str, Any]) -> None:
    """Auto-promotion: gates and must-beat against the current Production version. Runs once per version (only a
    Candidate is judged), and again after a crash between registering and judging."""
    if not spec.promotion.auto or (mv.get("status") or {}).get("stage") not in (None, Stage.CANDIDATE):
        return
    ns = mv["metadata"]["namespace"]
    with lock(("model", ns, spec.model)):
        fresh = objects.get(c.MODEL_VERSION, ns, mv["metadata"]["name"])
        if fresh is None or (fresh.get("status") or {}).get("stage") not in (None, Stage.CANDIDATE):
            return
        prod = registry.production_of(registry.versions_of(ns, spec.model))
        prod_metrics = None if prod is None else {k: float(v) for k, v in (prod["spec"].get("metrics") or {}).items()}
        verdict = promotion.assess(
            {k: float(v) for k, v in (fresh["spec"].get("metrics") or {}).items()}, spec.promotion, prod_metrics
        )
        by = f"policy:{tj['metadata']['name']}"
        online = spec.promotion.online
        if verdict.passed and online is not None:
            gate = Evaluation(
                service=online.service, metric=online.metric.value, min_samples=online.min_samples, margin=online.margin
            )
            msg = f"promotion gates passed: {verdict.summary}; {promotion.online_wait(gate)}"
            registry.evaluate(fresh, gate, msg)
            events.normal(tj, c.Reason.EVALUATING, f"{fresh['metadata']['name']} is Evaluating online")
        elif verdict.passed:
            registry.promote(fresh, by, f"promotion gates passed: {verdict.summary}")
            events.normal(tj, c.Reason.PROMOTED, f"{fresh['metadata']['name']} promoted to Production")
        else:
            registry.reject(fresh, c.Reason.GATES_FAILED, f"promotion gates failed: {verdict.summary}")
            events.warning(tj, c.Reason.GATES_FAILED, f"{fresh['metadata']['name']} rejected: {verdict.summary}")
