"""The drift loop at scale: 500 InferenceServices (`replicas: 0`, one model's Production version) each reading drift
from a real Prometheus every 10 s, in steady state. What the operator's process pays for it, in CPU share of one core
and RSS, and whether every reading came on time.

- **operator**: its CPU time (utime + stime from /proc) over a minute of steady state, once every service has had a
  reading and the readings have spread out; divided by the minute. Every reading is counted, with its delay after it
  was due, by the operator's `driftline_operator_drift_reading_delay_seconds` histogram; the requests that carried
  them by Prometheus itself (its `prometheus_http_requests_total` for /api/v1/query): readings due together go as one
  batched request (handlers/prometheus_batches.py).
- **peer: a plain client** (the floor): the same queries at the same rate from one thread of this process with one
  urllib3 pool (kept-alive connections), each answer decoded and nothing else (no deadline, no decision, no status),
  its CPU time by time.thread_time(). The ratio says what the operator pays beyond the HTTP request itself.

The query is real PromQL over Prometheus' own series, with the service's name in it, so each service asks its own
question: `0.05 + 0 * count(up{job="{{name}}"} or vector(0))`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from typing import Any

import requests
import urllib3
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import Env, Result, Row, cpu_seconds, load_average, operator_pid, rss, say, wait_for
from driftline.api import constants as c
from driftline.devcluster.prometheus import PrometheusServer

NAME = "driftloop"
DESCRIPTION = "500 InferenceServices reading drift from a real Prometheus every 10 s: the operator's CPU and RSS"
DEFAULT_TRIALS = 1
SERVICES = 500
INTERVAL_S = 10
STEADY_S = 60.0
TARGET_CPU_PERCENT = 3.0
MODEL = "bench-drift"
QUERY = '0.05 + 0 * count(up{job="{{name}}"} or vector(0))'
API = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{{ns}}"


def run(env: Env, trials: int | None = None) -> Result:
    prom = PrometheusServer(env.cluster.dir / "bench-driftloop-prometheus", scrape_interval="15s").start()
    try:
        return _run(env, prom)
    finally:
        prom.stop()


def _run(env: Env, prom: PrometheusServer) -> Result:
    ns = env.namespace("bench-driftloop")
    path = API.format(ns=ns)
    env.api.create(f"{path}/modelversions", _model_version())
    env.api.patch(f"{path}/modelversions/{MODEL}-v1/status", {"status": {"stage": "Production"}}, "merge")
    t0 = time.monotonic()
    for i in range(SERVICES):
        env.api.create(f"{path}/inferenceservices", _service(f"svc-{i:03d}", prom.url))
    say(f"{SERVICES} InferenceServices made in {time.monotonic() - t0:.0f}s; waiting for a drift reading on each")

    def read_once() -> int | None:
        env.operator.check()
        items = env.api.get(f"{path}/inferenceservices")["items"]
        n = sum(1 for i in items if ((i.get("status") or {}).get("drift") or {}).get("assessment") == "Ok")
        return n if n == SERVICES else None

    wait_for(f"{SERVICES} services with an Ok drift reading", read_once, timeout=600, interval=2.0)
    say(f"every service has read its drift; {INTERVAL_S * 2}s more for the readings to spread out")
    time.sleep(INTERVAL_S * 2)

    pid = operator_pid(env)
    queries0, delays0 = prom.instant_queries(), _delays(env.operator.metrics_url)
    cpu0, t_start = cpu_seconds(pid), time.monotonic()
    time.sleep(STEADY_S)
    cpu1, span = cpu_seconds(pid), time.monotonic() - t_start
    queries1, delays1 = prom.instant_queries(), _delays(env.operator.metrics_url)
    rss_mb = rss(pid)["VmRSS"]
    requests_made = queries1 - queries0
    readings = delays1.get("+Inf", 0) - delays0.get("+Inf", 0)
    expected = SERVICES * span / INTERVAL_S
    share = 100 * (cpu1 - cpu0) / span
    per_reading_ms = 1000 * (cpu1 - cpu0) / max(1, readings)

    say("the peer: the same queries from a plain client, one kept-alive session")
    peer_share, peer_count = _plain_client(prom.url, span)

    late = {b: delays1.get(b, 0) - delays0.get(b, 0) for b in delays1}
    total = late.get("+Inf", 0)
    within_1s = late.get("1.0", 0)
    rows = [
        Row("peer: plain client, same queries (CPU % of a core)", [peer_share], baseline=True),
        Row(f"operator, {SERVICES} services every {INTERVAL_S}s (CPU % of a core)", [share], target=TARGET_CPU_PERCENT),
    ]
    notes = [
        f"target <= {TARGET_CPU_PERCENT:g} % of a core: {share:.2f} % "
        f"({'met' if share <= TARGET_CPU_PERCENT else 'MISSED'}); {per_reading_ms:.2f} ms of operator CPU per "
        f"reading; the plain client {1000 * peer_share * span / 100 / max(1, peer_count):.2f} ms per query",
        f"readings over {span:.0f}s: {readings:.0f} taken, {expected:.0f} due ({100 * readings / expected:.0f} %), "
        f"in {requests_made} requests to Prometheus ({readings / max(1, requests_made):.1f} readings a request); "
        f"started within 1 s of being due: {within_1s:.0f} of {total:.0f}",
        f"operator RSS {rss_mb:.1f} MB with {SERVICES} services watching drift",
        f"{load_average()} at the end",
    ]
    extra: dict[str, Any] = {
        "services": SERVICES,
        "interval_s": INTERVAL_S,
        "span_s": round(span, 1),
        "operator_cpu_percent": round(share, 3),
        "operator_cpu_ms_per_reading": round(per_reading_ms, 3),
        "peer_cpu_percent": round(peer_share, 3),
        "readings": readings,
        "prometheus_requests": requests_made,
        "readings_due": round(expected),
        "delay_buckets": late,
        "operator_rss_mb": rss_mb,
    }
    return Result(NAME, rows, notes, extra, unit="%")


def _model_version() -> dict[str, Any]:
    return {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"{MODEL}-v1"},
        "spec": {
            "model": MODEL,
            "version": 1,
            "artifact": {"storageUri": f"pvc://models/registry/{MODEL}/v1", "sha256": "0" * 64},
        },
    }


def _service(name: str, prometheus_url: str) -> dict[str, Any]:
    drift = {
        "metric": "psi",
        "threshold": 0.25,
        "scrapeInterval": f"{INTERVAL_S}s",
        "action": "Alert",
        "source": {"prometheus": {"url": prometheus_url, "query": QUERY}},
    }
    return {
        "apiVersion": f"{c.GROUP}/{c.VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"model": MODEL, "replicas": 0, "drift": drift},
    }


def _delays(metrics_url: str) -> dict[str, float]:
    """The operator's reading-delay histogram: cumulative count per bucket bound."""
    text = requests.get(metrics_url, timeout=10).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "driftline_operator_drift_reading_delay_seconds_bucket":
                out[sample.labels["le"]] = sample.value
    return out


def _plain_client(url: str, span: float) -> tuple[float, int]:
    """The same queries at the same rate from one thread with one urllib3 pool (kept-alive connections), decoding
    each answer and nothing else: (CPU % of a core, queries)."""
    result: list[float] = []
    count = [0]

    def client() -> None:
        pool = urllib3.PoolManager()
        start_cpu, start = time.thread_time(), time.monotonic()
        gap = INTERVAL_S / SERVICES
        i = 0
        while (now := time.monotonic()) - start < span:
            due = start + i * gap
            if due > now:
                time.sleep(due - now)
            name = f"svc-{i % SERVICES:03d}"
            query = urllib.parse.urlencode({"query": QUERY.replace("{{name}}", name)})
            json.loads(pool.request("GET", f"{url}/api/v1/query?{query}", timeout=5).data)
            count[0] += 1
            i += 1
        result.append(100 * (time.thread_time() - start_cpu) / (time.monotonic() - start))

    thread = threading.Thread(target=client)
    thread.start()
    thread.join()
    return result[0], count[0]
