"""The stable Deployment that serves one ModelVersion of an InferenceService, and the Service in front of it."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from driftline.api import constants as c
from driftline.api import inferenceservice as api
from driftline.api.common import PodSettings
from driftline.api.fields import quantity_value
from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.render.common import (
    child_name,
    common_labels,
    container_security_context,
    is_object_uri,
    object_storage,
    owner_reference,
    pod_security_context,
    pod_settings,
    split_pvc_uri,
)
from driftline.render.training import TERMINATION_LOG

MODEL_MOUNT = "/mnt/models"
SERVICE_PORT = 80
PORT_NAME = "http"
DRAIN_SECONDS = 3
"""After SIGTERM the server keeps answering (while unready) this long: requests already on their way to a pod that
is being replaced still succeed, so a roll forward drops none."""
TERMINATION_GRACE_SECONDS = 30
"""The drain plus the in-flight requests the server waits for."""
REVISION_HISTORY_LIMIT = 3
DEFAULT_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
FETCH_RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}
"""The fetch streams the artifact to disk in 8 MiB chunks: its memory does not grow with the model."""


class Artifact(Protocol):
    """The ModelVersion a Deployment serves (decide.serving.Version is one)."""

    @property
    def version(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def storage_uri(self) -> str: ...
    @property
    def image(self) -> str | None: ...


def deployment_name(isvc: dict[str, Any], track: str = c.TRACK_STABLE) -> str:
    """`<name>-stable`, and `<name>-canary` for a canary."""
    return child_name(isvc["metadata"]["name"], track, isvc["metadata"]["uid"])


def service_name(isvc: dict[str, Any]) -> str:
    """The InferenceService's own name: the CRD requires a DNS-1035 label for exactly this."""
    return str(isvc["metadata"]["name"])


def selector(isvc: dict[str, Any], track: str = c.TRACK_STABLE) -> dict[str, str]:
    """The stable Deployment's pods (immutable in a Deployment, so it never carries the version)."""
    return {c.LABEL_INFERENCE_SERVICE: isvc["metadata"]["name"], c.LABEL_TRACK: track}


def selector_string(isvc: dict[str, Any]) -> str:
    """status.selector, for the scale subresource."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector(isvc).items()))


def url(isvc: dict[str, Any], spec: InferenceServiceSpec) -> str:
    """The in-cluster predict endpoint for spec.protocol (the Service listens on port 80)."""
    meta = isvc["metadata"]
    base = f"http://{service_name(isvc)}.{meta['namespace']}.svc.cluster.local"
    if spec.protocol is api.Protocol.V1:
        return f"{base}/v1/models/{spec.model}:predict"
    return f"{base}/v2/models/{spec.model}/infer"


def model_dir(version: Artifact) -> str:
    """Where the server finds the artifact: fetched into MODEL_MOUNT (object storage), or on the claim mounted
    there."""
    if is_object_uri(version.storage_uri):
        return MODEL_MOUNT
    _, path = split_pvc_uri(version.storage_uri)
    return f"{MODEL_MOUNT}/{path}" if path else MODEL_MOUNT


def fetch_container(spec: InferenceServiceSpec, version: Artifact, image: str) -> dict[str, Any]:
    """The init container that copies an s3:// artifact into the pod's own storage and checks its sha256 against the
    ModelVersion's before the server starts (KServe's storage initializer, with Driftline's runtime)."""
    env, _, mounts = object_storage(spec.storage)
    container: dict[str, Any] = {
        "name": "fetch",
        "image": image,
        "args": [
            "fetch",
            f"--from={version.storage_uri}",
            f"--to={MODEL_MOUNT}",
            f"--expected-sha256={version.sha256}",
            f"--termination-log={TERMINATION_LOG}",
        ],
        "resources": FETCH_RESOURCES,
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_MOUNT},
            {"name": "tmp", "mountPath": "/tmp"},
            *mounts,
        ],
    }
    if env:
        container["env"] = env
    return container


