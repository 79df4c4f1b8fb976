"""The local cluster's Services: which pods each ClusterIP port forwards to (podrunner/services.routes)."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.devcluster.podrunner.services import routes

pytestmark = pytest.mark.unit


def pod(name: str, ip: str, labels: dict[str, str], ready: bool = True, ns: str = "a", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "labels": labels, **meta},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def service(ports: list[dict[str, Any]], selector: dict[str, str] | None, ip: str = "127.9.128.5") -> dict[str, Any]:
    return {
        "metadata": {"name": "s", "namespace": "a"},
        "spec": {"clusterIP": ip, "selector": selector, "ports": ports},
    }


def test_a_port_forwards_to_the_ready_selected_pods_by_number_or_name() -> None:
    pods = [
        pod("p1", "127.9.0.2", {"app": "x"}),
        pod("p2", "127.9.0.3", {"app": "x"}, ready=False),
        pod("p3", "127.9.0.4", {"app": "y"}),
        pod("p4", "127.9.0.5", {"app": "x"}, ns="b"),
        pod("p5", "127.9.0.6", {"app": "x"}, deletionTimestamp="2026-12-07T00:00:00Z"),
    ]
    got = routes(
        [service([{"port": 80, "targetPort": "http"}, {"port": 9000, "targetPort": 9090}], {"app": "x"})], pods
    )
    assert got == {("127.9.128.5", 80): [("127.9.0.2", 8080)], ("127.9.128.5", 9000): [("127.9.0.2", 9090)]}


def test_headless_and_selectorless_services_route_nowhere() -> None:
    pods = [pod("p1", "127.9.0.2", {"app": "x"})]
    assert routes([service([{"port": 80}], {"app": "x"}, ip="None")], pods) == {}
    assert routes([service([{"port": 443}], None)], pods) == {("127.9.128.5", 443): []}
    assert routes([service([{"port": 53, "protocol": "UDP"}], {"app": "x"})], pods) == {}
