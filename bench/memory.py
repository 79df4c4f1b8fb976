"""Operator memory at scale: its resident set with 1,000 InferenceServices (`replicas: 0`, so no pods) and 10,000
ModelVersions in the cluster, against what a Python process costs before it does anything.

- peers, measured in the same run as processes of their own: the bare interpreter; the interpreter with kopf imported;
  with the whole operator imported (`driftline.cli` and every handler) but not running. The operator does not use
  the kubernetes client, whose import kopf's docs warn is heavy (and kopf imports it whenever it is installed).
- the operator: RSS of the operator already running in the run's cluster (under `make bench`, after the earlier
  benchmarks: their objects and pods are still there, so this is not an empty cluster); then it is stopped, a client
  creates 1,000 models x 10 versions (one
  Production, nine Archived, their status written by the client, as a registry that has been in use for a while
  would hold) and one InferenceService per model, and the operator is started into that cluster, so every resume
  handler fires at once: the worst moment for memory. RSS once every service has a status and the operator's CPU
  is quiet, and its peak (VmHWM). The per-object figure divides that settled RSS, less the imported-but-not-running
  process's, by the objects: an upper bound (kopf's running state is in it), since the process measured before the
  objects is another one.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import (
    USER_AGENT,
    BenchError,
    Env,
    Result,
    Row,
    cpu_seconds,
    load_average,
    operator_pid,
    rss,
    say,
    wait_for,
)
from driftline.api import constants as c
from driftline.devcluster.kubeapi import KubeApi

NAME = "memory"
DESCRIPTION = "operator RSS with 1,000 InferenceServices and 10,000 ModelVersions, vs Python with its imports"
DEFAULT_TRIALS = 1
MODELS = 1000
VERSIONS_PER_MODEL = 10
TARGET_MB = 150.0
QUIET_TIMEOUT = 180.0
QUIET_WINDOW = 5.0
SETTLED_TARGET = 20.0
"""Seconds from the operator's start to settled (#21)."""
THREADS = 4
API = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{{ns}}"
PEERS = {
    "Python interpreter alone": "",
    "Python + kopf imported": "import kopf",
    "Python + the whole operator imported (not running)": "import kopf, driftline.cli, driftline.handlers",
}
BASE = "Python + kopf imported"