def server_args(spec: InferenceServiceSpec, version: Artifact, mirror_url: str | None = None) -> list[str]:
    args = [
        "serve",
        f"--model-dir={model_dir(version)}",
        f"--model-name={spec.model}",
        f"--model-version={version.version}",
        f"--expected-sha256={version.sha256}",
        f"--port={spec.port}",
        f"--drain-seconds={DRAIN_SECONDS}",
        f"--termination-log={TERMINATION_LOG}",
    ]
    drift = spec.drift
    if drift is not None:
        if drift.window.seconds is not None:
            args.append(f"--drift-window-seconds={drift.window.seconds}")
        elif drift.window.size is not None:
            args.append(f"--drift-window-size={drift.window.size}")
        args.append(f"--drift-min-samples={drift.min_samples}")
    watch = spec.performance
    if watch is not None:  # without it the server's defaults keep predictions for labels all the same
        args += [
            f"--feedback-max-rows={watch.feedback.max_rows}",
            f"--feedback-max-age-seconds={watch.feedback.max_age_seconds}",
            f"--performance-window-size={watch.window_size}",
            f"--performance-min-samples={watch.min_samples}",
        ]
    if mirror_url is not None and spec.shadow is not None:
        args += [f"--mirror-url={mirror_url}", f"--mirror-share={spec.shadow.share}"]
    batching = spec.batching
    if batching is not None:  # only when asked: new flags in the pod template would restart every serving pod
        args += [f"--batch-max-rows={batching.max_rows}", f"--batch-max-wait-seconds={batching.max_wait_seconds:g}"]
    return args


def _labels(isvc: dict[str, Any], spec: InferenceServiceSpec, component: str = c.COMPONENT_SERVER) -> dict[str, str]:
    name = isvc["metadata"]["name"]
    return {**common_labels(spec.model, component, name), c.LABEL_INFERENCE_SERVICE: name}


