"""The metric providers against a local HTTP server: a pod's /metrics, and Prometheus' instant-query API."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from driftline.metrics import pods, prometheus

pytestmark = pytest.mark.unit

METRICS = """# TYPE driftline_inference_requests_total counter
driftline_inference_requests_total{model="m",version="2",protocol="v2",code="200"} 9.0
driftline_inference_requests_total{model="m",version="2",protocol="v2",code="400"} 1.0
"""


class Canned:
    """What the fake server answers: a status and a body per path."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, str]] = {}
        self.queries: list[str] = []


@pytest.fixture
def server() -> Iterator[tuple[str, int, Canned]]:
    canned = Canned()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            canned.queries.extend(parse_qs(url.query).get("query", []))
            code, body = canned.answers.get(url.path, (404, "not found"))
            self.send_response(code)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_address[1], canned
    httpd.shutdown()
    httpd.server_close()


def test_scrape_reads_a_pods_counters(server: tuple[str, int, Canned]) -> None:
    host, port, canned = server
    canned.answers["/metrics"] = (200, METRICS)
    got = pods.scrape(host, port)
    assert (got.requests, got.errors) == (10, 1)
    counters, errors = pods.scrape_all({"uid-a": host}, port)
    assert list(counters) == ["uid-a"] and errors == []


def test_scrape_failures_are_named(server: tuple[str, int, Canned]) -> None:
    host, port, canned = server
    canned.answers["/metrics"] = (500, "boom")
    with pytest.raises(pods.ScrapeError, match="500"):
        pods.scrape(host, port)
    canned.answers["/metrics"] = (200, "not { prometheus")
    with pytest.raises(pods.ScrapeError):
        pods.scrape(host, port)
    counters, errors = pods.scrape_all({"a": host}, port)
    assert counters == {} and len(errors) == 1 and f"{host}:{port}/metrics" in errors[0]


def test_ready_pods_are_ready_addressed_and_not_terminating() -> None:
    def pod(uid: str, ready: bool, ip: str | None, deleting: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"uid": uid, **({"deletionTimestamp": "t"} if deleting else {})}
        status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}], "podIP": ip}
        return {"metadata": meta, "status": status}

    found = pods.ready_pods(
        [pod("a", True, "10.0.0.1"), pod("b", False, "10.0.0.2"), pod("c", True, None), pod("d", True, "1", True)]
    )
    assert found == {"a": "10.0.0.1"}


def answer(result_type: str, result: Any) -> str:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}})


def test_prometheus_query_returns_the_one_number(server: tuple[str, int, Canned]) -> None:
    host, port, canned = server
    url = f"http://{host}:{port}"
    canned.answers["/api/v1/query"] = (200, answer("vector", [{"metric": {}, "value": [1.0, "0.25"]}]))
    q = prometheus.render_query('rate(x{ns="{{namespace}}",v="{{version}}"}[1m])', {"namespace": "n", "version": "3"})
    assert q == 'rate(x{ns="n",v="3"}[1m])'
    assert prometheus.query(url, q) == 0.25
    assert canned.queries[-1] == q
    canned.answers["/api/v1/query"] = (200, answer("scalar", [1.0, "NaN"]))
    assert math.isnan(prometheus.query(url, "x"))  # passed on: the analysis judges NaN an Error


@pytest.mark.parametrize(
    ("code", "body", "match"),
    [
        (200, answer("vector", []), "returned 0 series"),
        (200, answer("vector", [{"value": [1, "1"]}, {"value": [1, "2"]}]), "returned 2 series"),
        (200, answer("matrix", []), "must return one number"),
        (400, json.dumps({"status": "error", "error": "parse error"}), "parse error"),
        (200, "<html>", "Expecting value"),
        (200, answer("scalar", [1.0, "many"]), "could not convert"),
    ],
)
def test_prometheus_query_errors_are_named(server: tuple[str, int, Canned], code: int, body: str, match: str) -> None:
    host, port, canned = server
    canned.answers["/api/v1/query"] = (code, body)
    with pytest.raises(prometheus.QueryError, match=match):
        prometheus.query(f"http://{host}:{port}", "up")


