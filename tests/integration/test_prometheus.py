"""A real Prometheus (Debian's, from `make prometheus`) scraping a loopback target, read by the operator's provider.

No Kubernetes here: the target is a prometheus_client server in this process, labelled the way the drift loop's
scrape configuration labels an InferenceService's pods.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from driftline.devcluster.prometheus import PrometheusServer
from driftline.metrics.prometheus import QueryError, query

pytestmark = pytest.mark.integration

PROMQL = 'max(driftline_drift_score{namespace="ns",inferenceservice="svc",method="psi"})'
LABELS = {"namespace": "ns", "inferenceservice": "svc"}


class Target:
    """A /metrics endpoint on 127.0.0.1 with one drift-score gauge."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.score = Gauge(
            "driftline_drift_score", "drift score", ["method", "model", "version"], registry=self.registry
        ).labels(method="psi", model="m", version="1")
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # The provider's requests session honours the environment; a global HTTP proxy must not catch 127.0.0.1.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target()
    try:
        yield t
    finally:
        t.close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    with PrometheusServer(tmp_path_factory.mktemp("prometheus")) as prom:
        yield prom


def wait_for_value(url: str, promql: str, expected: float, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = query(url, promql)
            if math.isclose(float(last), expected):
                return float(last)
        except QueryError as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{promql} did not become {expected} within {timeout:.0f}s; last: {last!r}")


def wait_for_nothing(url: str, promql: str, timeout: float = 10.0) -> QueryError:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = query(url, promql)
        except QueryError as e:
            return e
        time.sleep(0.2)
    raise AssertionError(f"{promql} still returns {last!r} after {timeout:.0f}s")


def test_scrapes_labelled_target_and_follows_its_value(prometheus: PrometheusServer, target: Target) -> None:
    assert (prometheus.dir / "prometheus.yml").is_file()
    target.score.set(0.42)
    prometheus.set_targets([(target.address, LABELS)])
    assert wait_for_value(prometheus.url, PROMQL, 0.42) == pytest.approx(0.42)
    # The target labels are attached next to the metric's own and the job's.
    assert query(prometheus.url, 'count(driftline_drift_score{job="driftline-pods",model="m",version="1"})') == 1.0

    target.score.set(0.07)
    assert wait_for_value(prometheus.url, PROMQL, 0.07) == pytest.approx(0.07)


def test_query_matching_nothing_raises(prometheus: PrometheusServer, target: Target) -> None:
    with pytest.raises(QueryError, match="0 series"):
        query(prometheus.url, 'max(driftline_drift_score{namespace="ns",inferenceservice="absent"})')

    # A target that goes away leaves nothing to query once Prometheus marks its series stale.
    target.score.set(0.5)
    prometheus.set_targets([(target.address, LABELS)])
    wait_for_value(prometheus.url, PROMQL, 0.5)
    prometheus.set_targets([])
    assert "0 series" in str(wait_for_nothing(prometheus.url, PROMQL))


def test_server_lifecycle(tmp_path: Path) -> None:
    prom = PrometheusServer(tmp_path / "p").start()
    try:
        assert prom.running()
        assert query(prom.url, "vector(1)") == 1.0
    finally:
        prom.stop()
    assert not prom.running()
    prom.stop()  # idempotent
    with pytest.raises(ValueError, match="invalid target label"):
        prom.set_targets([("127.0.0.1:1", {"bad-name": "x"})])