def deployment(
    isvc: dict[str, Any],
    spec: InferenceServiceSpec,
    version: Artifact,
    *,
    runtime_image: str,
    previous_version: int | None,
    track: str = c.TRACK_STABLE,
    replicas: int | None = None,
    trusted_keys: str | None = None,
    pod_defaults: PodSettings | None = None,
    image: str | None = None,
    previous_image: str | None = None,
    mirror_url: str | None = None,
) -> dict[str, Any]:
    """The Deployment serving `version`: the stable one (spec.replicas), a canary's or a shadow's (`replicas`; a
    shadow's pods are not the Service's, see COMPONENT_SHADOW). `mirror_url`: the shadow challenger's Service, where
    the pods mirror a share of their requests. RollingUpdate with
    maxUnavailable 0 and maxSurge 1: a new pod must be ready before an old one goes, so a roll forward (or back) never
    drops capacity. With `trusted_keys` (PEM public keys) the server loads only an artifact signed by one of them.
    `image` overrides the image the spec and version choose (decide.images: a failed move keeps the one before);
    `previous_image` is where a move to another image returns if it fails."""
    meta = isvc["metadata"]
    image = image or spec.serving_image(version.image, runtime_image)
    component = c.COMPONENT_SHADOW if track == c.TRACK_SHADOW else c.COMPONENT_SERVER
    labels = {**_labels(isvc, spec, component), c.LABEL_TRACK: track}
    pod_labels = {**labels, c.LABEL_VERSION: str(version.version), c.LABEL_APP_VERSION: str(version.version)}
    probe_port = PORT_NAME
    container: dict[str, Any] = {
        "name": c.SERVER_CONTAINER,
        "image": image,
        "args": server_args(spec, version, mirror_url),
        "ports": [{"name": PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}],
        "resources": spec.resources.model_dump(mode="json", exclude_none=True) if spec.resources else DEFAULT_RESOURCES,
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        # Startup first (the model loads and its digest is checked), then readiness and liveness.
        "startupProbe": {
            "httpGet": {"path": "/v2/health/live", "port": probe_port},
            "periodSeconds": 1,
            "timeoutSeconds": 2,
            "failureThreshold": 120,
        },
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": probe_port},
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": probe_port},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    if trusted_keys is not None:  # public keys: no secret, and a change of trust re-verifies every pod
        container["env"] = [{"name": c.TRUSTED_KEYS_ENV, "value": trusted_keys}]
    extra_labels, extra_annotations, scheduling = pod_settings(spec.pod, pod_defaults)
    annotations: dict[str, str] = {}
    if previous_version is not None:
        annotations[c.ANNOTATION_PREVIOUS_VERSION] = str(previous_version)
    if previous_image is not None and previous_image != image:
        annotations[c.ANNOTATION_PREVIOUS_IMAGE] = previous_image
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(isvc, track),
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(isvc)],
        },
        "spec": {
            "replicas": spec.replicas if replicas is None else replicas,
            "selector": {"matchLabels": selector(isvc, track)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "progressDeadlineSeconds": spec.rollout.progress_deadline_seconds,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "template": {
                "metadata": {
                    "labels": {**extra_labels, **pod_labels},
                    "annotations": {
                        **extra_annotations,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(spec.port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    **scheduling,
                    "securityContext": pod_security_context(),
                    "automountServiceAccountToken": False,  # the server never talks to the API server
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    **_model_source(spec, version, image),
                    "containers": [container],
                },
            },
        },
    }
    return stamped(body)


def _model_source(spec: InferenceServiceSpec, version: Artifact, image: str) -> dict[str, Any]:
    """The pod's volumes (and init container) holding the model at MODEL_MOUNT: an emptyDir the fetch fills, for
    object storage; the claim itself, read-only, for pvc://."""
    tmp = {"name": "tmp", "emptyDir": {}}
    if is_object_uri(version.storage_uri):
        _, volumes, _ = object_storage(spec.storage)
        return {
            "initContainers": [fetch_container(spec, version, image)],
            "volumes": [{"name": "models", "emptyDir": {}}, tmp, *volumes],
        }
    claim, _ = split_pvc_uri(version.storage_uri)
    return {"volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}, tmp]}


def service(isvc: dict[str, Any], spec: InferenceServiceSpec) -> dict[str, Any]:
    """A ClusterIP Service on port 80 in front of every serving pod of the InferenceService. It selects the pods of
    both tracks: without a service mesh, a canary's share of traffic is its share of the ready pods."""
    return _service(isvc, spec, service_name(isvc), c.COMPONENT_SERVER)


def shadow_service_name(isvc: dict[str, Any]) -> str:
    return f"{service_name(isvc)}-shadow"


def shadow_service(isvc: dict[str, Any], spec: InferenceServiceSpec) -> dict[str, Any]:
    """The ClusterIP Service of the shadow challenger's pods: where the serving pods mirror requests, nothing else."""
    return _service(isvc, spec, shadow_service_name(isvc), c.COMPONENT_SHADOW)


def _service(isvc: dict[str, Any], spec: InferenceServiceSpec, name: str, component: str) -> dict[str, Any]:
    meta = isvc["metadata"]
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": _labels(isvc, spec, component),
            "ownerReferences": [owner_reference(isvc)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {c.LABEL_INFERENCE_SERVICE: meta["name"], c.LABEL_COMPONENT: component},
            "ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }
    return stamped(body)


def mirror_url(shadow_svc: dict[str, Any] | None) -> str | None:
    """Where the serving pods mirror to: the shadow Service's ClusterIP (stable for the Service's life), once the
    API server has given it one."""
    ip = ((shadow_svc or {}).get("spec") or {}).get("clusterIP")
    return f"http://{ip}:{SERVICE_PORT}" if ip and ip != "None" else None


def pod_disruption_budget(isvc: dict[str, Any], spec: InferenceServiceSpec) -> dict[str, Any] | None:
    """The stable pods' PodDisruptionBudget while the service has more than one replica: a node drain or an
    autoscaler takes at most one serving pod at a time. None at one replica or none: a budget would block every
    drain of that node."""
    if spec.replicas <= 1:
        return None
    meta = isvc["metadata"]
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": service_name(isvc),
            "namespace": meta["namespace"],
            "labels": _labels(isvc, spec),
            "ownerReferences": [owner_reference(isvc)],
        },
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(isvc)}},
    }
    return stamped(body)