def run(env: Env, trials: int | None = None) -> Result:
    rows: list[Row] = []
    extra: dict[str, Any] = {"models": MODELS, "versions": MODELS * VERSIONS_PER_MODEL, "load": load_average()}
    peers = {name: _peer_rss(code) for name, code in PEERS.items()}
    for name, mb in peers.items():
        say(f"{name}: {mb:.1f} MB")
    idle = rss(operator_pid(env))["VmRSS"]
    say(f"the run's operator, before the objects (after any earlier benchmark of the run): {idle:.1f} MB")

    env.operator.stop()
    ns = env.namespace("bench-memory")
    started = time.monotonic()
    _populate(env, ns)
    populated = time.monotonic() - started
    say(f"{MODELS * VERSIONS_PER_MODEL} ModelVersions and {MODELS} InferenceServices in {populated:.0f}s")

    env.operator.start()
    pid = operator_pid(env)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    sampler = threading.Thread(target=_sample, args=(pid, samples, stop), daemon=True)
    sampler.start()
    try:
        marks = _settle(env, ns, pid)
    finally:
        stop.set()
        sampler.join()
    mem = rss(pid)
    took = marks.ready + (marks.quiet if marks.quiet is not None else QUIET_TIMEOUT)
    say(f"operator settled {took:.0f}s after its start: RSS {mem['VmRSS']:.1f} MB, peak {mem['VmHWM']:.1f} MB")

    restart = _restart(env, ns)
    env.operator.stop()  # the raw client's services must not be the operator's
    raw = _raw_client(env, ns)
    say(f"a plain client making the same {REQUESTS_PER_SERVICE * MODELS} requests: {raw:.1f}s")

    base = peers[BASE]
    rows = [
        *(Row(name, [mb], ratio=False) for name, mb in peers.items()),
        Row("operator, the run's, before the objects", [idle], ratio=False),
        Row(f"operator, settled with {MODELS} services + {MODELS * VERSIONS_PER_MODEL} versions", [mem["VmRSS"]]),
        Row("operator, peak while resuming them all (VmHWM)", [mem["VmHWM"]]),
    ]
    extra.update(
        {
            "peers_mb": peers,
            "operator_idle_mb": idle,
            "operator_settled_mb": mem["VmRSS"],
            "operator_peak_mb": mem["VmHWM"],
            "populate_seconds": round(populated, 1),
            "statuses_seconds": round(marks.statuses, 1),
            "ready_seconds": round(marks.ready, 1),
            "settled_seconds": None if marks.settled is None else round(marks.settled, 1),
            "services_with_status": marks.services,
            "quiet_after_ready_seconds": marks.quiet,
            "rss_timeline_mb": [(round(t, 1), round(mb, 1)) for t, mb in samples[:: max(1, len(samples) // 120)]],
            "raw_client_seconds": round(raw, 1),
            "restart_reconciled_seconds": round(restart.reconciled, 1),
            "restart_settled_seconds": None if restart.settled is None else round(restart.settled, 1),
            "restart_rss_mb": restart.rss,
            "restart_peak_mb": restart.peak,
            "load": f"{extra['load']} at start, {load_average()} at end",
        }
    )
    verdict = "met" if mem["VmHWM"] < TARGET_MB else "MISSED"
    objects = mem["VmRSS"] - peers["Python + the whole operator imported (not running)"]
    total_objects = MODELS + MODELS * VERSIONS_PER_MODEL
    notes = [
        f"target < {TARGET_MB:.0f} MB: peak {mem['VmHWM']:.0f} MB, settled {mem['VmRSS']:.0f} MB ({verdict})",
        f"import cost: kopf {base - peers['Python interpreter alone']:.0f} MB over the bare "
        f"interpreter; the operator's own code another "
        f"{peers['Python + the whole operator imported (not running)'] - base:.0f} MB; running and idle another "
        f"{idle - peers['Python + the whole operator imported (not running)']:.0f} MB (the run's operator, after the "
        f"earlier benchmarks); started into {MODELS + MODELS * VERSIONS_PER_MODEL} objects, a new operator settles "
        f"{objects:.0f} MB above the imported process: at most {objects * 1024 / total_objects:.1f} KB per object",
        f"the client made the objects in {populated:.0f}s; the operator, from its start: every service with a status "
        f"in {marks.statuses:.0f}s, every one Ready in {marks.ready:.0f}s, "
        + (
            f"settled (no work left: under 5 % of a core for {QUIET_WINDOW:.0f}s) in {marks.settled:.0f}s "
            f"(target <= {SETTLED_TARGET:.0f}s: {'met' if marks.settled <= SETTLED_TARGET else 'MISSED'})"
            if marks.settled is not None
            else f"still busy {QUIET_TIMEOUT:.0f}s later: RSS taken then"
        ),
        f"the raw API server: a plain client (requests, {THREADS * 2} threads, as many as the operator's handler "
        f"threads) making the same {REQUESTS_PER_SERVICE} requests per new service ({REQUESTS_PER_SERVICE * MODELS} "
        f"in all: two reads by name, the Deployment and Service applied, two status writes, two Events) took "
        f"{raw:.1f}s; the operator's first start to every service Ready, {marks.ready:.1f}s, is "
        f"{marks.ready / raw:.2f}x that",
        f"restarted into the same objects (an upgrade: every child exists, every status is current): every service "
        f"reconciled once in {restart.reconciled:.1f}s, "
        + (
            f"settled in {restart.settled:.1f}s (target <= {SETTLED_TARGET:.0f}s: "
            f"{'met' if restart.settled <= SETTLED_TARGET else 'MISSED'}), RSS {restart.rss:.0f} MB, peak "
            f"{restart.peak:.0f} MB"
            if restart.settled is not None
            else f"still busy {QUIET_TIMEOUT:.0f}s later"
        ),
        f"the ratio column divides by the '{BASE}' process",
    ]
    for r in rows[len(peers) + 1 :]:
        r.against = BASE
    rows[len(peers) + 1].target = TARGET_MB
    rows[len(peers) + 2].target = TARGET_MB
    return Result(NAME, rows, notes, extra, unit="MB")


# -- measuring -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restart:
    reconciled: float
    settled: float | None
    rss: float
    peak: float


def _restart(env: Env, ns: str) -> Restart:
    """The operator stopped and started again into the objects it has handled: every service's resume handler runs,
    and finds nothing to change. Timed from the start to the last service reconciled, then to a quiet CPU."""
    say("restarting the operator into the same objects, as an upgrade would")
    env.operator.stop()
    env.operator.start()
    pid = operator_pid(env)
    t0 = time.monotonic()

    def resumed() -> int | None:
        """The operator's own count of InferenceService reconciles (a fresh process counts from 0)."""
        env.operator.check()
        try:
            text = requests.get(env.operator.metrics_url, timeout=5).text
        except requests.RequestException:
            return None  # not serving its metrics yet
        n = sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "driftline_operator_reconciles_total" and s.labels.get("kind") == "InferenceService"
        )
        return int(n) if n >= MODELS else None

    wait_for(f"{MODELS} services reconciled after the restart", resumed, timeout=600, interval=0.5)
    reconciled = time.monotonic() - t0
    quiet = _quiet_cpu(pid, timeout=QUIET_TIMEOUT)
    mem = rss(pid)
    settled = None if quiet is None else reconciled + quiet - QUIET_WINDOW
    say(f"after the restart: every service reconciled in {reconciled:.1f}s, settled in {settled}s")
    return Restart(reconciled, settled, mem["VmRSS"], mem["VmHWM"])


def _sample(pid: int, samples: list[tuple[float, float]], stop: threading.Event) -> None:
    t0 = time.monotonic()
    while not stop.is_set():
        try:
            samples.append((time.monotonic() - t0, rss(pid)["VmRSS"]))
        except (OSError, KeyError):
            return
        stop.wait(0.5)


def _peer_rss(code: str) -> float:
    """RSS of a fresh interpreter after running `code` (imports), in MB."""
    script = f"{code}\nimport sys, time\nprint('ready', flush=True)\ntime.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise BenchError(f"the peer process failed: {code}")
        time.sleep(0.5)
        return rss(proc.pid)["VmRSS"]
    finally:
        proc.kill()
        proc.wait()


# -- the raw API server ----------------------------------------------------------------------------------------------

REQUESTS_PER_SERVICE = 8


def _raw_client(env: Env, ns: str) -> float:
    """Seconds a plain client takes to make, for 1,000 new services, the requests the operator makes for each on its
    first start: the same bodies (the operator's own Deployment, Service and statuses, renamed), from as many threads
    as the operator's handler threads, into a namespace of services the operator does not watch (it is stopped)."""
    dep = env.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/model-0000-stable")
    svc = env.api.get(f"/api/v1/namespaces/{ns}/services/model-0000")
    isvc = env.api.get(API.format(ns=ns) + "/inferenceservices/model-0000")
    peer_ns = env.namespace("bench-memory-raw")
    path = API.format(ns=peer_ns)
    for i in range(MODELS):
        env.api.create(f"{path}/inferenceservices", _service(f"raw-{i:04d}"))
    local = threading.local()

    def api() -> KubeApi:
        if not hasattr(local, "api"):
            local.api = KubeApi(env.kubeconfig, user_agent=f"{USER_AGENT}-raw")
        return local.api  # type: ignore[no-any-return]

    def one(i: int) -> None:
        name = f"raw-{i:04d}"
        a = api()
        for read in (
            f"/apis/apps/v1/namespaces/{peer_ns}/deployments/{name}-stable",
            f"/api/v1/namespaces/{peer_ns}/services/{name}",
        ):
            a.get_or_none(read)
        a.patch(
            f"/apis/apps/v1/namespaces/{peer_ns}/deployments/{name}-stable?fieldManager=bench-raw&force=true",
            _renamed(dep, peer_ns, name, f"{name}-stable"),
            "apply",
        )
        a.patch(
            f"/api/v1/namespaces/{peer_ns}/services/{name}?fieldManager=bench-raw&force=true",
            _renamed(svc, peer_ns, name, name),
            "apply",
        )
        for phase in ("Progressing", "Ready"):
            status = {**isvc["status"], "phase": phase}
            a.patch(f"{path}/inferenceservices/{name}/status", {"status": status}, "merge")
            event = {
                "metadata": {"generateName": f"{name}-", "namespace": peer_ns},
                "involvedObject": {
                    "apiVersion": isvc["apiVersion"],
                    "kind": "InferenceService",
                    "name": name,
                    "namespace": peer_ns,
                },
                "type": "Normal",
                "reason": "RolledOut" if phase == "Ready" else "RollingOut",
                "message": f"bench: {phase}",
                "source": {"component": "bench-raw"},
            }
            a.create(f"/api/v1/namespaces/{peer_ns}/events", event)

    t0 = time.monotonic()
    with ThreadPoolExecutor(THREADS * 2) as pool:
        for _ in pool.map(one, range(MODELS)):
            pass
    return time.monotonic() - t0


def _renamed(obj: dict[str, Any], ns: str, service: str, name: str) -> dict[str, Any]:
    """`obj` as an apply body under another name: its spec and labels, no server-set fields or owner."""
    body: dict[str, Any] = json.loads(json.dumps(obj))
    meta = body["metadata"]
    labels = {**(meta.get("labels") or {}), c.LABEL_INFERENCE_SERVICE: service}
    body["metadata"] = {"name": name, "namespace": ns, "labels": labels, "annotations": meta.get("annotations") or {}}
    body.pop("status", None)
    spec = body.get("spec") or {}
    for key in ("clusterIP", "clusterIPs"):
        spec.pop(key, None)
    return body


# -- the objects -----------------------------------------------------------------------------------------------------


def _model_version(model: str, version: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{version}"},
        "spec": {
            "model": model,
            "version": version,
            "artifact": {
                "storageUri": f"pvc://models/registry/{model}/v{version}",
                "sha256": hashlib.sha256(f"{model}-{version}".encode()).hexdigest(),
            },
            "metrics": {"accuracy": 0.9 + version / 1000, "f1": 0.9},
            "description": "bench: a registered version",
        },
    }


def _stage(stage: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "status": {
            "stage": stage,
            "reason": "bench",
            "observedGeneration": 1,
            "conditions": [
                {"type": t, "status": v, "reason": r, "message": "", "lastTransitionTime": now}
                for t, v, r in (
                    ("Ready", "True", "Registered"),
                    ("Reconciling", "False", "Reconciled"),
                    ("Stalled", "False", "Reconciled"),
                )
            ],
            **({"promotedAt": now, "promotedBy": "bench"} if stage == "Production" else {}),
        }
    }


def _service(model: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": model},
        "spec": {"model": model, "replicas": 0},
    }


def _populate(env: Env, ns: str) -> None:
    """Every model's versions (status written), then its service, from THREADS clients at once; progress as it goes."""
    path = API.format(ns=ns)
    local = threading.local()
    done = [0]
    lock = threading.Lock()
    total = MODELS * (VERSIONS_PER_MODEL + 1)

    def api() -> KubeApi:
        if not hasattr(local, "api"):
            local.api = KubeApi(env.kubeconfig, user_agent=f"{USER_AGENT}-populate")
        return local.api  # type: ignore[no-any-return]

    def one_model(i: int) -> None:
        model = f"model-{i:04d}"
        for v in range(1, VERSIONS_PER_MODEL + 1):
            api().create(f"{path}/modelversions", _model_version(model, v))
            stage = "Production" if v == VERSIONS_PER_MODEL else "Archived"
            api().patch(f"{path}/modelversions/{model}-v{v}/status", _stage(stage), "merge")
        api().create(f"{path}/inferenceservices", _service(model))
        with lock:
            done[0] += VERSIONS_PER_MODEL + 1
            if (i + 1) % 100 == 0:
                say(f"populated {done[0]}/{total} objects")

    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(one_model, range(MODELS)):
            pass


def _settle(env: Env, ns: str, pid: int) -> Settling:
    """Until every InferenceService has a status for its generation, then is Ready, then until the operator's CPU is
    quiet."""
    path = API.format(ns=ns) + "/inferenceservices"

    def with_status() -> int | None:
        env.operator.check()
        items = env.api.get(path)["items"]
        n = sum(1 for i in items if (i.get("status") or {}).get("observedGeneration") == i["metadata"]["generation"])
        return n if n == MODELS else None

    def ready() -> int | None:
        items = env.api.get(path)["items"]
        n = sum(1 for i in items if (i.get("status") or {}).get("phase") == "Ready")
        return n if n == MODELS else None

    last = [0.0]

    def progress() -> int | None:
        n = with_status()
        if n is None and time.monotonic() - last[0] > 10:
            last[0] = time.monotonic()
            items = env.api.get(path)["items"]
            say(f"{sum(1 for i in items if i.get('status'))}/{MODELS} services have a status")
        return n

    t0 = time.monotonic()
    n = int(wait_for(f"{MODELS} services with a status", progress, timeout=900, interval=1.0))
    statuses = time.monotonic() - t0
    say("every service has a status; waiting for every one to be Ready")
    wait_for(f"{MODELS} services Ready", ready, timeout=900, interval=1.0)
    all_ready = time.monotonic() - t0
    say(f"every service is Ready; waiting up to {QUIET_TIMEOUT:.0f}s for the operator's CPU to go quiet")
    quiet = _quiet_cpu(pid, timeout=QUIET_TIMEOUT)
    return Settling(n, statuses, all_ready, quiet)


@dataclass(frozen=True)
class Settling:
    """Seconds from the operator's start (the bench's first poll) to each mark."""

    services: int
    statuses: float
    ready: float
    quiet: float | None
    """Seconds after `ready` until the first 5 s window in which the operator used under 5 % of a core ended."""

    @property
    def settled(self) -> float | None:
        """Start to settled: every service Ready and no work left (the quiet window's start)."""
        return None if self.quiet is None else self.ready + self.quiet - QUIET_WINDOW


def _quiet_cpu(pid: int, timeout: float, window: float = QUIET_WINDOW, share: float = 0.05) -> float | None:
    """Seconds until the process used under `share` of a core over `window`; None if it never did in `timeout`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        before = cpu_seconds(pid)
        time.sleep(window)
        if (cpu_seconds(pid) - before) / window < share:
            return time.monotonic() - t0
    return None
