"""Pod volumes as directories under the runner's root; returns the container-path -> host-path map per container."""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftline.devcluster.kubeapi import ApiError, KubeApi
from driftline.devcluster.podrunner import provisioner
from driftline.devcluster.podrunner.downward import field_value

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
# A kubelet mounts these read-only whatever the volumeMount says (since Kubernetes 1.9.6).
_ALWAYS_READ_ONLY = ("configMap", "secret", "projected", "downwardAPI")


class VolumeNotReady(RuntimeError):
    """The pod cannot start yet (a missing ConfigMap, an unbound claim); the reason goes into an Event."""


class VolumeNotAttached(VolumeNotReady):
    """A claim's volume is not attached to the pod's node (yet, or refused: the attach/detach controller's
    FailedAttachVolume Event says which). A kubelet waits silently, and so does the runner: the pod stays
    ContainerCreating."""


@dataclass
class PreparedVolumes:
    host_dirs: dict[str, Path]  # volume name -> host directory
    token_dir: Path | None  # the service-account token volume, when one is mounted
    attached: tuple[str, ...] = ()  # the pod's attached volumes, as node.status.volumesInUse names them
    read_only: frozenset[str] = frozenset()  # volumes every mount of which is read-only

    def read_only_for(self, container: dict[str, Any]) -> list[str]:
        """The host directories this container may only read: a kubelet mounts them `ro`."""
        return [
            str(self.host_dirs[m["name"]] / m["subPath"] if m.get("subPath") else self.host_dirs[m["name"]])
            for m in container.get("volumeMounts") or []
            if m["name"] in self.host_dirs and (m.get("readOnly") or m["name"] in self.read_only)
        ]

    def mounts_for(self, container: dict[str, Any]) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            host = self.host_dirs.get(mount["name"])
            if host is None:
                raise VolumeNotReady(f"volumeMount {mount['name']!r} names no volume of the pod")
            sub = mount.get("subPath")
            target = host / sub if sub else host
            if sub and not target.exists():
                target.mkdir(parents=True, exist_ok=True)
            mapping[mount["mountPath"]] = str(target)
        return mapping


def _write_items(target: Path, data: dict[str, bytes], items: list[dict[str, Any]] | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    chosen = {i["key"]: i["path"] for i in items} if items else {k: k for k in data}
    for key, rel in chosen.items():
        if key not in data:
            raise VolumeNotReady(f"key {key!r} not found")
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[key])


def _configmap_data(api: KubeApi, ns: str, name: str, optional: bool) -> dict[str, bytes] | None:
    cm = api.get_or_none(f"/api/v1/namespaces/{ns}/configmaps/{name}")
    if cm is None:
        if optional:
            return None
        raise VolumeNotReady(f'configmap "{name}" not found')
    data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return data


def _secret_data(api: KubeApi, ns: str, name: str, optional: bool) -> dict[str, bytes] | None:
    secret = api.get_or_none(f"/api/v1/namespaces/{ns}/secrets/{name}")
    if secret is None:
        if optional:
            return None
        raise VolumeNotReady(f'secret "{name}" not found')
    return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}


