"""A real Prometheus (Debian's, from `make prometheus`) scraping a loopback target, read by the operator's provider.

No Kubernetes here: the target is a prometheus_client server in this process, labelled the way the drift loop's
scrape configuration labels an InferenceService's pods.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, start_http_server

from driftline.devcluster.prometheus import PrometheusServer
from driftline.handlers import monitors, prometheus_batches, watches
from driftline.k8s import cache
from driftline.metrics.prometheus import QueryError, query, query_kind, query_many
from driftline.metrics.query_batch import Kind

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


def test_a_batch_answers_each_query_as_it_would_alone_in_one_request(prometheus: PrometheusServer) -> None:
    queries = [
        ('sum(up{job="nothing-here"} or vector(0)) + 0.25', Kind.VECTOR),
        ("0.5 * 3", Kind.SCALAR),
        ('up{job="nothing-here"}', Kind.VECTOR),
        ('label_replace(vector(1), "a", "x", "", "") or label_replace(vector(2), "a", "y", "", "")', Kind.VECTOR),
        ("vector(NaN)", Kind.VECTOR),
    ]
    before = prometheus.instant_queries()
    out = query_many(prometheus.url, queries)
    assert prometheus.instant_queries() - before == 1
    assert out[0] == 0.25 and out[1] == 1.5 and math.isnan(float(out[4]))  # type: ignore[arg-type]
    for i, n in ((2, 0), (3, 2)):
        assert isinstance(out[i], QueryError)
        with pytest.raises(QueryError) as alone:
            query(prometheus.url, queries[i][0])
        assert str(out[i]) == str(alone.value) and f"returned {n} series" in str(alone.value)
    # Alone, each query says its kind, which is what lets it into a batch.
    assert query_kind(prometheus.url, "0.5 * 3") == (1.5, Kind.SCALAR)
    assert query_kind(prometheus.url, queries[0][0]) == (0.25, Kind.VECTOR)


def test_one_bad_query_fails_its_batch_and_the_batcher_asks_each_alone(prometheus: PrometheusServer) -> None:
    good = [f'sum(up{{job="svc-{i}"}} or vector(0)) + {i}' for i in range(8)]
    with pytest.raises(QueryError, match="HTTP 400"):
        query_many(prometheus.url, [(q, Kind.VECTOR) for q in [*good, "sum(("]])

    async def read_all() -> list[float | str]:
        async def one(promql: str) -> float | str:
            try:
                return (await prometheus_batches.BATCHES.value(prometheus.url, "ns", promql, Kind.VECTOR))[0]
            except QueryError as e:
                return str(e)

        return await asyncio.gather(*(one(q) for q in [*good, "sum(("]))

    before = prometheus.instant_queries()
    out = asyncio.run(read_all())
    assert out[:8] == [float(i) for i in range(8)]
    assert isinstance(out[8], str) and "HTTP 400" in out[8] and "parse error" in out[8]
    assert prometheus.instant_queries() - before == 1 + 9  # the failed batch, then each alone

    before = prometheus.instant_queries()
    good_only = asyncio.run(_gather(prometheus, good))  # each query answered alone once: batched from now on
    assert good_only == [float(i) for i in range(8)]
    assert prometheus.instant_queries() - before == 1


async def _gather(prometheus: PrometheusServer, queries: list[str]) -> list[float]:
    answers = await asyncio.gather(
        *(prometheus_batches.BATCHES.value(prometheus.url, "ns", q, Kind.VECTOR) for q in queries)
    )
    return [value for value, _ in answers]


def test_batches_never_mix_namespaces_or_servers(prometheus: PrometheusServer) -> None:
    async def read() -> list[tuple[float, Kind]]:
        namespaces = ["a", "a", "b", "b", "b"]
        batches = prometheus_batches.BATCHES
        return await asyncio.gather(
            *(batches.value(prometheus.url, ns, f"vector({i})", Kind.VECTOR) for i, ns in enumerate(namespaces))
        )

    before = prometheus.instant_queries()
    assert [v for v, _ in asyncio.run(read())] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert prometheus.instant_queries() - before == 2


def _watched_service(url: str, status: dict[str, Any]) -> dict[str, Any]:
    source = {"prometheus": {"url": url, "query": "vector(0.05)"}}
    drift = {"threshold": 0.25, "scrapeInterval": "10s", "source": source}
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"namespace": "ns", "name": "svc", "uid": "u1", "resourceVersion": "1", "generation": 1},
        "spec": {"model": "m", "drift": drift},
        "status": {"activeVersion": 1, "phase": "Ready", "conditions": [], **status},
    }


def test_a_reading_that_changes_nothing_is_settled_on_the_event_loop(
    prometheus: PrometheusServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The steady state of a watched service: asked in a batch, judged on the loop, nothing written; a reading that
    must write goes to a reading thread with the number already read (Prometheus is not asked twice)."""
    view = cache.Cache()
    view.prime("ns", [])
    monkeypatch.setattr(watches, "VIEW", view)
    handed: list[tuple[str, Any]] = []

    def read_and_act(namespace: str, name: str, key: str = "drift", given: Any = None) -> tuple[float, bool]:
        handed.append((threading.current_thread().name, given))
        return 10.0, False

    monkeypatch.setattr(monitors, "read_and_act", read_and_act)
    view.services.put(_watched_service(prometheus.url, {}))  # never read: its first reading writes its status
    asked = monitors._Asked()
    before = prometheus.instant_queries()
    assert asyncio.run(monitors._reading("ns", "svc", "drift", asked)) == (10.0, False)
    ((thread, (version, reading)),) = handed
    assert thread.startswith("reading") and version == 1 and reading.score == 0.05 and not reading.error
    assert prometheus.instant_queries() - before == 1

    # Its status as that reading wrote it: the next reading changes nothing, and is settled where it was read.
    planned = monitors._plan("ns", "svc", "drift", (1, reading))
    assert isinstance(planned, monitors._Planned) and planned.patch is not None
    body = _watched_service(prometheus.url, planned.patch)
    body["metadata"]["resourceVersion"] = "2"
    view.services.put(body)
    assert asyncio.run(monitors._reading("ns", "svc", "drift", asked)) == (10.0, False)
    assert len(handed) == 1 and asked.kind is Kind.VECTOR  # batched from now on
    score = REGISTRY.get_sample_value(
        "driftline_operator_drift_score", {"namespace": "ns", "inferenceservice": "svc", "method": "psi"}
    )
    assert score == 0.05
