"""Runs the demo: the local control plane, the chart installed (the operator runs as a pod under its own
ServiceAccount), then the whole loop, each step waiting on what a user would check with kubectl:

train v1 -> Production -> served -> predictions -> the live data shifts -> drift -> retrain on the live data -> v2
Production -> roll forward -> a bad v3 ships -> its drift rolls it back to v2.

It ends with a summary and an HTML report (drift score over time, the decisions, the versions) and leaves the
cluster running."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from driftline.demo import manifests as m
from driftline.demo import report
from driftline.demo.live import Display
from driftline.demo.traffic import PORT, Traffic, frame, ready_pods, rows
from driftline.devcluster import binaries
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import KubeApi, restricted_namespace, wait_for
from driftline.devcluster.s3 import Identity, S3Server

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "driftline"
DIS = f"/apis/driftline.dev/v1alpha1/namespaces/{m.NAMESPACE}/inferenceservices"
TJ = f"/apis/driftline.dev/v1alpha1/namespaces/{m.NAMESPACE}/trainingjobs"

Objects = dict[str, list[dict[str, Any]]]


class DemoError(RuntimeError):
    pass


def _condition(obj: dict[str, Any], ctype: str) -> str:
    conds = (obj.get("status") or {}).get("conditions") or []
    return next((c["status"] for c in conds if c["type"] == ctype), "")


def _named(objs: Objects, kind: str, name: str) -> dict[str, Any]:
    return next((o for o in objs[kind] if o["metadata"]["name"] == name), {})


def _status(objs: Objects, kind: str, name: str) -> dict[str, Any]:
    return dict(_named(objs, kind, name).get("status") or {})


def object_store(cluster: LocalCluster) -> tuple[S3Server, Identity]:
    """SeaweedFS beside the cluster, with bucket `models` and keys that may only use it; kept running with the
    cluster (a later demo reuses it, `cluster down` stops it)."""
    directory = cluster.dir / "s3"
    server = S3Server.running_at(directory)
    if server is None:
        user = Identity("driftline-demo", actions=tuple(f"{a}:{m.BUCKET}" for a in ("Read", "Write", "List")))
        server = S3Server(directory, [Identity("admin"), user], owner=cluster.dir).start()
        server.create_bucket(m.BUCKET)
    return server, server.identities[1]


class Demo:
    def __init__(self, cluster: LocalCluster, store: tuple[S3Server, Identity]) -> None:
        self.cluster = cluster
        self.s3, self.s3_user = store
        self.storage = m.storage(self.s3.endpoint)
        self.api = KubeApi(cluster.kubeconfig, user_agent="driftline-demo")
        self.t0 = time.monotonic()
        self.started = dt.datetime.now(dt.UTC)
        self.show = Display(self.api, m.NAMESPACE, self.t0)
        self.samples: list[report.Sample] = []
        self.traffic = (0, 0)
        """Predictions served to the live traffic and failed requests."""

    # -- set-up --------------------------------------------------------------------------------------------------

    def helm(self, *args: str, timeout: float = 400) -> None:
        home = self.cluster.dir / "helm"
        env = {**os.environ, **{f"HELM_{d.upper()}_HOME": str(home / d) for d in ("config", "cache", "data")}}
        cmd = [str(binaries.bin_dir() / "helm"), "--kubeconfig", str(self.cluster.kubeconfig), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if out.returncode != 0:
            raise DemoError(f"helm {args[0]} failed: {out.stderr.strip()}")

    def namespace(self, name: str, fresh: bool) -> None:
        path = f"/api/v1/namespaces/{name}"
        if fresh and self.api.get_or_none(path) is not None:
            self.show.say(f"deleting the previous run's namespace {name}")
            self.api.delete(path)
            wait_for(f"namespace {name} gone", lambda: self.api.get_or_none(path) is None, 180, 1.0, error=DemoError)
        restricted_namespace(self.api, name, error=DemoError)

    def install(self) -> None:
        self.show.step("helm install driftline charts/driftline", "the operator runs as a pod, as its ServiceAccount")
        self.namespace(m.SYSTEM_NAMESPACE, fresh=False)
        self.helm("upgrade", "--install", m.RELEASE, str(CHART), "-n", m.SYSTEM_NAMESPACE, "--wait", "--timeout=300s")
        pods = self.api.get(
            f"/api/v1/namespaces/{m.SYSTEM_NAMESPACE}/pods", labelSelector="app.kubernetes.io/component=operator"
        )["items"]
        names = ", ".join(p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp"))
        self.show.say(f"operator running: pod {names} in {m.SYSTEM_NAMESPACE} (chart RBAC, restricted PSS)")

    # -- watching ------------------------------------------------------------------------------------------------

    def until(self, what: str, predicate: Callable[[Objects], Any], timeout: float = 240) -> Any:
        """Poll once a second, showing what changed, until `predicate` returns something truthy."""
        return wait_for(what, lambda: predicate(self.look()), timeout, 1.0, error=DemoError)

    def look(self) -> Objects:
        objs = self.show.look()
        svc = _named(objs, "InferenceService", m.SERVICE)
        if svc:
            st = svc.get("status") or {}
            drift = st.get("drift") or {}
            self.samples.append(
                report.Sample(
                    t=time.monotonic() - self.t0,
                    score=drift.get("score"),
                    threshold=float(drift.get("threshold") or m.DRIFT["threshold"]),
                    version=st.get("activeVersion"),
                    assessment=drift.get("assessment", ""),
                    features=tuple(
                        (str(f["name"]), float(f["value"]))
                        for f in drift.get("features") or []
                        if isinstance(f.get("value"), int | float)
                    ),
                )
            )
        return objs

    def ready_on(self, version: int) -> Callable[[Objects], Any]:
        def check(objs: Objects) -> Any:
            svc = _named(objs, "InferenceService", m.SERVICE)
            st = svc.get("status") or {}
            pods = ready_pods(self.api, m.NAMESPACE, m.SERVICE) if st.get("activeVersion") == version else []
            on_version = pods and all(p["version"] == version for p in pods)
            return _condition(svc, "Ready") == "True" and on_version and st

        return check

    def rolled_forward_to(self, version: int) -> Callable[[Objects], Any]:
        def check(objs: Objects) -> Any:
            history = _status(objs, "InferenceService", m.SERVICE).get("history") or []
            return any(h["action"] == "RollForward" and h["toVersion"] == version for h in history)

        return check

    def drift_is(self, assessment: str, version: int) -> Callable[[Objects], Any]:
        def check(objs: Objects) -> Any:
            st = _status(objs, "InferenceService", m.SERVICE)
            drift = st.get("drift") or {}
            full = (drift.get("samples") or 0) >= m.DRIFT["minSamples"] or assessment != "Ok"
            return st.get("activeVersion") == version and drift.get("assessment") == assessment and full and drift

        return check

    def last_action(self, action: str) -> Callable[[Objects], Any]:
        return lambda objs: (lambda d: d if d.get("lastAction") == action else None)(
            _status(objs, "InferenceService", m.SERVICE).get("drift") or {}
        )

    def trained(self, name: str) -> dict[str, Any]:
        st: dict[str, Any] = self.until(
            f"TrainingJob {name} to finish",
            lambda objs: (lambda s: s if s.get("phase") in ("Succeeded", "Failed") else None)(
                _status(objs, "TrainingJob", name)
            ),
            timeout=300,
        )
        if st["phase"] != "Succeeded":
            raise DemoError(f"TrainingJob {name} failed: {st.get('message')}")
        return st

    def stage(self, version: int, stage: str) -> None:
        name = f"{m.MODEL}-v{version}"
        self.until(f"{name} {stage}", lambda objs: _status(objs, "ModelVersion", name).get("stage") == stage)

    # -- the loop ------------------------------------------------------------------------------------------------

    def predictions(self) -> None:
        (pod, *_) = ready_pods(self.api, m.NAMESPACE, m.SERVICE)
        sample = rows().iloc[[0, 19, 40]]
        http = requests.Session()
        http.trust_env = False
        url = f"http://{pod['ip']}:{PORT}/v1/models/{m.MODEL}:predict"
        got = http.post(url, json={"instances": sample.to_numpy().tolist()}, timeout=10)
        got.raise_for_status()
        self.show.say(f"POST {url} (KServe V1, 3 rows) -> {json.dumps(got.json())}")
        self.show.say(f"     Open Inference Protocol V2 too: http://{pod['ip']}:{PORT}/v2/models/{m.MODEL}/infer")

    def run(self) -> None:
        self.install()
        self.show.step(
            "namespace driftline-demo", f"restricted Pod Security, keys to the bucket at {self.s3.endpoint}, live data"
        )
        self.namespace(m.NAMESPACE, fresh=True)
        self.api.create(f"/api/v1/namespaces/{m.NAMESPACE}/secrets", m.s3_secret(self.s3_user.secret_data()))
        shifted = frame()
        features = [c for c in shifted.columns if c != "target"]
        shifted[features] = shifted[features] * m.SHIFT
        self.api.create(f"/api/v1/namespaces/{m.NAMESPACE}/configmaps", m.live_data(shifted.to_csv(index=False)))

        with self.show:
            name, spec, expect = m.FIRST
            self.show.step(f"train {name}", expect)
            self.api.create(TJ, m.trainingjob(name, spec, self.storage))
            self.trained(name)
            self.stage(1, "Production")

            self.show.step(
                f"serve {m.SERVICE}",
                f"the Production version on {m.REPLICAS} pods over both nodes, drift watched every 2s, retrain on the"
                " live data",
            )
            self.api.create(DIS, m.inferenceservice(self.storage))
            self.until(f"{m.SERVICE} Ready on v1", self.ready_on(1), timeout=180)
            self.predictions()

            with Traffic(self.api, m.NAMESPACE, m.SERVICE, m.MODEL) as traffic:
                self.show.step("live traffic", "in distribution: drift Ok")
                self.until("an Ok drift reading on v1", self.drift_is("Ok", 1), timeout=120)

                self.show.step(f"the world changes: every feature x{m.SHIFT}", "drift, then a retrain")
                traffic.factor = m.SHIFT
                self.until("the Retrain action", self.last_action("Retrain"), timeout=120)
                self.stage(2, "Production")
                self.show.step("v2 learnt from the live data", "rolls forward; the same traffic is Ok for it")
                self.until(f"{m.SERVICE} Ready on v2", self.ready_on(2), timeout=180)
                self.until("an Ok drift reading on v2", self.drift_is("Ok", 2), timeout=120)

                name, spec, expect = m.BAD_RELEASE
                self.show.step(f"a bad release: {name}", expect)
                self.api.create(TJ, m.trainingjob(name, spec, self.storage))
                self.trained(name)
                # Not "Ready on v3": its drift may roll it back before every replica is ready.
                self.until(f"{m.SERVICE} rolling forward to v3", self.rolled_forward_to(3), timeout=180)
                self.show.step("v3 drifts right after its roll forward", "caused by v3: rolled back to v2")
                self.until("the Rollback action", self.last_action("Rollback"), timeout=120)
                self.stage(3, "RolledBack")
                self.stage(2, "Production")  # traffic went back to it: the registry says so
                self.until(f"{m.SERVICE} Ready on v2 again", self.ready_on(2), timeout=180)
                self.until("an Ok drift reading on v2 again", self.drift_is("Ok", 2), timeout=120)
            self.traffic = (traffic.predictions, traffic.failures)

    # -- the end -------------------------------------------------------------------------------------------------

    def summary(self) -> Path:
        objs = self.look()
        versions = [("VERSION", "STAGE", "ACCURACY", "TRAINED BY", "DATASET", "REASON")]
        for mv in objs["ModelVersion"]:
            st, spec = mv.get("status") or {}, mv["spec"]
            acc = (spec.get("metrics") or {}).get("accuracy")
            versions.append(
                (
                    mv["metadata"]["name"],
                    st.get("stage", ""),
                    f"{acc:.4f}" if isinstance(acc, float) else "",
                    (spec.get("trainingJobRef") or {}).get("name", ""),
                    (spec.get("dataset") or {}).get("uri", ""),
                    (st.get("reason") or "")[:80],
                )
            )
        svc = _status(objs, "InferenceService", m.SERVICE)
        history = [("TIME", "ACTION", "FROM", "TO", "REASON", "MESSAGE")]
        marks = []
        for h in svc.get("history") or []:
            t = (dt.datetime.fromisoformat(h["time"].replace("Z", "+00:00")) - self.started).total_seconds()
            history.append(
                (
                    h["time"],
                    h["action"],
                    str(h.get("fromVersion") or ""),
                    str(h["toVersion"]),
                    h.get("reason", ""),
                    (h.get("message") or "")[:100],
                )
            )
            marks.append(report.Mark(max(t, 0.0), f"{h['action']} v{h['toVersion']}"))
        self.show.console.print()
        for table in (versions, history):
            widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
            for r in table:
                self.show.console.print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            self.show.console.print()
        predictions, failures = self.traffic
        self.show.say(f"{predictions} predictions served to the live traffic, {failures} failed requests")
        path = self.cluster.dir / "demo-report.html"
        path.write_text(report.page("Driftline demo", self.samples, marks, versions, history, self.started))
        return path


def main(cluster_dir: Path, containers: bool = False) -> int:
    """`containers`: a cluster in container mode, whose pods run as real OCI containers from the images `make images`
    built (a cluster already running keeps the mode it was started in)."""
    cluster = LocalCluster(cluster_dir, containers=containers)
    if cluster.running():
        print(f"reusing the local control plane in {cluster_dir}", flush=True)
    else:
        cluster.stop()
        cluster.start()
    demo = Demo(cluster, object_store(cluster))
    try:
        demo.run()
    except DemoError as e:
        demo.show.say(f"demo failed: {e}", style="bold red")
        demo.show.say(f"operator and pod logs: {cluster.dir / 'runner' / 'pods'}")
        return 1
    path = demo.summary()
    kubectl = binaries.bin_dir() / "kubectl"
    demo.show.say(f"report: {path}")
    demo.show.say("done. The cluster keeps running:")
    print(f"  export KUBECONFIG={cluster.kubeconfig}")
    print(f"  {kubectl} get driftline -n {m.NAMESPACE}")
    print(f"  stop it with: make cluster-down   (or: driftline dev cluster down --dir {cluster_dir})")
    return 0
