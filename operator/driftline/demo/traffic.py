"""Live traffic for the demo and the monitors' e2e tests: batches of breast_cancer rows sent to every ready serving pod
over the Open Inference Protocol (V2), scaled by `factor` once the world changes; with `send_labels`, each batch's
ground truth follows to the pod's feedback endpoint, the other class once `flip_labels` (concept drift: the same
inputs now mean something else)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import requests
from sklearn.datasets import load_breast_cancer

from driftline.api import constants as c
from driftline.devcluster.kubeapi import KubeApi

PORT = 8080
BATCH = 32


def rows() -> Any:
    """The features of breast_cancer, a DataFrame."""
    return load_breast_cancer(as_frame=True).data


def frame() -> Any:
    """The features and the `target` column."""
    return load_breast_cancer(as_frame=True).frame


def ready_pods(api: KubeApi, ns: str, service: str) -> list[dict[str, Any]]:
    """IP and version of the service's ready, non-terminating pods (a shadow challenger's are not the service's)."""
    items = api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=f"driftline.dev/inferenceservice={service}")
    out = []
    for pod in items["items"]:
        status = pod.get("status") or {}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
        labels = pod["metadata"].get("labels", {})
        shadow = labels.get(c.LABEL_TRACK) == c.TRACK_SHADOW  # reached only by mirroring
        if ready and not shadow and status.get("podIP") and not pod["metadata"].get("deletionTimestamp"):
            out.append({"ip": status["podIP"], "version": int(pod["metadata"]["labels"]["driftline.dev/version"])})
    return out


def v2_body(batch: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input-0", "shape": list(batch.shape), "datatype": "FP64", "data": batch.ravel().tolist()}]
    }


class Traffic:
    """A background client: one batch per ready pod every 0.1 s, until stopped. Counts what it sent and what failed
    (a pod going away mid-request during a rollout is expected to fail now and then)."""

    def __init__(self, api: KubeApi, ns: str, service: str, model: str) -> None:
        self.api, self.ns, self.service, self.model = api, ns, service, model
        data = frame()
        self.data = data.drop(columns="target").to_numpy()
        self.target = data["target"].to_numpy()
        self.factor = 1.0
        self.send_labels = False
        self.flip_labels = False
        self.predictions = 0
        self.labelled = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-traffic", daemon=True)
        self._http = requests.Session()
        self._http.trust_env = False  # pod IPs are loopback addresses: never through a proxy
        self._rng = np.random.default_rng(7)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                pods = ready_pods(self.api, self.ns, self.service)
            except Exception:  # the API server is busy for a moment: look again
                pods = []
            for pod in pods:
                rows = self._rng.choice(len(self.data), BATCH, replace=False)
                base = f"http://{pod['ip']}:{PORT}/v2/models/{self.model}"
                try:
                    r = self._http.post(f"{base}/infer", json=v2_body(self.data[rows] * self.factor), timeout=10)
                    if not r.ok:
                        self.failures += 1
                        continue
                    self.predictions += BATCH
                    if self.send_labels:
                        truth = 1 - self.target[rows] if self.flip_labels else self.target[rows]
                        body = {"id": r.json()["id"], "truth": truth.tolist()}
                        if self._http.post(f"{base}/feedback", json=body, timeout=10).ok:
                            self.labelled += BATCH
                        else:
                            self.failures += 1
                except requests.RequestException:
                    self.failures += 1
            self._stop.wait(0.1)
