"""Pieces every child manifest shares: owner references, labels, the restricted security contexts, names."""

from __future__ import annotations

import hashlib
from typing import Any

from driftline.api import constants as c
from driftline.api.common import PodSettings, StorageSpec

RUNTIME_UID = 65532  # the runtime image's non-root user (serving-image/Dockerfile)


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion", c.API_VERSION),
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controlled_by(obj: dict[str, Any], owner_uid: str) -> bool:
    """Whether `obj` is a child of the object with `owner_uid` (its controller ownerReference): a child with
    the expected name that is not is never adopted, patched or deleted."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == owner_uid and r.get("controller") for r in refs)


def child_name(parent: str, suffix: str, uid: str, limit: int = 63) -> str:
    """A deterministic DNS-label name: `<parent>-<suffix>`, shortened with a hash of the parent's uid if too long.

    Deterministic, so a restarted operator finds the child it made instead of making a second one.
    """
    name = f"{parent}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(uid.encode()).hexdigest()[:6]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{parent[:keep].rstrip('-')}-{digest}-{suffix}"


def common_labels(model: str, component: str, instance: str) -> dict[str, str]:
    return {
        c.LABEL_MODEL: model,
        c.LABEL_COMPONENT: component,
        c.LABEL_APP_NAME: model,
        c.LABEL_APP_INSTANCE: instance,
        c.LABEL_APP_COMPONENT: component,
        c.LABEL_APP_PART_OF: c.PART_OF,
        c.LABEL_APP_MANAGED_BY: c.MANAGED_BY,
    }


def pod_security_context() -> dict[str, Any]:
    """The restricted Pod Security Standard, at pod level."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "runAsGroup": RUNTIME_UID,
        "fsGroup": RUNTIME_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def split_pvc_uri(uri: str) -> tuple[str, str]:
    """`pvc://claim/a/b` -> (`claim`, `a/b`)."""
    rest = uri.removeprefix("pvc://")
    claim, _, path = rest.partition("/")
    return claim, path.strip("/")


def is_object_uri(uri: str) -> bool:
    """An s3:// URI: read and written by the pods themselves, not mounted."""
    return uri.startswith("s3://")


CA_BUNDLE_DIR = "/etc/driftline/s3-ca"
CA_BUNDLE_FILE = "ca.pem"


Manifests = list[dict[str, Any]]


def object_storage(storage: StorageSpec | None) -> tuple[Manifests, Manifests, Manifests]:
    """(env, volumes, volumeMounts) that let a pod reach object storage as `storage` says, under the AWS SDKs'
    standard variable names (the runtime's storage.py reads the same). Credentials go by reference (secretKeyRef):
    the kubelet reads the Secret, the operator never does. No settings: the SDK's default chain and AWS itself."""
    s3 = storage.s3 if storage is not None else None
    if s3 is None:
        return [], [], []
    env: Manifests = []
    if s3.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": s3.endpoint})
    if s3.region:
        env.append({"name": "AWS_REGION", "value": s3.region})
    env.append({"name": "DRIFTLINE_S3_PATH_STYLE", "value": "true" if s3.path_style else "false"})
    volumes: Manifests = []
    mounts: Manifests = []
    if s3.ca_bundle is not None:
        items = [{"key": s3.ca_bundle.key, "path": CA_BUNDLE_FILE}]
        volumes.append({"name": "s3-ca", "configMap": {"name": s3.ca_bundle.name, "items": items}})
        mounts.append({"name": "s3-ca", "mountPath": CA_BUNDLE_DIR, "readOnly": True})
        env.append({"name": "AWS_CA_BUNDLE", "value": f"{CA_BUNDLE_DIR}/{CA_BUNDLE_FILE}"})
    creds = s3.credentials
    if creds is not None:
        refs = [("AWS_ACCESS_KEY_ID", creds.access_key_id), ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key)]
        if creds.session_token is not None:
            refs.append(("AWS_SESSION_TOKEN", creds.session_token))
        for name, ref in refs:
            env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    return env, volumes, mounts


_SCHEDULING = ("imagePullSecrets", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints")


def pod_settings(
    own: PodSettings | None, defaults: PodSettings | None
) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    """(labels, annotations, pod spec fields) of a model pod: the object's settings over the chart's podDefaults,
    field by field (labels and annotations key by key). The caller's own labels and annotations go on top."""
    mine = own.model_dump(mode="json", exclude_none=True) if own is not None else {}
    base = defaults.model_dump(mode="json", exclude_none=True) if defaults is not None else {}
    labels = {**base.get("labels", {}), **mine.get("labels", {})}
    annotations = {**base.get("annotations", {}), **mine.get("annotations", {})}
    spec = {k: mine.get(k, base.get(k)) for k in (*_SCHEDULING, "priorityClassName") if k in mine or k in base}
    return labels, annotations, spec
