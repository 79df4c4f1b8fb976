"""decide.outbound: the Prometheus servers a tenant may make the operator read."""

from __future__ import annotations

import pytest

from driftline.decide.outbound import refusal

pytestmark = pytest.mark.unit

CLUSTERS = ("http://prometheus-operated.monitoring.svc:9090", "https://thanos.example.com/tenant-a/")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://prometheus-operated.monitoring.svc:9090", True),
        ("http://prometheus-operated.monitoring.svc:9090/", True),
        ("HTTP://Prometheus-Operated.monitoring.svc:9090", True),  # scheme and host compare without case
        ("https://thanos.example.com/tenant-a", True),
        ("https://thanos.example.com:443/tenant-a/api", True),  # the default port, a path below
        ("https://thanos.example.com/tenant-ab", False),  # not below: a sibling path
        ("https://thanos.example.com/tenant-b", False),
        ("http://thanos.example.com/tenant-a", False),  # another scheme
        ("http://prometheus-operated.monitoring.svc:2379", False),  # another port: etcd's
        (
            "http://prometheus-operated.monitoring.svc:9090@127.0.0.1:2379",
            False,
        ),  # userinfo trick: the host is 127.0.0.1
        ("http://127.0.0.1:2379", False),
        ("http://[::1", False),  # unparseable
        ("prometheus-operated.monitoring.svc:9090", False),  # no scheme
    ],
)
def test_only_listed_servers_and_paths_below_them(url: str, ok: bool) -> None:
    said = refusal(url, CLUSTERS)
    assert (said is None) is ok
    if not ok:
        assert url in said and "allowedPrometheusUrls" in said  # type: ignore[operator]


def test_no_list_allows_any_a_star_allows_any_and_an_empty_list_allows_none() -> None:
    assert refusal("http://127.0.0.1:2379", None) is None
    assert refusal("http://127.0.0.1:2379", ["*"]) is None
    said = refusal("http://prometheus-operated.monitoring.svc:9090", [])
    assert said is not None and "(none)" in said