def _token(api: KubeApi, pod: dict[str, Any], source: dict[str, Any]) -> str:
    meta = pod["metadata"]
    sa = pod["spec"].get("serviceAccountName") or "default"
    spec: dict[str, Any] = {
        "expirationSeconds": int(source.get("expirationSeconds", 3607)),
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
    }
    if source.get("audience"):
        spec["audiences"] = [source["audience"]]
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    try:
        out = api.create(f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token", body)
    except ApiError as e:
        raise VolumeNotReady(f"token for serviceaccount {sa!r}: {e}") from e
    return str(out["status"]["token"])


def prepare(api: KubeApi, pod: dict[str, Any], pod_dir: Path, pod_ip: str) -> PreparedVolumes:
    ns = pod["metadata"]["namespace"]
    host_dirs: dict[str, Path] = {}
    token_dir: Path | None = None
    attached: list[str] = []
    read_only: set[str] = set()
    for vol in pod["spec"].get("volumes") or []:
        name = vol["name"]
        target = pod_dir / "volumes" / name
        if any(kind in vol for kind in _ALWAYS_READ_ONLY):
            read_only.add(name)
        if "emptyDir" in vol:
            target.mkdir(parents=True, exist_ok=True)
        elif "persistentVolumeClaim" in vol:
            claim = vol["persistentVolumeClaim"]["claimName"]
            pvc = api.get_or_none(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
            if pvc is None:
                raise VolumeNotReady(f'persistentvolumeclaim "{claim}" not found')
            pv_name = pvc["spec"].get("volumeName")
            pv = api.get_or_none(f"/api/v1/persistentvolumes/{pv_name}") if pv_name else None
            if pv is None or pvc.get("status", {}).get("phase") != "Bound":
                raise VolumeNotReady(f'persistentvolumeclaim "{claim}" is not bound')
            directory = provisioner.host_path(pv)
            if not directory:
                raise VolumeNotReady(f'persistentvolume "{pv_name}" is not a local-runner volume')
            unique = provisioner.unique_volume_name(pv)
            if unique is not None:
                node_name = pod["spec"].get("nodeName") or ""
                node = api.get_or_none(f"/api/v1/nodes/{node_name}") or {}
                if unique not in {v.get("name") for v in node.get("status", {}).get("volumesAttached") or []}:
                    raise VolumeNotAttached(f'volume "{pv_name}" is not attached to node {node_name}')
                attached.append(unique)
            if vol["persistentVolumeClaim"].get("readOnly") or set(pv["spec"].get("accessModes") or []) == {
                "ReadOnlyMany"
            }:
                # A ReadOnlyMany volume is published to a node as MULTI_NODE_READER_ONLY: the driver mounts it ro.
                read_only.add(name)
            target = Path(directory)
            target.mkdir(parents=True, exist_ok=True)
        elif "configMap" in vol:
            src = vol["configMap"]
            data = _configmap_data(api, ns, src["name"], bool(src.get("optional")))
            _write_items(target, data or {}, src.get("items") if data else None)
        elif "secret" in vol:
            src = vol["secret"]
            data = _secret_data(api, ns, src["secretName"], bool(src.get("optional")))
            _write_items(target, data or {}, src.get("items") if data else None)
        elif "projected" in vol:
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for source in vol["projected"].get("sources") or []:
                if "serviceAccountToken" in source:
                    src = source["serviceAccountToken"]
                    (target / src.get("path", "token")).write_text(_token(api, pod, src))
                    token_dir = target
                elif "configMap" in source:
                    src = source["configMap"]
                    data = _configmap_data(api, ns, src["name"], bool(src.get("optional")))
                    if data:
                        _write_items(target, data, src.get("items"))
                elif "secret" in source:
                    src = source["secret"]
                    data = _secret_data(api, ns, src["name"], bool(src.get("optional")))
                    if data:
                        _write_items(target, data, src.get("items"))
                elif "downwardAPI" in source:
                    for item in source["downwardAPI"].get("items") or []:
                        value = field_value(pod, item["fieldRef"]["fieldPath"], pod_ip)
                        (target / item["path"]).write_text(value)
        elif "downwardAPI" in vol:
            target.mkdir(parents=True, exist_ok=True)
            for item in vol["downwardAPI"].get("items") or []:
                (target / item["path"]).write_text(field_value(pod, item["fieldRef"]["fieldPath"], pod_ip))
        else:
            kind = next((k for k in vol if k != "name"), "unknown")
            raise VolumeNotReady(f"volume {name!r}: {kind} volumes are not supported by the local pod runner")
        host_dirs[name] = target
    return PreparedVolumes(host_dirs, token_dir, tuple(attached), frozenset(read_only))