def test_prometheus_unreachable_is_a_query_error() -> None:
    with pytest.raises(prometheus.QueryError):
        prometheus.query("http://127.0.0.1:9", "up", timeout=0.5)


class Hostile:
    """How the hostile server answers next: "trickle", "headers", "endless" or "declared"."""

    mode = "trickle"


@pytest.fixture
def hostile() -> Iterator[tuple[str, int, Hostile]]:
    """A server that answers as a tenant's might: a byte at a time, without end, or declaring 100 MiB."""
    how = Hostile()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the connection does

        def do_GET(self) -> None:
            if how.mode == "headers":  # a header line a byte at a time: within every per-read timeout, for 30 s
                try:
                    self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
                    for _ in range(300):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        time.sleep(0.1)
                except OSError:
                    pass
                return
            self.send_response(200)
            if how.mode == "declared":
                self.send_header("Content-Length", str(100 * 1024 * 1024))
            elif how.mode == "trickle":
                self.send_header("Content-Length", "10000")
            self.end_headers()
            try:
                if how.mode == "trickle":
                    for _ in range(300):  # 30 s, far past any deadline
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.1)
                elif how.mode == "endless":
                    for _ in range(100):  # 100 MiB
                        self.wfile.write(b"y" * 1024 * 1024)
            except OSError:  # the client hung up: what the test wants
                return

        def log_message(self, *_: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield "127.0.0.1", httpd.server_address[1], how
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("mode", ["trickle", "headers"])
def test_a_trickling_answer_is_abandoned_at_the_deadline_not_per_read(
    hostile: tuple[str, int, Hostile], mode: str
) -> None:
    # Each byte arrives well within any per-read timeout: requests alone read this for 30 s, its body or its head.
    host, port, how = hostile
    how.mode = mode
    for read in (
        lambda: pods.fetch(host, port, timeout=1.0),
        lambda: prometheus.query(f"http://{host}:{port}", "up", timeout=1.0),
    ):
        started = time.monotonic()
        with pytest.raises((pods.ScrapeError, prometheus.QueryError), match="no whole answer within 1s"):
            read()
        assert time.monotonic() - started < 3.0


def test_a_short_deadline_fires_on_time_behind_a_long_one(hostile: tuple[str, int, Hostile]) -> None:
    # The watchdog sleeps towards its earliest deadline and is woken only for an earlier one: a 1 s read started
    # while a 4 s one is pending must still be cut at 1 s.
    host, port, how = hostile
    how.mode = "trickle"

    def slow_read() -> None:
        with pytest.raises(pods.ScrapeError):
            pods.fetch(host, port, timeout=4.0)

    slow = threading.Thread(target=slow_read)
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    with pytest.raises(prometheus.QueryError, match="no whole answer within 1s"):
        prometheus.query(f"http://{host}:{port}", "up", timeout=1.0)
    assert time.monotonic() - started < 2.0
    slow.join()


@pytest.mark.parametrize("mode", ["endless", "declared"])
def test_an_answer_larger_than_the_cap_is_refused_without_holding_it(
    hostile: tuple[str, int, Hostile], mode: str
) -> None:
    host, port, how = hostile
    how.mode = mode
    with pytest.raises(pods.ScrapeError, match=f"more than the {pods.MAX_BYTES} bytes allowed"):
        pods.fetch(host, port, timeout=10.0)
    with pytest.raises(prometheus.QueryError, match=f"{prometheus.MAX_BYTES} bytes allowed"):
        prometheus.query(f"http://{host}:{port}", "up", timeout=10.0)


def test_a_prometheus_off_the_allow_list_is_refused_before_any_connection(server: tuple[str, int, Canned]) -> None:
    host, port, canned = server
    canned.answers["/api/v1/query"] = (200, json.dumps({"status": "success", "data": {"resultType": "scalar"}}))
    with pytest.raises(prometheus.QueryError, match="not on the operator's list"):
        prometheus.query(f"http://{host}:{port}", "up", allowed=["http://prometheus-operated.monitoring.svc:9090"])
    assert canned.queries == []
    with pytest.raises(prometheus.QueryError, match="returned"):  # listed: asked (and its answer judged)
        prometheus.query(f"http://{host}:{port}", "up", allowed=[f"http://{host}:{port}"])
    assert canned.queries == ["up"]
