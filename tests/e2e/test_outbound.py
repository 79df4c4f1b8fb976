"""What a tenant's Prometheus URL can make the operator do, on the real control plane: read only a server on the
operator's list, each answer within its deadline and size cap, on the readings' own threads, while every other
service's reconcile goes on. Against a server that answers as a hostile tenant's would."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from driftline.metrics import prometheus
from tests.conftest import Cluster
from tests.e2e.conftest import pvc, run_operator
from tests.e2e.test_drift import drift_of, drift_spec
from tests.e2e.test_serving import DIS, inferenceservice, ready_at, train
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e

SLOW, HUGE = 5, 2
"""Services whose Prometheus trickles its answer's head, and whose answer never ends: more slow ones than the
operator has reading threads (4), so readings queue behind them."""
STALL_SECONDS = 60


@dataclass
class TenantServer:
    """A tenant's 'Prometheus': /slow sends a header line a byte at a time, /huge 200 MiB without a length, /good one
    number; every path's hits counted by its first segment."""

    url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    held: list[float] = field(default_factory=list)
    """Seconds until the operator hung up on each /slow answer (STALL_SECONDS: it never did)."""


@pytest.fixture(scope="module")
def tenant() -> Iterator[TenantServer]:
    server = TenantServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the connection does

        def do_GET(self) -> None:
            kind = self.path.strip("/").split("/")[0]
            server.hits[kind] += 1
            if kind == "slow":
                started = time.monotonic()
                try:
                    self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
                    for _ in range(STALL_SECONDS * 5):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        time.sleep(0.2)
                except OSError:
                    server.held.append(time.monotonic() - started)
                    return
                server.held.append(STALL_SECONDS)
                return
            try:
                if kind == "huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"status": "success", "data": {"resultType": "scalar", "result": [0, "')
                    for _ in range(200):
                        self.wfile.write(b"9" * 1024 * 1024)
                else:
                    body = json.dumps({"status": "success", "data": {"resultType": "scalar", "result": [0, "0.01"]}})
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body.encode())
            except OSError:  # the operator hung up: what the test wants of it
                return

        def log_message(self, *_: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crds: None, tenant: TenantServer) -> Iterator[OperatorProcess]:
    """The operator as the chart runs it: with a list of the Prometheus servers tenants may name (three paths of the
    tenant's server, not /off)."""
    allowed = ",".join(f"{tenant.url}/{kind}" for kind in ("slow", "huge", "good"))
    proc = run_operator(cluster, "operator-outbound.log", {"DRIFTLINE_ALLOWED_PROMETHEUS_URLS": allowed})
    yield proc
    proc.stop()


def watched(name: str, url: str) -> dict[str, Any]:
    source = {"prometheus": {"url": url, "query": "driftline_feature_drift"}}
    spec = drift_spec("Alert", scrapeInterval="1s", consecutiveErrorLimit=2, source=source)
    return inferenceservice(name, drift=spec)


def memory_kib(pid: int) -> dict[str, int]:
    """The process' resident set now and at its peak (VmRSS, VmHWM), in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


def up(cluster: Cluster, ns: str, body: dict[str, Any]) -> float:
    """Create a service and wait until it serves v1: the seconds that took."""
    started = time.monotonic()
    cluster.api.create(DIS.format(ns=ns), body)
    cluster.wait_for(f"{body['metadata']['name']} Ready on v1", ready_at(cluster, ns, body["metadata"]["name"], 1), 180)
    return time.monotonic() - started


def errors_reached(cluster: Cluster, ns: str, names: list[str], errors: int) -> Any:
    def check() -> dict[str, dict[str, Any]] | None:
        seen = {n: drift_of(cluster, ns, n) for n in names}
        return seen if all((d.get("consecutiveErrors") or 0) >= errors for d in seen.values()) else None

    return check


def test_a_tenants_prometheus_is_read_only_if_listed_within_its_deadline_and_cap_and_holds_up_no_one(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tenant: TenantServer
) -> None:
    # Once: a tenant's Prometheus URL made the operator GET any host and port; a slow server held a read for 30 s
    # against a 5 s timeout, a 100 MiB body took the operator from 27 to 328 MiB, and readings shared a small pool
    # with every reconcile.
    ns = namespace
    pvc(cluster, ns)
    assert train(cluster, ns, "lr", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}) == 1
    alone = up(cluster, ns, watched("good", f"{tenant.url}/good"))
    reading = cluster.wait_for("good read", lambda: (d := drift_of(cluster, ns, "good")).get("score") is not None and d)
    assert reading["score"] == pytest.approx(0.01) and not reading.get("consecutiveErrors"), reading
    assert operator.proc is not None
    before = memory_kib(operator.proc.pid)

    hostile = [f"slow-{i}" for i in range(SLOW)] + [f"huge-{i}" for i in range(HUGE)]
    for name in hostile:
        cluster.api.create(DIS.format(ns=ns), watched(name, f"{tenant.url}/{name.split('-')[0]}"))
    cluster.wait_for("a failed reading of each hostile service", errors_reached(cluster, ns, hostile, 1), 240)
    # Every reading thread is now held by a slow server: a new service still comes up, as the first one did.
    beside = up(cluster, ns, inferenceservice("beside"))
    seen = cluster.wait_for("each hostile service Degraded", errors_reached(cluster, ns, hostile, 2), 120)
    for name, d in seen.items():
        want = (
            f"no whole answer within {prometheus.TIMEOUT_SECONDS:g}s"
            if name.startswith("slow")
            else f"more than the {prometheus.MAX_BYTES} bytes allowed"
        )
        assert want in d["message"], (name, d)
    peak = memory_kib(operator.proc.pid)["VmHWM"]

    # Off the list: refused before any connection.
    off = {"spec": {"drift": {"source": {"prometheus": {"url": f"{tenant.url}/off"}}}}}
    cluster.api.patch(f"{DIS.format(ns=ns)}/good", off, "merge")

    def refused_reading() -> dict[str, Any] | None:
        d = drift_of(cluster, ns, "good")
        return d if d.get("consecutiveErrors") and "not on the operator's list" in d.get("message", "") else None

    refused = cluster.wait_for("good's source refused", refused_reading, timeout=60)
    assert f"{tenant.url}/off is not on the operator's list" in refused["message"]
    assert tenant.hits["off"] == 0 and tenant.hits["slow"] >= SLOW and tenant.hits["huge"] >= HUGE, tenant.hits
    # Each slow answer was given up at its deadline, whatever part of it trickled (here its head), not when it ended.
    assert len(tenant.held) >= SLOW and max(tenant.held) < 3 * prometheus.TIMEOUT_SECONDS, tenant.held

    grown = (peak - before["VmRSS"]) / 1024
    print(
        f"\noutbound: {SLOW} slow and {HUGE} huge Prometheus answers ({tenant.hits['slow']} + {tenant.hits['huge']}"
        f" read): operator RSS {before['VmRSS'] / 1024:.0f} MiB -> peak {peak / 1024:.0f} MiB (+{grown:.0f} MiB);"
        f" a service up in {alone:.1f}s alone, {beside:.1f}s beside them; slow answers given up after"
        f" {min(tenant.held):.1f}-{max(tenant.held):.1f}s"
    )
    assert grown < 64, f"the operator grew by {grown:.0f} MiB reading answers capped at 1 MiB"
