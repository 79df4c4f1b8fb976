"""Reaction latency: how long the operator takes to act on what it watches, against the API server's own floor.

On one local cluster with the operator running as a real process:

- baseline: a client PATCHes a ConfigMap and times its own watch seeing the change: one write plus one watch
  delivery, the least any reaction through the API server costs (an operator pays it at least twice: the trigger
  reaching it, and its own write reaching whoever looks).
- promotion -> Deployment patched: an InferenceService (Rolling, 1 replica) follows the model; a version already
  trained is promoted the declarative way (the ModelVersion's `driftline.dev/promote` annotation, a new value each
  time, since the operator handles each value once) and the client times, from sending its PATCH (as the baseline
  does), its watch on the Deployment seeing the pod template's `driftline.dev/version` label change. Trials
  alternate between two good versions (re-promoting an Archived version is allowed) and wait for each rollout to
  finish (service Ready, the new pod ready, the old one shutting down), so every trial is a clean promotion.
- analysis failure -> rollback: the same service on strategy Canary, under a steady load of V2 requests; a version
  trained on other features answers them 400, so the canary's first measurement fails. Trials alternate between two
  such versions. The failing measurement is not visible to
  a client before the operator acts on it (it is written to status in the same pass, after the rollback), so the
  start is taken from the API server's audit log: the failing round's first API request, received (listing the
  canary pods, whose /metrics it then reads, before the stable pods'). The end is the client's watches seeing both
  the canary Deployment deleted and the ModelVersion RolledBack. Server and client share this machine's clock.
- drift breach -> action: the start is the first of the client's own 10 Hz reads of the pod's /metrics that shows
  the breach, so the span may start up to 0.1 s after the breach existed (on average 50 ms late).

The audit log also splits the promotion latency into its hops (the operator's status write on the ModelVersion,
its Deployment patch), shown as indented rows.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import (
    BenchError,
    Env,
    Load,
    Request,
    Result,
    Row,
    Seen,
    Watch,
    load_average,
    say,
    wait_for,
)

NAME = "reaction"
DESCRIPTION = (
    "promotion -> Deployment patch, analysis failure -> rollback, drift breach -> action, vs. the API server's "
    "watch latency"
)
DEFAULT_TRIALS = 20
CANARY_TRIALS = 5  # each is a whole canary (pod start, a baseline read, one interval): ~10 s apiece
TARGET_PROMOTION = 1.0

GROUP = "driftline.dev"
API = f"/apis/{GROUP}/v1alpha1/namespaces/{{ns}}"
MODEL = "breast-cancer"
SERVICE = "bc"
STABLE, CANARY = f"{SERVICE}-stable", f"{SERVICE}-canary"
PROMOTE = f"{GROUP}/promote"
VERSION_LABEL = f"{GROUP}/version"
ISVC_LABEL = f"{GROUP}/inferenceservice"
PORT = 8080
# The first ten features of sklearn's breast_cancer: a model trained on these answers 400 to full-width requests.
NARROW_FEATURES = [
    "mean radius",
    "mean texture",
    "mean perimeter",
    "mean area",
    "mean smoothness",
    "mean compactness",
    "mean concavity",
    "mean concave points",
    "mean symmetry",
    "mean fractal dimension",
]
CANARY_ROLLOUT = {
    "strategy": "Canary",
    "canary": {"steps": [{"weight": 50}], "analysis": {"interval": "2s", "count": 2, "minSamples": 5}},
}
ENDED = ("Failed", "Inconclusive", "Error")
DRIFT_SERVICE = "bc-drift"
DRIFT_SPEC: dict[str, Any] = {
    "metric": "psi",
    "threshold": 0.25,
    "window": {"size": 200},
    "minSamples": 100,
    "consecutive": 1,
    "action": "Alert",
    "scrapeInterval": "2s",
}
TARGET_DRIFT = 4.0  # one scrape interval + 2 s
DRIFT_ROWS = 200  # each request refills the whole window with 200 distinct rows: a breach is one request away


def run(env: Env, trials: int | None = None) -> Result:
    trials = trials or DEFAULT_TRIALS
    ns = env.namespace("bench-reaction")
    say(f"namespace {ns}")
    good, bad = _train(env, ns)
    current = _serve(env, ns)
    rows: list[Row] = []
    extra: dict[str, Any] = {"namespace": ns, "versions": {"good": good, "bad": bad}}
    load_before = load_average()
    kc = env.kubeconfig
    with (
        Watch(kc, f"/apis/apps/v1/namespaces/{ns}/deployments", labelSelector=f"{ISVC_LABEL}={SERVICE}") as deps,
        Watch(kc, API.format(ns=ns) + "/modelversions") as mvs,
        Watch(kc, API.format(ns=ns) + "/inferenceservices") as isvcs,
        Watch(kc, f"/api/v1/namespaces/{ns}/configmaps", fieldSelector="metadata.name=bench-baseline") as cms,
    ):
        base_sent, base_ret = _baseline(env, ns, cms, trials)
        rows.append(Row("API server: PATCH sent -> own watch sees it", base_sent, baseline=True))
        rows.append(Row("API server: PATCH returned -> own watch sees it", base_ret, ratio=False))

        promo = _promotions(env, ns, deps, mvs, good, current, trials)
        rows.append(Row("promotion (PATCH sent) -> Deployment patched (client)", promo.total, target=TARGET_PROMOTION))
        rows.append(Row("  - PATCH -> operator's MV stage write arrives", promo.to_stage))
        rows.append(Row("  - MV stage write -> operator's Deployment patch", promo.to_deployment))
        rows.append(Row("  - Deployment patch -> client watch sees it", promo.to_client))
        rows.append(Row("promotion -> rollout complete (info)", promo.rollout, ratio=False))
        extra["promotion_trials"] = promo.trials

        n = min(trials, CANARY_TRIALS)
        ab = _aborts(env, ns, deps, mvs, isvcs, bad, n)
        rows.append(Row("analysis failure -> rollback seen (client)", ab.total))
        rows.append(Row("  - failing round -> RolledBack write arrives", ab.to_rolled_back))
        rows.append(Row("  - failing round -> canary DELETE arrives", ab.to_delete))
        rows.append(Row("  - failing round -> status shows Failed", ab.to_failed_status))
        rows.append(Row("promote bad -> canary aborted, whole cycle (info)", ab.cycle, ratio=False))
        extra["abort_trials"] = ab.trials
        extra["abort_attempts_not_counted"] = ab.skipped

    dr = _drift_alerts(env, ns, good[0], trials)
    rows.append(Row("drift breach -> action seen (client)", dr.total, target=TARGET_DRIFT))
    rows.append(Row("  - breach -> operator's status write arrives", dr.to_write))
    rows.append(Row("  - breach -> operator's reading (its pod list)", dr.to_reading, ratio=False))
    extra["drift_trials"] = dr.trials
    notes = [
        f"promotion: {len(promo.total)} trials alternating v{good[0]} <-> v{good[1]} by the {PROMOTE} annotation "
        "(an Archived version may be promoted again; each new annotation value is one request)",
        f"analysis failure: {len(ab.total)} trials alternating bad v{bad[0]} <-> v{bad[1]} (each a whole canary: pod "
        "start, a baseline read, one 2s interval); start = the failing round's first API request in the audit log, end "
        "= client watches. Two bad versions alternate, so no trial re-runs the canary of the version just aborted",
        "'  - ' rows split the line above them using the API server's audit log (server-side timestamps)",
        f"baseline: {len(base_sent)} PATCHes of a ConfigMap; ratios divide each p50 by the 'PATCH sent' p50",
    ]
    if ab.order_note:
        notes.append(ab.order_note)
    notes.append(
        f"drift: {len(dr.total)} trials on a second service ({DRIFT_SERVICE}, drift action Alert, scrapeInterval "
        f"{DRIFT_SPEC['scrapeInterval']}, consecutive 1, a {DRIFT_SPEC['window']['size']}-row window), 5 requests a "
        f"second of {DRIFT_ROWS} rows each; the rows switch to every feature x1.5; breach = the first of the "
        "client's own 10 Hz reads of the pod's /metrics "
        "with driftline_drift_score over the threshold and the window full enough; action = the client's watch "
        "seeing Drifted=True. Between trials the rows switch back until the operator reads Ok. Target: one "
        f"interval + 2 s = {TARGET_DRIFT:g} s"
    )
    extra["load"] = f"{load_before} at start, {load_average()} at end"
    return Result(NAME, rows, notes, extra)


# -- set-up ----------------------------------------------------------------------------------------------------------


def _trainingjob(name: str, params: dict[str, Any], auto: bool, features: list[str] | None = None) -> dict[str, Any]:
    dataset: dict[str, Any] = {"uri": "sklearn://breast_cancer"}
    if features:
        dataset["features"] = features
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": MODEL,
            "dataset": dataset,
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": params,
            "output": {"storageUri": "pvc://models/registry"},
            "promotion": {"auto": auto},
        },
    }


def _train(env: Env, ns: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two good versions (promoted by policy: one ends Production, the other Archived) and two bad ones (trained on
    other features) left Candidate, trained at once."""
    env.api.create(
        f"/api/v1/namespaces/{ns}/persistentvolumeclaims",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "models"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    jobs = {
        "good-a": _trainingjob("good-a", {"max_iter": 5000}, auto=True),
        "good-b": _trainingjob("good-b", {"max_iter": 5000, "C": 0.5}, auto=True),
        "bad-a": _trainingjob("bad-a", {"max_iter": 5000}, auto=False, features=NARROW_FEATURES),
        "bad-b": _trainingjob("bad-b", {"max_iter": 5000, "C": 0.5}, auto=False, features=NARROW_FEATURES),
    }
    started = time.monotonic()
    for body in jobs.values():
        env.api.create(API.format(ns=ns) + "/trainingjobs", body)
    say("training four versions (two good, two on other features)")
    version: dict[str, int] = {}
    for name in jobs:

        def finished(name: str = name) -> dict[str, Any] | None:
            env.operator.check()
            st = env.api.get(f"{API.format(ns=ns)}/trainingjobs/{name}").get("status") or {}
            return dict(st) if st.get("phase") in ("Succeeded", "Failed") else None

        st = wait_for(f"TrainingJob {name}", finished, timeout=300, interval=0.5)
        if st["phase"] != "Succeeded":
            raise BenchError(f"TrainingJob {name} failed: {st.get('message')}")
        version[name] = int(st["version"])

    def judged() -> dict[str, str] | None:
        items = env.api.get(API.format(ns=ns) + "/modelversions")["items"]
        stages = {int(m["spec"]["version"]): (m.get("status") or {}).get("stage") for m in items}
        ok = sorted(stages[version[n]] or "" for n in ("good-a", "good-b")) == ["Archived", "Production"]
        ok = ok and stages[version["bad-a"]] == stages[version["bad-b"]] == "Candidate"
        return {str(k): str(v) for k, v in stages.items()} if ok else None

    stages = wait_for("the versions judged", judged, timeout=60)
    say(f"trained in {time.monotonic() - started:.0f}s: stages {stages}")
    return (version["good-a"], version["good-b"]), (version["bad-a"], version["bad-b"])


def _serve(env: Env, ns: str) -> int:
    """The InferenceService following the model (Rolling, one replica), Ready; returns the version it serves."""
    env.api.create(
        API.format(ns=ns) + "/inferenceservices",
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": SERVICE},
            "spec": {"model": MODEL, "replicas": 1},
        },
    )
    st = wait_for(f"{SERVICE} Ready", lambda: _ready(env, ns, None), timeout=180)
    version = int(st["activeVersion"])
    say(f"{SERVICE} Ready, serving v{version}")
    return version


