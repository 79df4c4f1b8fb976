"""The Node the runner registers, and its heartbeat (a Lease, renewed as a kubelet does)."""

from __future__ import annotations

import datetime as dt
import platform
from typing import Any

from driftline.devcluster.kubeapi import ApiError, KubeApi

LEASE_SECONDS = 40
CONTROLLER_ATTACH = "volumes.kubernetes.io/controller-managed-attach-detach"


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_conditions(now: str) -> list[dict[str, Any]]:
    def cond(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }

    return [
        cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "pod runner has sufficient memory"),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "pod runner has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "pod runner has sufficient PID"),
        cond("Ready", "True", "KubeletReady", "driftline pod runner is posting ready status"),
    ]


def node_manifest(name: str, kube_version: str) -> dict[str, Any]:
    now = now_rfc3339()
    # Generous capacity: pods here are processes; requests must fit for the real scheduler, not reflect hardware.
    capacity = {"cpu": "32", "memory": "128Gi", "pods": "1000", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            # As a kubelet with --enable-controller-attach-detach (the default): the attach/detach controller attaches
            # volumes to this node and reports them in status.volumesAttached.
            "annotations": {CONTROLLER_ATTACH: "true"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.driftline.dev/pod-runner": "true",
            },
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": node_conditions(now),
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "nodeInfo": {
                "kubeletVersion": kube_version,
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "driftline-pod-runner://0.1.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "osImage": platform.platform(),
                "kernelVersion": platform.release(),
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


def register(api: KubeApi, name: str, kube_version: str) -> None:
    body = node_manifest(name, kube_version)
    try:
        api.create("/api/v1/nodes", body)
    except ApiError as e:
        if e.status != 409:
            raise
    api.patch(f"/api/v1/nodes/{name}", {"metadata": {"annotations": {CONTROLLER_ATTACH: "true"}}}, kind="merge")
    # Status on create may be reset by the API server; set it explicitly, as a restarting kubelet would.
    api.patch(f"/api/v1/nodes/{name}/status", {"status": body["status"]}, kind="merge")


def heartbeat(api: KubeApi, name: str) -> None:
    """Renew the node's Lease and refresh its conditions' heartbeat times."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    lease = api.get_or_none(path)
    node = api.get(f"/api/v1/nodes/{name}")
    spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now_micro()}
    if lease is None:
        api.create(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": name,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Node", "name": name, "uid": node["metadata"]["uid"]}
                    ],
                },
                "spec": spec,
            },
        )
    else:
        api.patch(path, {"spec": spec}, kind="merge")


def refresh_status(api: KubeApi, name: str) -> None:
    now = now_rfc3339()
    node = api.get(f"/api/v1/nodes/{name}")
    conds = node.get("status", {}).get("conditions", [])
    for c in conds:
        c["lastHeartbeatTime"] = now
    if not any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
        conds = node_conditions(now)
    api.patch(f"/api/v1/nodes/{name}/status", {"status": {"conditions": conds}}, kind="strategic")