def may_have_budget(spec: InferenceServiceSpec, live: dict[str, Any] | None) -> bool:
    """Whether a PodDisruptionBudget may exist: more than one replica asked for, or still running (a scale-down
    deletes it); otherwise there is nothing to look for."""
    return spec.replicas > 1 or int(((live or {}).get("spec") or {}).get("replicas") or 0) > 1


def spec_hash(body: dict[str, Any]) -> str:
    """A digest of a rendered manifest (its own hash annotation left out)."""
    doc = json.loads(json.dumps(body))
    (doc.get("metadata", {}).get("annotations") or {}).pop(c.ANNOTATION_SPEC_HASH, None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def stamped(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with the hash annotation that lets the operator skip patches that would change nothing."""
    body["metadata"].setdefault("annotations", {})[c.ANNOTATION_SPEC_HASH] = spec_hash(body)
    return body


def needs_update(live: dict[str, Any] | None, desired: dict[str, Any]) -> bool:
    """Whether `live` must be brought in line with `desired`: a different rendering (another hash), or a field the
    operator renders that someone changed since (`kubectl scale`, `kubectl set image`, an edit). Fields only others
    set (their annotations, labels, env, containers) and the API server's defaults are not a difference: server-side
    apply leaves them alone anyway."""
    if live is None:
        return True
    live_meta, desired_meta = live.get("metadata") or {}, desired["metadata"]
    if (live_meta.get("annotations") or {}).get(c.ANNOTATION_SPEC_HASH) != desired_meta["annotations"].get(
        c.ANNOTATION_SPEC_HASH
    ):
        return True
    return not _covers(live, desired)


def edited_fields(live: dict[str, Any] | None, desired: dict[str, Any]) -> list[str]:
    """The fields the operator renders that someone changed in `live` since the same rendering was applied (so a
    patch would revert a person's edit, e.g. spec.replicas after `kubectl scale`), as paths with list items named
    (spec.template.spec.containers[server].image); none for a new rendering or a missing child."""
    if live is None:
        return []
    hashes = [(d.get("metadata") or {}).get("annotations", {}).get(c.ANNOTATION_SPEC_HASH) for d in (live, desired)]
    return _differences(live, desired, "") if hashes[0] == hashes[1] else []


def _differences(live: Any, desired: Any, path: str, quantities: bool = False) -> list[str]:
    if isinstance(desired, dict) and isinstance(live, dict):
        out: list[str] = []
        for k, v in desired.items():
            at = f"{path}.{k}" if path else k
            if k in live:
                out += _differences(live[k], v, at, quantities or k == "resources")
            elif v not in (None, {}, []):
                out.append(at)
        return out
    if isinstance(desired, list) and isinstance(live, list) and desired and all(isinstance(d, dict) for d in desired):
        out = []
        for i, d in enumerate(desired):
            if any(_covers(item, d, quantities) for item in live):
                continue
            key = d.get("name")
            same = next((x for x in live if isinstance(x, dict) and key is not None and x.get("name") == key), None)
            at = f"{path}[{key if key is not None else i}]"
            out += _differences(same, d, at, quantities) if same is not None else [at]
        return out
    return [] if _covers(live, desired, quantities) else [path]


def _covers(live: Any, desired: Any, quantities: bool = False) -> bool:
    """Whether every field of `desired` has its value in `live`. Lists of objects (containers, ports, volumes, env,
    ownerReferences) may hold more items in `live`; lists of strings (args) must be equal; an empty value may be
    absent (the API server omits it); under `resources`, quantities compare by value ("0.5" is "500m", 1 is "1")."""
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(
            _covers(live[k], v, quantities or k == "resources") if k in live else v in (None, {}, [])
            for k, v in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list):
            return False
        if desired and all(isinstance(d, dict) for d in desired):
            return all(any(_covers(item, d, quantities) for item in live) for d in desired)
        return len(live) == len(desired) and all(_covers(a, b, quantities) for a, b in zip(live, desired, strict=True))
    if quantities and live != desired:
        a, b = quantity_value(live), quantity_value(desired)
        return a is not None and a == b
    return bool(live == desired)
