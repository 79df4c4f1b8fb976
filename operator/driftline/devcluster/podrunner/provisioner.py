"""A local volume provisioner and attacher: each PersistentVolumeClaim of the runner's StorageClass gets a
directory-backed PV, attached to nodes the way a CSI driver's volumes are.

The PV is pre-bound to its claim (claimRef); the real PV controller in kube-controller-manager completes the binding,
so the scheduler's volume checks see a Bound claim exactly as on a cluster with a dynamic provisioner. The PV is a
CSI volume of a driver that requires attaching (a CSIDriver object says so), so the real attach/detach controller
decides where it may be attached: a ReadWriteOnce volume attached to one node is refused to a pod on another
(FailedAttachVolume, "Multi-Attach error"), as on EKS, GKE or AKS; ReadWriteMany and ReadOnlyMany volumes attach
anywhere. `attach` plays the external attacher: it marks this node's VolumeAttachments attached. The directories
themselves are shared by every node, as network storage is.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from driftline.devcluster.kubeapi import ApiError, KubeApi

STORAGE_CLASS = "standard"  # kind's default class name, so manifests written for kind work unchanged
PROVISIONER = "driftline.dev/local-runner"
CSI_DRIVER = "local.driftline.dev"


def ensure_csi_driver(api: KubeApi) -> None:
    """The driver's CSIDriver object: attach required, so the attach/detach controller manages its volumes."""
    body = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": CSI_DRIVER},
        "spec": {"attachRequired": True, "podInfoOnMount": False, "volumeLifecycleModes": ["Persistent"]},
    }
    try:
        api.create("/apis/storage.k8s.io/v1/csidrivers", body)
    except ApiError as e:
        if e.status != 409:
            raise


def unique_volume_name(pv: dict[str, Any]) -> str | None:
    """How the attach/detach controller names an attached CSI volume in node.status.volumesAttached."""
    csi = pv.get("spec", {}).get("csi") or {}
    if csi.get("driver") != CSI_DRIVER:
        return None
    return f"kubernetes.io/csi/{CSI_DRIVER}^{csi['volumeHandle']}"


def host_path(pv: dict[str, Any]) -> str | None:
    """The directory behind one of our PVs."""
    spec = pv.get("spec", {})
    csi = spec.get("csi") or {}
    if csi.get("driver") == CSI_DRIVER:
        return str((csi.get("volumeAttributes") or {}).get("path") or "") or None
    return (spec.get("hostPath") or {}).get("path")


def attach(api: KubeApi, node_name: str) -> None:
    """The external attacher's part, for this node: a VolumeAttachment of our driver is attached as soon as the
    attach/detach controller creates it (it created it only if the volume's access modes allow this node)."""
    for va in api.get("/apis/storage.k8s.io/v1/volumeattachments").get("items", []):
        spec = va.get("spec") or {}
        if spec.get("attacher") != CSI_DRIVER or spec.get("nodeName") != node_name:
            continue
        if va["metadata"].get("deletionTimestamp") or (va.get("status") or {}).get("attached"):
            continue
        try:
            api.patch(
                f"/apis/storage.k8s.io/v1/volumeattachments/{va['metadata']['name']}/status",
                {"status": {"attached": True}},
                kind="merge",
            )
        except ApiError as e:
            if e.status not in (404, 409):
                raise


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
            "csi": {"driver": CSI_DRIVER, "volumeHandle": host_dir.name, "volumeAttributes": {"path": str(host_dir)}},
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
            path = Path(host_path(pv) or "/nonexistent")
            if path.is_relative_to(volumes_root):
                shutil.rmtree(path, ignore_errors=True)
            try:
                api.delete(f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
            except ApiError as e:
                if e.status != 404:
                    raise
