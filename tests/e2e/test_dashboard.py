"""The chart's Grafana dashboards against a real Prometheus (Debian's) scraping a live service: every panel's query,
every annotation and every template variable returns data.

Prometheus scrapes what the chart's ServiceMonitor and PodMonitor would give it: the operator's /metrics, and each
serving pod's under the labels the PodMonitor's relabelings set (namespace, pod, inferenceservice, track). A client
sends requests meanwhile (some malformed: 4xx), drift is read every 2 s, and a rollback request is refused (a
decision after the scraping began).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from driftline.devcluster.prometheus import PrometheusServer
from tests.conftest import Cluster
from tests.e2e.conftest import pvc
from tests.e2e.test_serving import DIS, PORT, Client, inferenceservice, ready_at, train
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e
DASHBOARDS = sorted((Path(__file__).resolve().parents[2] / "charts" / "driftline" / "dashboards").glob("*.json"))
# What Grafana puts for its own variables: $__rate_interval is at least four scrape intervals.
GRAFANA = {"$__rate_interval": "1m", "$__range": "10m"}


def queries(dashboard: dict[str, Any], namespace: str, service: str) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target, annotation and query variable, with the variables filled in as
    Grafana fills them; a variable's label_values(metric, label) becomes the query Grafana sends for it."""
    values = {**GRAFANA, "$namespace": namespace, "$service": service}

    def fill(expr: str) -> str:
        for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
            expr = expr.replace(name, value)
        return expr

    out = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            out.append((f"panel {panel['title']!r} {target['refId']}", fill(target["expr"])))
    for note in dashboard["annotations"]["list"]:
        out.append((f"annotation {note['name']!r}", fill(note["expr"])))
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            metric, label = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"]["query"]).groups()  # type: ignore[union-attr]
            out.append((f"variable {var['name']}", fill(f"group by ({label}) ({metric})")))
    return out


@pytest.fixture
def live(cluster: Cluster, namespace: str, operator: OperatorProcess) -> Iterator[tuple[str, PrometheusServer]]:
    """A served model with drift watched, a client sending requests, and Prometheus scraping it all."""
    pvc(cluster, namespace)
    assert train(cluster, namespace, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    drift = {"scrapeInterval": "2s", "minSamples": 10, "window": {"size": 50}}
    cluster.api.create(DIS.format(ns=namespace), inferenceservice("dash", drift=drift))
    cluster.wait_for("dash Ready on v1", ready_at(cluster, namespace, "dash", 1), timeout=120)
    server = PrometheusServer(cluster.dir / "prometheus-dashboard").start()
    stop = threading.Event()
    operator_target = operator.metrics_url.removeprefix("http://").removesuffix("/metrics")

    def follow() -> None:
        while not stop.is_set():
            try:
                pods = cluster.api.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector="driftline.dev/track")
                targets = [(operator_target, {"job": "driftline-operator"})]
                for p in pods["items"]:
                    if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp"):
                        labels = p["metadata"]["labels"]
                        targets.append(
                            (
                                f"{p['status']['podIP']}:{PORT}",
                                {
                                    "job": "driftline-model-servers",
                                    "namespace": namespace,
                                    "pod": p["metadata"]["name"],
                                    "inferenceservice": labels["driftline.dev/inferenceservice"],
                                    "track": labels["driftline.dev/track"],
                                },
                            )
                        )
                server.set_targets(targets)
            except Exception:  # the API server is busy: try again
                pass
            stop.wait(0.5)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        with Client(cluster, namespace, "dash") as client:
            cluster.wait_for("requests answered", lambda: client.answered(1, ok=True) >= 100, timeout=60)
            (pod,) = [
                p
                for p in cluster.api.get(f"/api/v1/namespaces/{namespace}/pods")["items"]
                if "dash" in p["metadata"]["name"]
            ]
            bad = f"http://{pod['status']['podIP']}:{PORT}/v2/models/breast-cancer/infer"
            for _ in range(5):  # malformed requests: 400s, for the errors panel
                requests.post(bad, data="{not json", timeout=5, proxies={"http": ""})
            # A decision after Prometheus began scraping: a rollback with nothing to return to, refused.
            cluster.api.patch(
                f"{DIS.format(ns=namespace)}/dash",
                {"metadata": {"annotations": {"driftline.dev/rollback": "now"}}},
                "merge",
            )
            time.sleep(8)  # a few scrapes of all of it
            yield namespace, server
    finally:
        stop.set()
        follower.join(timeout=5)
        server.stop()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_annotation_and_variable_returns_data(live: tuple[str, PrometheusServer], path: Path) -> None:
    namespace, server = live
    dashboard = json.loads(path.read_text())
    empty = []
    for where, expr in queries(dashboard, namespace, "dash"):
        answer = requests.get(f"{server.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", (where, expr, answer)
        if not answer["data"]["result"]:
            empty.append(f"{where}: {expr}")
    assert empty == [], "\n".join(empty)