def _ready(env: Env, ns: str, version: int | None) -> dict[str, Any] | None:
    """The service Ready on `version` (any, if None) with exactly one pod not shutting down, of that version and
    ready."""
    env.operator.check()
    st = env.api.get(f"{API.format(ns=ns)}/inferenceservices/{SERVICE}").get("status") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or [])
    if not ready or (version is not None and st.get("activeVersion") != version) or st.get("canaryVersion"):
        return None
    pods = env.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=f"{ISVC_LABEL}={SERVICE}")["items"]
    pods = [p for p in pods if not p["metadata"].get("deletionTimestamp")]  # a stopped pod drains for 3 s: let it
    if len(pods) != 1:
        return None
    (pod,) = pods
    conds = (pod.get("status") or {}).get("conditions") or []
    pod_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conds)
    if not pod_ready or pod["metadata"]["labels"].get(VERSION_LABEL) != str(st.get("activeVersion")):
        return None
    return dict(st)


# -- measurements ----------------------------------------------------------------------------------------------------


def _baseline(env: Env, ns: str, cms: Watch, trials: int) -> tuple[list[float], list[float]]:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    env.api.create(path, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench-baseline"}})
    sent, returned = [], []
    for i in range(trials):
        mark = cms.mark()
        t_send = time.perf_counter()
        env.api.patch(f"{path}/bench-baseline", {"data": {"n": str(i)}}, "merge")
        t_ret = time.perf_counter()
        seen = cms.wait("the ConfigMap patch", _data_is(str(i)), mark)
        sent.append(seen.mono - t_send)
        returned.append(seen.mono - t_ret)
        say(f"baseline {i + 1}/{trials}: sent->seen {_ms(sent[-1])}, returned->seen {_ms(returned[-1])}")
        time.sleep(0.05)
    return sent, returned


@dataclass
class Promotions:
    total: list[float]
    to_stage: list[float]
    to_deployment: list[float]
    to_client: list[float]
    rollout: list[float]
    trials: list[dict[str, Any]]


def _promote(env: Env, ns: str, version: int, token: str) -> tuple[float, float]:
    """Ask for `version`'s promotion; the client's clocks (perf_counter, time) when the PATCH was sent, as the
    baseline's span starts: the request's own round trip is part of what a user waits for."""
    body = {"metadata": {"annotations": {PROMOTE: token}}}
    sent = time.perf_counter(), time.time()
    env.api.patch(f"{API.format(ns=ns)}/modelversions/{MODEL}-v{version}", body, "merge")
    return sent


def _data_is(value: str) -> Callable[[Seen], bool]:
    return lambda e: (e.obj.get("data") or {}).get("n") == value


def _template_on(version: int) -> Callable[[Seen], bool]:
    def check(e: Seen) -> bool:
        labels = e.obj["spec"]["template"]["metadata"].get("labels") or {}
        return bool(e.obj["metadata"]["name"] == STABLE and labels.get(VERSION_LABEL) == str(version))

    return check


def _ready_on(env: Env, ns: str, version: int) -> Callable[[], dict[str, Any] | None]:
    return lambda: _ready(env, ns, version)


def _promotion_requests(reqs: list[Request], version: int) -> tuple[Request, Request, Request]:
    """From the audit log: the client's promotion PATCH, the operator's stage write, its Deployment patch."""
    mv_path = f"/modelversions/{MODEL}-v{version}"
    asked = _first(reqs, "promotion PATCH", lambda r: _ours(r) and r.verb == "patch" and mv_path in r.uri)
    stage = _first(
        reqs,
        "stage write",
        lambda r: not _ours(r) and r.verb == "patch" and f"{mv_path}/status" in r.uri and r.code < 300,
    )
    patched = _first(
        reqs,
        "Deployment patch",
        lambda r: not _ours(r) and r.verb == "patch" and f"/deployments/{STABLE}" in r.uri and r.code < 300,
    )
    return asked, stage, patched


def _ours(r: Request) -> bool:
    return r.user_agent.startswith("driftline-bench")


def _first(reqs: list[Request], what: str, pred: Callable[[Request], bool]) -> Request:
    hit = next((r for r in reqs if pred(r)), None)
    if hit is None:
        raise BenchError(f"the audit log shows no {what}")
    return hit


def _promotions(
    env: Env, ns: str, deps: Watch, mvs: Watch, good: tuple[int, int], current: int, trials: int
) -> Promotions:
    out = Promotions([], [], [], [], [], [])
    audit = env.audit()
    run_id = uuid.uuid4().hex[:6]
    for i in range(trials):
        target = good[1] if current == good[0] else good[0]
        token = f"bench-{run_id}-{i}"
        mark, offset = deps.mark(), audit.offset()
        t_sent, wall_sent = _promote(env, ns, target, token)
        dep = deps.wait(f"{STABLE} on v{target}", _template_on(target), mark)
        wait_for(f"{SERVICE} Ready on v{target}", _ready_on(env, ns, target), timeout=180, interval=0.1)
        t_done = time.perf_counter()
        asked, stage, patched = _promotion_requests(audit.since(offset), target)
        total = dep.mono - t_sent
        parts = (stage.received - asked.completed, patched.received - stage.completed, dep.wall - patched.completed)
        out.total.append(total)
        out.to_stage.append(parts[0])
        out.to_deployment.append(parts[1])
        out.to_client.append(parts[2])
        out.rollout.append(t_done - t_sent)
        out.trials.append(
            {
                "from": current,
                "to": target,
                "patch_sent_wall": wall_sent,
                "deployment_seen_wall": dep.wall,
                "latency": total,
                "stage_write_received": stage.received,
                "deployment_patch_received": patched.received,
                "rollout_complete": t_done - t_sent,
            }
        )
        say(
            f"promotion {i + 1}/{trials} v{current}->v{target}: Deployment patched after {_ms(total)} "
            f"(stage write +{_ms(parts[0])}, Deployment patch +{_ms(parts[1])}, seen +{_ms(parts[2])}); "
            f"rollout complete after {t_done - t_sent:.1f}s"
        )
        current = target
    return out


@dataclass
class Aborts:
    total: list[float]
    to_rolled_back: list[float]
    to_delete: list[float]
    to_failed_status: list[float]
    cycle: list[float]
    trials: list[dict[str, Any]]
    order_note: str = ""
    skipped: list[str] = field(default_factory=list)


def _aborts(
    env: Env, ns: str, deps: Watch, mvs: Watch, isvcs: Watch, bad_versions: tuple[int, int], trials: int
) -> Aborts:
    out = Aborts([], [], [], [], [], [])
    isvc_path = f"{API.format(ns=ns)}/inferenceservices/{SERVICE}"
    env.api.patch(isvc_path, {"spec": {"rollout": CANARY_ROLLOUT}}, "merge")
    stable = int(wait_for(f"{SERVICE} Ready on strategy Canary", lambda: _ready(env, ns, None))["activeVersion"])
    say(f"{SERVICE} on strategy Canary, stable v{stable}; canaries of v{bad_versions} (10 of 30 features) next")
    audit = env.audit()
    run_id = uuid.uuid4().hex[:6]
    body = _v2_rows(1.0, 2)
    load = Load(env.kubeconfig, ns, f"{ISVC_LABEL}={SERVICE}", PORT, f"/v2/models/{MODEL}/infer", body, 20.0)
    attempt = 0
    with load:
        while len(out.total) < trials and attempt < trials + 3:
            attempt += 1
            bad = bad_versions[attempt % 2]
            token = f"bench-{run_id}-bad-{attempt}"
            d_mark, m_mark, s_mark, offset = deps.mark(), mvs.mark(), isvcs.mark(), audit.offset()
            _, wall_sent = _promote(env, ns, bad, token)
            deps.wait(f"{CANARY} created", lambda e: e.type == "ADDED" and e.obj["metadata"]["name"] == CANARY, d_mark)
            deleted = deps.wait(f"{CANARY} deleted", _canary_gone, d_mark, timeout=120)
            rolled_back = mvs.wait(f"v{bad} RolledBack", _rolled_back(bad, token), m_mark, timeout=120)
            running = isvcs.wait("the analysis running", _analysis_is(("Running",), None), s_mark)
            ended = isvcs.wait("the analysis ended", _analysis_is(ENDED, _analysis(running).get("startedAt")), s_mark)
            wait_for(f"{SERVICE} Ready on v{stable} alone", _ready_on(env, ns, stable), timeout=120, interval=0.1)
            analysis = _analysis(ended)
            last = (analysis.get("measurements") or [{}])[-1]
            if analysis.get("phase") != "Failed":
                out.skipped.append(f"{analysis.get('phase')}: {str(analysis.get('message'))[:300]}")
                say(f"abort attempt {attempt}: the analysis ended {analysis.get('phase')}, not Failed; not counted")
                continue
            time.sleep(0.5)  # the audit log is written as requests complete; let the last lines land
            measured, rb_write, delete = _abort_requests(audit.since(offset), bad)
            end = max(deleted.wall, rolled_back.wall)
            m_time = last.get("time")
            out.total.append(end - measured)
            out.to_rolled_back.append(rb_write.received - measured)
            out.to_delete.append(delete.received - measured)
            out.to_failed_status.append(ended.wall - measured)
            out.cycle.append(end - wall_sent)
            out.trials.append(
                {
                    "failing_round_wall": measured,
                    "measurement": last,
                    "rolled_back_write_received": rb_write.received,
                    "canary_delete_received": delete.received,
                    "canary_deleted_seen": deleted.wall,
                    "rolled_back_seen": rolled_back.wall,
                    "analysis_failed_seen": ended.wall,
                    "latency": end - measured,
                }
            )
            if m_time and abs(_parse_time(m_time) - int(measured)) > 1:
                say(f"warning: the failing measurement says {m_time}, the audit log's round was at {measured:.3f}")
            say(
                f"abort {len(out.total)}/{trials}: rollback seen {_ms(end - measured)} after the failing round "
                f"(RolledBack write +{_ms(out.to_rolled_back[-1])}, DELETE +{_ms(out.to_delete[-1])}, "
                f"status Failed +{_ms(out.to_failed_status[-1])}); error-rate {last.get('value')} over "
                f"{last.get('samples')} requests; cycle {out.cycle[-1]:.1f}s"
            )
    say(f"background requests answered, by status code: {dict(sorted(load.codes.items()))}")
    if len(out.total) < trials:
        raise BenchError(f"only {len(out.total)} of {trials} canaries failed their analysis: {out.skipped}")
    late = sum(f > t for f, t in zip(out.to_failed_status, out.total, strict=True))
    if late:
        out.order_note = (
            f"in {late}/{len(out.total)} trials status.analysis showed Failed only after the rollback was visible: the "
            "operator acts first and writes the verdict to status last, so a client cannot time from the verdict"
        )
    return out


def _canary_gone(e: Seen) -> bool:
    return bool(
        e.obj["metadata"]["name"] == CANARY and (e.type == "DELETED" or e.obj["metadata"].get("deletionTimestamp"))
    )


def _rolled_back(version: int, token: str) -> Callable[[Seen], bool]:
    def check(e: Seen) -> bool:
        st = e.obj.get("status") or {}
        return bool(
            e.obj["metadata"]["name"] == f"{MODEL}-v{version}"
            and st.get("lastPromoteRequest") == token
            and st.get("stage") == "RolledBack"
        )

    return check


def _analysis_is(phases: tuple[str, ...], started_at: str | None) -> Callable[[Seen], bool]:
    def check(e: Seen) -> bool:
        a = _analysis(e)
        return a.get("phase") in phases and (started_at is None or a.get("startedAt") == started_at)

    return check


def _abort_requests(reqs: list[Request], version: int) -> tuple[float, Request, Request]:
    """From the audit log: when the failing round began (its first API request, the list of the canary pods whose
    /metrics it then reads; the stable pods are listed and read next), the operator's RolledBack write and its
    DELETE of the canary Deployment."""
    reqs = [r for r in reqs if not _ours(r)]
    delete = _first(reqs, "canary DELETE", lambda r: r.verb == "delete" and f"/deployments/{CANARY}" in r.uri)
    mv_status = f"/modelversions/{MODEL}-v{version}/status"
    rb = [r for r in reqs if r.verb == "patch" and mv_status in r.uri and r.received <= delete.received]
    if not rb:
        raise BenchError("the audit log shows no RolledBack write before the canary's DELETE")
    rounds = [
        r
        for r in reqs
        if r.verb == "list" and "/pods" in r.uri and "track=stable" in r.uri and r.completed <= rb[-1].received
    ]
    if not rounds:
        raise BenchError("the audit log shows no measurement round before the RolledBack write")
    canary_lists = [
        r
        for r in reqs
        if r.verb == "list" and "/pods" in r.uri and "track=canary" in r.uri and r.received <= rounds[-1].received
    ]
    return (canary_lists[-1] if canary_lists else rounds[-1]).received, rb[-1], delete


def _analysis(e: Seen) -> dict[str, Any]:
    return dict((e.obj.get("status") or {}).get("analysis") or {})


def _parse_time(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if abs(seconds) < 10 else f"{seconds:.1f} s"


# -- drift breach -> action ------------------------------------------------------------------------------------------


@dataclass
class DriftAlerts:
    total: list[float]
    to_write: list[float]
    to_reading: list[float]
    trials: list[dict[str, Any]]


def _drift_alerts(env: Env, ns: str, good: int, trials: int) -> DriftAlerts:
    out = DriftAlerts([], [], [], [])
    path = f"{API.format(ns=ns)}/inferenceservices"
    # Pinned to a good version, so the drift trials below measure drift alone, whatever the canary trials above left
    # as the model's Production version (an abort restores the version the canary was to replace).
    env.api.create(
        path,
        {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": DRIFT_SERVICE},
            "spec": {"model": MODEL, "version": good, "replicas": 1, "drift": DRIFT_SPEC},
        },
    )
    selector = f"{ISVC_LABEL}={DRIFT_SERVICE}"

    def pod_ip() -> str | None:
        env.operator.check()
        st = env.api.get(f"{path}/{DRIFT_SERVICE}").get("status") or {}
        if not any(c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or []):
            return None
        pods = env.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]
        ready = [
            p["status"]["podIP"]
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
        ]
        return ready[0] if len(ready) == 1 and len(pods) == 1 else None

    ip = str(wait_for(f"{DRIFT_SERVICE} Ready with one pod", pod_ip, timeout=180))
    normal, shifted = _v2_rows(1.0, DRIFT_ROWS), _v2_rows(1.5, DRIFT_ROWS)
    http = requests.Session()
    http.trust_env = False  # a pod's loopback address, never through a proxy
    audit = env.audit()
    load = Load(env.kubeconfig, ns, selector, PORT, f"/v2/models/{MODEL}/infer", normal, 5.0)
    with load, Watch(env.kubeconfig, path, fieldSelector=f"metadata.name={DRIFT_SERVICE}") as isvc:
        say(f"{DRIFT_SERVICE} Ready on {ip}; {trials} drift trials next (normal rows until the operator reads Ok)")
        for i in range(trials):
            load.body = normal
            mark = isvc.mark()
            isvc.wait("an Ok reading, Drifted=False", _drift_ok, mark, timeout=120)
            mark, offset = isvc.mark(), audit.offset()
            load.body = shifted
            breach_wall = _breach(http, ip, timeout=60)
            seen = isvc.wait("Drifted=True", _drifted, mark, timeout=60)
            time.sleep(0.5)  # the audit log is written as requests complete
            reqs = [r for r in audit.since(offset) if not _ours(r)]
            # The Drifted write is the last status write completed before the watch delivered its result.
            writes = [r for r in reqs if _status_write_after(breach_wall)(r) and r.received <= seen.wall]
            if not writes:
                raise BenchError("the audit log shows no status write between the breach and Drifted=True")
            write = writes[-1]
            readings = [r for r in reqs if r.verb == "list" and "/pods" in r.uri and r.completed <= write.received]
            out.total.append(seen.wall - breach_wall)
            out.to_write.append(write.received - breach_wall)
            out.to_reading.append((readings[-1].completed if readings else write.received) - breach_wall)
            out.trials.append({"breach_wall": breach_wall, "seen_wall": seen.wall, "write_received": write.received})
            say(
                f"drift {i + 1}/{trials}: action seen {_ms(out.total[-1])} after the breach (status write "
                f"+{_ms(out.to_write[-1])}, the reading's pod list +{_ms(out.to_reading[-1])})"
            )
        # Left reading Ok, as a quiet watched service is: the reconcile benchmark's quiet minute counts its writes.
        load.body = normal
        isvc.wait("an Ok reading, Drifted=False", _drift_ok, isvc.mark(), timeout=120)
    say(f"background requests answered, by status code: {dict(sorted(load.codes.items()))}")
    return out


def _status_write_after(wall: float) -> Callable[[Request], bool]:
    def check(r: Request) -> bool:
        return r.verb == "patch" and f"/inferenceservices/{DRIFT_SERVICE}/status" in r.uri and r.received >= wall - 0.2

    return check


def _drift_status(e: Seen) -> tuple[dict[str, Any], dict[str, Any] | None]:
    st = e.obj.get("status") or {}
    cond = next((c for c in st.get("conditions") or [] if c.get("type") == "Drifted"), None)
    return dict(st.get("drift") or {}), cond


def _drift_ok(e: Seen) -> bool:
    drift, cond = _drift_status(e)
    return drift.get("assessment") == "Ok" and (cond is None or cond.get("status") == "False")


def _drifted(e: Seen) -> bool:
    _, cond = _drift_status(e)
    return bool(cond and cond.get("status") == "True")


def _breach(http: requests.Session, ip: str, timeout: float) -> float:
    """Poll the pod's /metrics at 10 Hz; the wall-clock time of the first read showing a breach the operator would
    judge one: the score over the threshold with at least minSamples rows in the window."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        t = time.time()
        text = http.get(f"http://{ip}:{PORT}/metrics", timeout=2).text
        score = samples = None
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "driftline_drift_score" and sample.labels.get("method") == DRIFT_SPEC["metric"]:
                    score = sample.value
                elif sample.name == "driftline_drift_window_samples":
                    samples = sample.value
        full = samples is not None and samples >= DRIFT_SPEC["minSamples"]
        if score is not None and full and score > DRIFT_SPEC["threshold"]:
            return t
        time.sleep(max(0.0, 0.1 - (time.time() - t)))
    raise BenchError(f"no breach on the pod's /metrics within {timeout:.0f}s")


def _v2_rows(scale: float, n: int) -> dict[str, Any]:
    """A V2 request of n breast_cancer rows, spread over the whole dataset, every feature times `scale`."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer().data
    # Spread over the whole dataset (its order is not random): PSI 0.06 against the training profile at x1.0,
    # above 8 at x1.5.
    rows = data[[round(i * (len(data) - 1) / max(1, n - 1)) for i in range(n)]] * scale
    return {
        "inputs": [{"name": "input-0", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]
    }
