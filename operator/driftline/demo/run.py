"""Runs the demo: control plane up, CRDs in, the operator started, then the loop driven step by step."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from driftline.demo import manifests as m
from driftline.devcluster import binaries, procs
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import ApiError, KubeApi

REPO = Path(__file__).resolve().parents[3]
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def _create(api: KubeApi, path: str, body: dict[str, Any]) -> None:
    try:
        api.create(path, body)
    except ApiError as e:
        if e.status != 409:
            raise


def _operator(cluster: LocalCluster) -> None:
    pidfile = cluster.dir / "operator.pid"
    if pidfile.exists() and procs.alive(int(pidfile.read_text())):
        say("operator already running")
        return
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    proc = procs.spawn(
        [sys.executable, "-m", "driftline.cli", "run", "--all-namespaces"],
        cluster_dir=cluster.dir,
        log=cluster.dir / "logs" / "operator.log",
        env=env,
    )
    pidfile.write_text(str(proc.pid))
    say(f"operator started (pid {proc.pid}, log {cluster.dir / 'logs' / 'operator.log'})")


def _events(api: KubeApi, seen: set[str]) -> None:
    items = api.get(f"/api/v1/namespaces/{m.NAMESPACE}/events").get("items", [])
    items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    for e in items:
        uid = e["metadata"]["uid"]
        kind = e["involvedObject"]["kind"]
        if uid in seen or kind not in ("TrainingJob", "ModelVersion", "InferenceService"):
            continue
        seen.add(uid)
        say(f"  event {e['type']:<7} {kind}/{e['involvedObject']['name']}: {e['reason']}: {e.get('message', '')}")


def _wait_training(api: KubeApi, name: str, seen: set[str], timeout: float = 300) -> dict[str, Any]:
    path = f"/apis/driftline.dev/v1alpha1/namespaces/{m.NAMESPACE}/trainingjobs/{name}"
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        status = api.get(path).get("status") or {}
        phase = status.get("phase", "")
        if phase != last:
            say(f"TrainingJob {name}: {phase or 'accepted'}")
            last = phase
        _events(api, seen)
        if phase in ("Succeeded", "Failed"):
            return dict(status)
        time.sleep(1)
    raise RuntimeError(f"TrainingJob {name} did not finish in {timeout:.0f}s")


def _versions_table(api: KubeApi) -> str:
    items = api.get(f"/apis/driftline.dev/v1alpha1/namespaces/{m.NAMESPACE}/modelversions")["items"]
    rows = [("VERSION", "STAGE", "ACCURACY", "TRAINED BY", "REASON")]
    for mv in sorted(items, key=lambda x: x["spec"]["version"]):
        st = mv.get("status") or {}
        rows.append(
            (
                mv["metadata"]["name"],
                st.get("stage", ""),
                f"{mv['spec']['metrics'].get('accuracy', 0):.4f}",
                mv["spec"].get("trainingJobRef", {}).get("name", ""),
                (st.get("reason") or "")[:70],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def main(cluster_dir: Path) -> int:
    cluster = LocalCluster(cluster_dir)
    if cluster.running():
        say(f"reusing the local control plane in {cluster_dir}")
    else:
        cluster.stop()
        cluster.start()
    kubectl = str(binaries.bin_dir() / "kubectl")
    kc = ["--kubeconfig", str(cluster.kubeconfig)]
    subprocess.run([kubectl, *kc, "apply", "--server-side", "-f", str(REPO / "crds")], check=True, capture_output=True)
    subprocess.run(
        [kubectl, *kc, "wait", "--for=condition=Established", "-f", str(REPO / "crds"), "--timeout=60s"],
        check=True,
        capture_output=True,
    )
    # kubectl cached discovery during the apply, before the kinds existed; refresh it so `get driftline` works.
    subprocess.run([kubectl, *kc, "api-resources", "--api-group=driftline.dev"], check=True, capture_output=True)
    say("Driftline CRDs installed: kubectl get driftline")
    _operator(cluster)
    api = KubeApi(cluster.kubeconfig, user_agent="driftline-demo")
    _create(api, "/api/v1/namespaces", m.namespace())
    deadline = time.monotonic() + 30
    while api.get_or_none(f"/api/v1/namespaces/{m.NAMESPACE}/serviceaccounts/default") is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the namespace's default ServiceAccount never appeared")
        time.sleep(0.3)
    _create(api, f"/api/v1/namespaces/{m.NAMESPACE}/persistentvolumeclaims", m.models_claim())
    seen: set[str] = set()
    for name, estimator, params, expect in m.TRAINING_STEPS:
        say(f"--- train {name} ({estimator}): {expect}")
        _create(
            api,
            f"/apis/driftline.dev/v1alpha1/namespaces/{m.NAMESPACE}/trainingjobs",
            m.trainingjob(name, estimator, params),
        )
        status = _wait_training(api, name, seen)
        if status.get("phase") == "Failed":
            say(f"TrainingJob {name} failed: {status.get('message')}")
        time.sleep(1.5)  # let the promotion verdict land before the next run is judged against Production
        _events(api, seen)
    print()
    print(_versions_table(api))
    print()
    say("done. The cluster keeps running:")
    print(f"  export KUBECONFIG={cluster.kubeconfig}")
    print(f"  {kubectl} get driftline -n {m.NAMESPACE}")
    print(f"  stop it with: make cluster-down   (or: driftline dev cluster down --dir {cluster_dir})")
    return 0
