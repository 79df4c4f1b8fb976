"""Operator reconcile cost: N TrainingJobs (`suspend: true`, so each only makes a suspended Job) until every one has
its Job and a status, against a plain client making the same Job and status writes itself (but no Event, one write a
object fewer than the operator); the API requests the operator spends per object (the API server's audit log, by
user agent); then a quiet minute, counting the operator's writes.

- baseline (operator stopped): one client creates each TrainingJob, then its Job (the manifest the operator would
  render, from `driftline.render.training`), then patches the TrainingJob's status: 3 requests per object, the least
  any controller can do. Its namespaces are deleted before the operator starts again, so nothing is left to resume.
- operator: the same client creates the N TrainingJobs one after another; the operator, already running and idle
  (started, and warmed by one probe TrainingJob in a namespace of its own, as a long-running operator is), does the
  rest. The clock stops at the last of: the client's watches seeing the last Job and the last status (phase and
  jobName set), and the operator's last write in the namespace completing in the audit log (the decisions' Events,
  which kopf posts in the background, land after the status). Both clocks start at the first create, so both
  include the client's own N creates.
- requests per object: every request of the operator's process (user agents `kopf/...` and `driftline-operator/...`)
  in the benchmark's namespace, from the first create until 5 s after the last object was done, divided by N; the
  target is the Job, the status and the Event that records the decision (`MIN_REQUESTS`).
- quiet minute: after both sizes, with 600 TrainingJobs in place, the operator's writes during 60 s.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.harness import BenchError, Env, Request, Result, Row, Watch, load_average, ratio_text, say, wait_for
from driftline.api import constants as c
from driftline.api.trainingjob import TrainingJobSpec
from driftline.config import OperatorConfig
from driftline.render import training as render

NAME = "reconcile"
DESCRIPTION = "N suspended TrainingJobs -> Jobs and statuses, vs a plain client's same writes; requests per object"
DEFAULT_TRIALS = 1
SIZES = (100, 500)
QUIET_SECONDS = 60
TARGET_RATIO = 1.5
MIN_REQUESTS = 3
"""Per TrainingJob: create its Job, write its status, and the Event every decision posts (`kubectl describe` shows why
the Job exists); 2 for a controller that posts no Events."""
API = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{{ns}}/trainingjobs"
WRITES = ("create", "update", "patch", "delete", "deletecollection")


def run(env: Env, trials: int | None = None) -> Result:
    trials = trials or DEFAULT_TRIALS
    rows: list[Row] = []
    extra: dict[str, Any] = {"sizes": list(SIZES), "load": load_average()}
    notes: list[str] = []
    env.operator.stop()  # the baseline must have the API server to itself, and leave nothing for it to resume
    baseline: dict[int, list[float]] = {n: [] for n in SIZES}
    for trial in range(trials):
        for n in SIZES:
            baseline[n].append(_baseline(env, n, trial))
    env.operator.start()
    _await_operator(env)
    counts: dict[int, Counter[str]] = {}
    for n in SIZES:
        took: list[float] = []
        for trial in range(trials):
            seconds, counted = _operator(env, n, trial)
            took.append(seconds)
            counts[n] = counted  # the last trial's
        base_name = f"N={n}: plain client, 3 writes per object"
        rows.append(Row(base_name, baseline[n], baseline=True))
        ratio = _median(took) / _median(baseline[n])
        rows.append(
            Row(
                f"N={n}: operator, until every Job, status and Event exists",
                took,
                note=f"{ratio_text(ratio)} the plain client (target <= {TARGET_RATIO}x)",
                against=base_name,
            )
        )
        per_object = sum(counts[n].values()) / n
        extra[f"n{n}"] = {
            "baseline_seconds": baseline[n],
            "operator_seconds": took,
            "ratio": round(ratio, 2),
            "requests_per_object": round(per_object, 2),
            "requests_by_verb_resource": dict(counts[n].most_common()),
        }
        notes.append(
            f"N={n}: operator {ratio_text(ratio)} the plain client (target <= {TARGET_RATIO}x: "
            f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}); {per_object:.1f} operator requests per TrainingJob "
            f"(target {MIN_REQUESTS}: {'met' if round(per_object, 1) <= MIN_REQUESTS else 'MISSED'}; the Job, the "
            f"status, the decision's Event): {_per_object(counts[n], n)}"
        )
    writes, reads = _quiet(env)
    extra["quiet_minute"] = {"writes": dict(writes), "reads": dict(reads)}
    notes.append(
        f"quiet minute ({QUIET_SECONDS}s, {sum(SIZES) * trials} TrainingJobs in place): "
        f"{sum(writes.values())} operator "
        f"writes (target 0){': ' + _fmt(writes) if writes else ''}; {sum(reads.values())} reads"
        f"{': ' + _fmt(reads) if reads else ''}"
    )
    extra["load"] = f"{extra['load']} at start, {load_average()} at end"
    return Result(NAME, rows, notes, extra)


# -- the plain client ------------------------------------------------------------------------------------------------


def _trainingjob(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": "bench-model",
            "dataset": {"uri": "sklearn://breast_cancer"},
            "estimator": "sklearn.linear_model.LogisticRegression",
            "output": {"storageUri": "pvc://models/registry"},
            "suspend": True,
        },
    }


def _baseline(env: Env, n: int, trial: int) -> float:
    ns = env.namespace(f"bench-raw-{n}")
    cfg = OperatorConfig.from_env()
    path = API.format(ns=ns)
    say(f"baseline N={n} (trial {trial + 1}): create TrainingJob, create its Job, patch its status, one by one")
    started = time.perf_counter()
    for i in range(n):
        tj = env.api.create(path, _trainingjob(f"tj-{i}"))
        spec = TrainingJobSpec.model_validate(tj["spec"])
        job = render.training_job(
            tj, spec, runtime_image=cfg.runtime_image, allowed_prefixes=cfg.allowed_estimator_prefixes
        )
        env.api.create(f"/apis/batch/v1/namespaces/{ns}/jobs", job)
        status = {
            "phase": "Pending",
            "observedGeneration": tj["metadata"]["generation"],
            "jobName": job["metadata"]["name"],
            "conditions": _conditions(tj["metadata"]["generation"]),
        }
        env.api.patch(f"{path}/tj-{i}/status", {"status": status}, "merge")
    took = time.perf_counter() - started
    say(f"baseline N={n}: {took:.2f}s ({took / n * 1000:.1f} ms per object); deleting its namespace")
    env.api.delete(f"/api/v1/namespaces/{ns}")
    wait_for(f"namespace {ns} gone", lambda: env.api.get_or_none(f"/api/v1/namespaces/{ns}") is None, timeout=300)
    env.namespaces.remove(ns)
    return took


def _conditions(generation: int) -> list[dict[str, Any]]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return [
        {
            "type": t,
            "status": s,
            "reason": "JobSuspended" if t == "Ready" else "Suspended",
            "message": "the Job is suspended",
            "lastTransitionTime": now,
            "observedGeneration": generation,
        }
        for t, s in (("Ready", "False"), ("Reconciling", "False"), ("Stalled", "False"))
    ]


# -- the operator ----------------------------------------------------------------------------------------------------


def _await_operator(env: Env) -> None:
    """The operator is up once it handles a TrainingJob: one in a namespace of its own, not counted."""
    ns = env.namespace("bench-probe")
    env.api.create(API.format(ns=ns), _trainingjob("probe"))

    def handled() -> bool:
        env.operator.check()
        st = env.api.get(f"{API.format(ns=ns)}/probe").get("status") or {}
        return bool(st.get("jobName"))

    wait_for("the operator to handle a TrainingJob", handled, timeout=120, interval=0.2)
    say("operator up")


def _is_operator(r: Request) -> bool:
    return r.user_agent.startswith(("kopf/", "driftline-operator/"))


def _operator(env: Env, n: int, trial: int) -> tuple[float, Counter[str]]:
    ns = env.namespace(f"bench-op-{n}")
    path = API.format(ns=ns)
    audit = env.audit()
    kc = env.kubeconfig
    with (
        Watch(kc, f"/apis/batch/v1/namespaces/{ns}/jobs") as jobs,
        Watch(kc, path) as tjs,
    ):
        offset = audit.offset()
        say(f"operator N={n} (trial {trial + 1}): creating {n} TrainingJobs")
        started, started_wall = time.perf_counter(), time.time()
        for i in range(n):
            env.api.create(path, _trainingjob(f"tj-{i}"))
        created = time.perf_counter() - started
        say(f"created in {created:.2f}s; waiting for every Job and status")
        job_seen = _first_times(jobs, lambda e: e.obj["metadata"]["labels"].get(c.LABEL_TRAINING_JOB), n)
        status_seen = _first_times(tjs, _status_name, n)
        seen = max(max(job_seen.values()), max(status_seen.values())) - started
    time.sleep(5)  # late requests of the same work (Events, kopf's own bookkeeping) belong to it too
    prefix = f"/namespaces/{ns}/"
    reqs = [r for r in audit.since(offset) if _is_operator(r) and prefix in r.uri]
    last_write = max((r.completed for r in reqs if r.verb in WRITES), default=started_wall) - started_wall
    took = max(seen, last_write)
    say(
        f"operator N={n}: done {took:.2f}s after the first create ({created:.2f}s of it the client's creates; "
        f"last Job and status seen at {seen:.2f}s, last write completed at {last_write:.2f}s)"
    )
    if any(r.code >= 400 and r.code not in (404, 409) for r in reqs):  # 404: a get before a create
        bad = Counter(f"{r.verb} {_resource(r.uri)} {r.code}" for r in reqs if r.code >= 400)
        raise BenchError(f"the operator's requests failed: {dict(bad)}")
    counted = Counter(f"{r.verb} {_resource(r.uri)}" for r in reqs)
    say(f"operator N={n}: {len(reqs) / n:.1f} requests per object: {_per_object(counted, n)}")
    return took, counted


def _status_name(e: Any) -> str | None:
    st = e.obj.get("status") or {}
    return str(e.obj["metadata"]["name"]) if st.get("phase") and st.get("jobName") else None


def _first_times(watch: Watch, key: Callable[[Any], str | None], n: int, timeout: float = 600.0) -> dict[str, float]:
    """The first time each of n distinct keys was seen in the watch's events (perf_counter)."""
    seen: dict[str, float] = {}
    i = 0
    deadline = time.monotonic() + timeout
    while len(seen) < n:
        if time.monotonic() > deadline:
            raise BenchError(f"only {len(seen)} of {n} seen on {watch.path} after {timeout:.0f}s")
        e = watch.wait(f"{n - len(seen)} more", lambda e: key(e) is not None, since=i, timeout=timeout)
        i = watch.events.index(e, i) + 1
        k = key(e)
        if k is not None and k not in seen:
            seen[k] = e.mono
    return seen


def _resource(uri: str) -> str:
    """`/apis/batch/v1/namespaces/x/jobs/name?...` -> `jobs`; subresources kept: `trainingjobs/status`."""
    parts = uri.split("?", 1)[0].strip("/").split("/")
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :]
    else:
        rest = parts[3:] if parts[0] == "apis" else parts[2:]
    if not rest:
        return "namespaces"
    return rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")


def _per_object(counts: Counter[str], n: int) -> str:
    return ", ".join(f"{k} {v / n:.2g}" for k, v in counts.most_common())


def _fmt(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.most_common())


def _quiet(env: Env) -> tuple[Counter[str], Counter[str]]:
    audit = env.audit()
    offset = audit.offset()
    say(f"a quiet minute: counting the operator's requests for {QUIET_SECONDS}s")
    time.sleep(QUIET_SECONDS)
    env.operator.check()
    reqs = [r for r in audit.since(offset) if _is_operator(r) and "/leases" not in r.uri]
    writes = Counter(f"{r.verb} {_resource(r.uri)}" for r in reqs if r.verb in WRITES)
    reads = Counter(f"{r.verb} {_resource(r.uri)}" for r in reqs if r.verb not in WRITES)
    return writes, reads


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
