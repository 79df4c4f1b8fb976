"""A local volume provisioner: each PersistentVolumeClaim of the runner's StorageClass gets a directory-backed PV.

The PV is pre-bound to its claim (claimRef); the real PV controller in kube-controller-manager completes the binding,
so the scheduler's volume checks see a Bound claim exactly as on a cluster with a dynamic provisioner.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from driftline.devcluster.kubeapi import ApiError, KubeApi

STORAGE_CLASS = "standard"  # kind's default class name, so manifests written for kind work unchanged
PROVISIONER = "driftline.dev/local-runner"


def ensure_storage_class(api: KubeApi) -> None:
    body = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }
    try:
        api.create("/apis/storage.k8s.io/v1/storageclasses", body)
    except ApiError as e:
        if e.status != 409:
            raise


def pv_manifest(pvc: dict[str, Any], host_dir: Path) -> dict[str, Any]:
    meta, spec = pvc["metadata"], pvc["spec"]
    size = spec.get("resources", {}).get("requests", {}).get("storage", "1Gi")
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}", "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": spec.get("storageClassName") or "",
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
            },
            "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"},
        },
    }


def sync(api: KubeApi, volumes_root: Path) -> None:
    """Provision claims that wait for us, and delete released volumes we made (level-based, safe to repeat)."""
    for pvc in api.get("/api/v1/persistentvolumeclaims").get("items", []):
        spec = pvc["spec"]
        if spec.get("storageClassName") != STORAGE_CLASS or spec.get("volumeName"):
            continue
        if pvc.get("status", {}).get("phase") != "Pending" or pvc["metadata"].get("deletionTimestamp"):
            continue
        host_dir = volumes_root / f"pvc-{pvc['metadata']['uid']}"
        host_dir.mkdir(parents=True, exist_ok=True)
        try:
            api.create("/api/v1/persistentvolumes", pv_manifest(pvc, host_dir))
        except ApiError as e:
            if e.status != 409:
                raise
    for pv in api.get("/api/v1/persistentvolumes").get("items", []):
        annotations = pv["metadata"].get("annotations") or {}
        if annotations.get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
            continue
        if pv.get("status", {}).get("phase") in ("Released", "Failed"):
            path = Path(pv["spec"]["hostPath"]["path"])
            if path.is_relative_to(volumes_root):
                shutil.rmtree(path, ignore_errors=True)
            try:
                api.delete(f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
            except ApiError as e:
                if e.status != 404:
                    raise
