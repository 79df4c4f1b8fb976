"""decide.shadow: which version runs in shadow, the Shadowing condition, and status.shadow from the pods' pages; and
the challenger's pods, which the service's Service never selects."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from driftline.api.inferenceservice import InferenceServiceSpec, InferenceServiceStatus
from driftline.decide import shadow
from driftline.decide.serving import Version
from driftline.handlers import status as status_writer
from driftline.render import serving as render

pytestmark = pytest.mark.unit

SPEC = InferenceServiceSpec.model_validate({"model": "m", "shadow": {"version": 2, "share": 0.25}})
V1 = Version(1, "Production", "a" * 64, "pvc://models/m/1", "m-v1")
V2 = Version(2, "Staging", "b" * 64, "pvc://models/m/2", "m-v2")
V2_BAD = Version(2, "RolledBack", "b" * 64, "pvc://models/m/2", "m-v2")


@pytest.mark.parametrize(
    ("versions", "active", "runs", "why"),
    [
        ([V1, V2], 1, True, ""),
        ([V1], 1, False, "version 2 of model m does not exist"),
        ([V1, V2], 2, False, "version 2 is the one served"),
        ([V1, V2_BAD], 1, False, "version 2 is RolledBack"),
    ],
)
def test_challenger(versions: list[Version], active: int, runs: bool, why: str) -> None:
    got, said = shadow.challenger(SPEC, versions, active)
    assert (got is not None) is runs and why in said
    cond = shadow.condition(SPEC, got, said, had=False)[0]
    assert cond.type == "Shadowing" and cond.status is runs


def test_the_condition_says_when_a_shadow_ended() -> None:
    plain = InferenceServiceSpec.model_validate({"model": "m"})
    assert shadow.condition(plain, None, "", had=False) == []
    (ended,) = shadow.condition(plain, None, "", had=True)
    assert (ended.status, ended.reason) == (False, "ShadowStopped")


def primary_page(agree: int, disagree: int, accuracy: float, samples: int) -> str:
    reg = CollectorRegistry()
    req = Counter("driftline_shadow_requests", "", ["model", "version", "kind", "result"], registry=reg)
    req.labels("m", "1", "infer", "ok").inc(10)
    req.labels("m", "1", "infer", "dropped").inc(2)
    req.labels("m", "1", "feedback", "ok").inc(7)
    rows = Counter("driftline_shadow_rows", "", ["model", "version", "result"], registry=reg)
    rows.labels("m", "1", "agree").inc(agree)
    rows.labels("m", "1", "disagree").inc(disagree)
    h = Histogram(
        "driftline_shadow_request_duration_seconds", "", ["model", "version"], buckets=(0.01, 0.1), registry=reg
    )
    for _ in range(10):
        h.labels("m", "1").observe(0.005)
    live = Gauge("driftline_live_performance", "", ["model", "version", "metric"], registry=reg)
    live.labels("m", "1", "accuracy").set(accuracy)
    live.labels("m", "1", "roc_auc").set(float("nan"))
    Gauge("driftline_live_performance_samples", "", ["model", "version"], registry=reg).labels("m", "1").set(samples)
    return generate_latest(reg).decode()


def test_status_sums_the_serving_pods_and_weighs_live_metrics_by_labelled_rows() -> None:
    primary = [primary_page(8, 2, 0.9, 100), primary_page(6, 4, 0.8, 300)]
    challenger = [primary_page(0, 0, 0.7, 50)]
    got = shadow.status(2, primary, challenger, ["10.0.0.9:8080/metrics: HTTP 500"], "2026-12-07T10:00:00Z")
    assert (got["mirrored"], got["dropped"], got["errors"]) == (20, 4, 0)
    assert got["compared"] == 20 and got["agreement"] == pytest.approx(0.7)
    assert 0 < got["latencyP95Seconds"] <= 0.01
    assert got["production"] == [{"name": "accuracy", "value": 0.825}]  # NaN AUC left out
    assert got["challenger"] == [{"name": "accuracy", "value": 0.7}] and got["challengerSamples"] == 50
    assert "HTTP 500" in got["message"]
    status_writer.checked(InferenceServiceStatus, {"shadow": got})  # every key is the status model's


def test_nothing_read_yet_is_no_numbers_not_zeros() -> None:
    got = shadow.status(2, [], [], [], "2026-12-07T10:00:00Z")
    assert got["agreement"] is None and got["latencyP95Seconds"] is None and got["challenger"] == []


def test_the_challengers_pods_are_not_the_services() -> None:
    isvc: dict[str, Any] = {"apiVersion": "driftline.dev/v1alpha1", "kind": "InferenceService",
                            "metadata": {"name": "bc", "namespace": "ns", "uid": "u"}, "spec": {}}  # fmt: skip
    dep = render.deployment(isvc, SPEC, V2, runtime_image="rt:1", previous_version=None, track="shadow", replicas=1)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    main = render.service(isvc, SPEC)["spec"]["selector"]
    assert not all(labels.get(k) == v for k, v in main.items())  # the Service never sends a client to it
    own = render.shadow_service(isvc, SPEC)["spec"]["selector"]
    assert all(labels.get(k) == v for k, v in own.items())
    stable = render.deployment(
        isvc, SPEC, V1, runtime_image="rt:1", previous_version=None, mirror_url="http://1.2.3.4:80"
    )
    args = stable["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--mirror-url=http://1.2.3.4:80" in args and "--mirror-share=0.25" in args
    assert not any(a.startswith("--mirror") for a in dep["spec"]["template"]["spec"]["containers"][0]["args"])
    assert render.mirror_url({"spec": {"clusterIP": "127.9.128.7"}}) == "http://127.9.128.7:80"
    assert render.mirror_url(None) is None
