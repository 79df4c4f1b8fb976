"""An operator restart changes nothing: no status rewrites, and no writes at all over a quiet minute (counted in the
real API server's audit log, by the operator's user agents), though the operator compares its view with the cluster
every 5 s there (handlers/resync.py)."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import operator_reads, pvc, run_operator
from tests.e2e.test_serving import DIS, inferenceservice, ready_at
from tests.e2e.test_training import MV, TJ, finished, trainingjob
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crds: None) -> Iterator[OperatorProcess]:
    proc = run_operator(cluster, "operator-steady.log", env={"DRIFTLINE_RESYNC_SECONDS": "5"})
    yield proc
    proc.stop()


def operator_writes(cluster: Cluster, since: int, namespace: str) -> list[dict[str, Any]]:
    lines = (cluster.dir / "logs" / "audit.log").read_text().splitlines()[since:]
    out = []
    for line in lines:
        ev = json.loads(line)
        agent = ev.get("userAgent", "")
        ours = agent.startswith(("kopf/", "driftline-operator"))
        in_scope = (ev.get("objectRef") or {}).get("namespace") in (namespace, None)
        if ev.get("verb") in WRITES and ours and in_scope:
            out.append({"verb": ev["verb"], "uri": ev["requestURI"], "agent": agent})
    return out


def snapshot(cluster: Cluster, namespace: str) -> dict[str, str]:
    paths = [
        TJ.format(ns=namespace),
        MV.format(ns=namespace),
        DIS.format(ns=namespace),
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        f"/api/v1/namespaces/{namespace}/services",
    ]
    out = {}
    for path in paths:
        listed = cluster.api.get(path)
        kind = listed["kind"].removesuffix("List")
        out |= {f"{kind}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in listed["items"]}
    return out


def test_restart_then_a_quiet_minute_without_writes(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    pvc(cluster, namespace)
    cluster.api.create(
        TJ.format(ns=namespace), trainingjob("once", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000})
    )
    assert (
        cluster.wait_for("trained", lambda: finished(cluster, namespace, "once"), timeout=240)["phase"] == "Succeeded"
    )
    # A service following the model: after the restart its Deployment, Service and status are left as they are.
    cluster.api.create(DIS.format(ns=namespace), inferenceservice("once"))
    cluster.wait_for("once Ready on v1", ready_at(cluster, namespace, "once", 1), timeout=120)
    time.sleep(3)  # the promotion and kopf's own bookkeeping settle
    before = snapshot(cluster, namespace)
    assert {"InferenceService/once", "Deployment/once-stable", "Service/once"} <= set(before), before

    operator.kill()
    operator.start()
    time.sleep(15)  # resume handlers run for every object
    assert snapshot(cluster, namespace) == before, "a restart must not rewrite any object"

    # The filter does see the operator: training and promotion wrote through its client.
    agents = {w["agent"].split("/")[0] for w in operator_writes(cluster, 0, namespace)}
    assert "driftline-operator" in agents, agents
    tj = cluster.api.get(TJ.format(ns=namespace) + "/once")
    kept = [k for k in tj["metadata"].get("annotations") or {} if "last-handled-configuration" in k]
    assert kept == [], "kopf's diff base stays in the operator, not on the user's object"
    mark = len((cluster.dir / "logs" / "audit.log").read_text().splitlines())
    time.sleep(60)
    writes = operator_writes(cluster, mark, namespace)
    assert writes == [], f"writes at steady state: {writes[:5]}"
    # The view was compared with the cluster meanwhile, every kind it holds, and found nothing to act on.
    resyncs = operator_reads(cluster, mark, namespace, by=("ViewResync",))
    assert resyncs.count("list deployments") >= 5 and "list modelversions" in resyncs, resyncs[:12]
    assert snapshot(cluster, namespace) == before


def test_only_its_own_children_and_jobs_are_watched(cluster: Cluster, operator: OperatorProcess) -> None:
    """The API server selects what the operator watches of Deployments, Services, budgets and Jobs by label: a
    cluster's thousands of other Deployments and Jobs never reach it."""
    kinds = {"deployments", "services", "poddisruptionbudgets", "jobs"}
    watches: dict[str, set[str]] = {}
    for line in (cluster.dir / "logs" / "audit.log").read_text().splitlines():
        ev = json.loads(line)
        ref = ev.get("objectRef") or {}
        kopf = ev.get("userAgent", "").startswith("kopf/") and ev.get("verb") in ("list", "watch")
        if kopf and ref.get("resource") in kinds and not ref.get("namespace"):
            query = ev["requestURI"].partition("?")[2]
            selector = next((p for p in query.split("&") if p.startswith("labelSelector=")), "")
            watches.setdefault(ref["resource"], set()).add(urllib.parse.unquote(selector))
    assert set(watches) == kinds, watches
    assert (
        watches["deployments"]
        == watches["services"]
        == watches["poddisruptionbudgets"]
        == {"labelSelector=driftline.dev/inferenceservice"}
    ), watches
    assert watches["jobs"] == {"labelSelector=driftline.dev/trainingjob,driftline.dev/component=trainer"}, watches
