"""The batch Job that trains a model, and the ModelVersion that records what came out."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from driftline.api import constants as c
from driftline.api.common import PodSettings
from driftline.api.modelversion import Predictor
from driftline.api.trainingjob import TrainingJobSpec
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

OUTPUT_MOUNT = "/mnt/output"
DATASET_MOUNT = "/mnt/dataset"
TERMINATION_LOG = "/dev/termination-log"
DEFAULT_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}}
AUTHORIZATION_ENV = "DRIFTLINE_DATASET_AUTHORIZATION"
"""The trainer's environment variable holding the dataset's Authorization header (the runtime reads the same name)."""


def job_name(tj: dict[str, Any]) -> str:
    return child_name(tj["metadata"]["name"], "train", tj["metadata"]["uid"])


@dataclass(frozen=True)
class Output:
    """Where this run's artifact goes: one location per TrainingJob run (<output>/<model>/<name>-<uid>), so two runs
    never write over each other and a version's files never change after registration."""

    uri: str
    """The artifact's storage URI, as the ModelVersion records it."""
    target: str
    """What the trainer writes to: a path under OUTPUT_MOUNT (a claim), or the s3:// URI itself."""
    claim: str | None
    """The claim mounted at OUTPUT_MOUNT, for pvc:// output."""


def output_location(tj: dict[str, Any], spec: TrainingJobSpec) -> Output:
    run = f"{tj['metadata']['name']}-{tj['metadata']['uid'][:8]}"
    uri = spec.output.storage_uri
    if is_object_uri(uri):
        prefix = uri.rstrip("/")
        location = f"{prefix}/{spec.model}/{run}"
        return Output(uri=location, target=location, claim=None)
    claim, prefix = split_pvc_uri(uri)
    rel = "/".join(p for p in (prefix, spec.model, run) if p)
    return Output(uri=f"pvc://{claim}/{rel}", target=f"{OUTPUT_MOUNT}/{rel}", claim=claim)


def _dataset(spec: TrainingJobSpec) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """The --dataset argument, plus the volumes and mounts it needs (PVC and ConfigMap datasets are mounted)."""
    uri = spec.dataset.uri
    if uri.startswith("pvc://"):
        claim, path = split_pvc_uri(uri)
        vol = {"name": "dataset", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        return f"{DATASET_MOUNT}/{path}", [vol], [{"name": "dataset", "mountPath": DATASET_MOUNT, "readOnly": True}]
    if uri.startswith("configmap://"):
        name, _, key = uri.removeprefix("configmap://").partition("/")
        vol = {"name": "dataset", "configMap": {"name": name, "items": [{"key": key, "path": key}]}}
        return f"{DATASET_MOUNT}/{key}", [vol], [{"name": "dataset", "mountPath": DATASET_MOUNT, "readOnly": True}]
    return uri, [], []


def dataset_env(spec: TrainingJobSpec) -> list[dict[str, Any]]:
    """The dataset's credentials as a reference the kubelet resolves: the operator never reads the Secret, and the
    Job and its pods carry only the Secret's name and key."""
    auth = spec.dataset.authorization
    if auth is None:
        return []
    ref = {"name": auth.secret_key_ref.name, "key": auth.secret_key_ref.key}
    return [{"name": AUTHORIZATION_ENV, "valueFrom": {"secretKeyRef": ref}}]


def signing_env(spec: TrainingJobSpec) -> list[dict[str, Any]]:
    """The signing key as a reference the kubelet resolves, like the dataset's credentials."""
    if spec.signing is None:
        return []
    ref = {"name": spec.signing.secret_key_ref.name, "key": spec.signing.secret_key_ref.key}
    return [{"name": c.SIGNING_KEY_ENV, "valueFrom": {"secretKeyRef": ref}}]


def trainer_args(tj: dict[str, Any], spec: TrainingJobSpec, allowed_prefixes: tuple[str, ...]) -> list[str]:
    dataset_arg, _, _ = _dataset(spec)
    output = output_location(tj, spec)
    args = [
        "train",
        f"--dataset={dataset_arg}",
        f"--dataset-ref={spec.dataset.uri}",
        f"--target={spec.dataset.target}",
        f"--validation-split={spec.dataset.validation_split}",
        f"--seed={spec.dataset.seed}",
        f"--estimator={spec.estimator}",
        f"--params={json.dumps(spec.params or {}, sort_keys=True)}",
        f"--allowed-prefixes={','.join(allowed_prefixes)}",
        f"--output-dir={output.target}",
        f"--artifact-uri={output.uri}",
        f"--termination-log={TERMINATION_LOG}",
        f"--threads={trainer_threads(spec)}",
    ]
    if spec.dataset.format.value != "auto":
        args.append(f"--format={spec.dataset.format.value}")
    if spec.dataset.features:
        args.append(f"--features={','.join(spec.dataset.features)}")
    return args


def trainer_threads(spec: TrainingJobSpec) -> int:
    """BLAS threads = the CPU limit rounded up, else 1: unbounded threads on a shared node only fight each other."""
    limit = (spec.resources.limits or {}).get("cpu") if spec.resources else None
    if limit is None:
        return 1
    text = str(limit)
    cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    return max(1, math.ceil(cores))


def training_job(
    tj: dict[str, Any],
    spec: TrainingJobSpec,
    *,
    runtime_image: str,
    allowed_prefixes: tuple[str, ...],
    pod_defaults: PodSettings | None = None,
) -> dict[str, Any]:
    meta = tj["metadata"]
    name = job_name(tj)
    labels = {**common_labels(spec.model, c.COMPONENT_TRAINER, meta["name"]), c.LABEL_TRAINING_JOB: meta["name"]}
    output = output_location(tj, spec)
    output_volumes, output_mounts = _output_volume(output)
    storage_env, storage_volumes, storage_mounts = object_storage(spec.storage)
    pod_labels, pod_annotations = labels, dict[str, str]()
    if spec.template is not None:
        pod = _custom_pod(spec, output, [*output_volumes, *storage_volumes], [*output_mounts, *storage_mounts])
    else:
        _, volumes, mounts = _dataset(spec)
        container = {
            "name": c.TRAINER_CONTAINER,
            "image": spec.image or runtime_image,
            "args": trainer_args(tj, spec, allowed_prefixes),
            "resources": spec.resources.model_dump(mode="json", exclude_none=True)
            if spec.resources
            else DEFAULT_RESOURCES,
            "securityContext": container_security_context(),
            "terminationMessagePath": TERMINATION_LOG,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": [*output_mounts, *mounts, *storage_mounts, {"name": "tmp", "mountPath": "/tmp"}],
        }
        if env := [*dataset_env(spec), *signing_env(spec), *storage_env]:
            container["env"] = env
        extra_labels, pod_annotations, scheduling = pod_settings(spec.pod, pod_defaults)
        pod_labels = {**extra_labels, **labels}
        pod = {
            **scheduling,
            "restartPolicy": "Never",
            "securityContext": pod_security_context(),
            "automountServiceAccountToken": False,  # the trainer never talks to the API server
            "containers": [container],
            "volumes": [*output_volumes, *volumes, *storage_volumes, {"name": "tmp", "emptyDir": {}}],
        }
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "suspend": spec.suspend,
        "template": {
            "metadata": {"labels": pod_labels, **({"annotations": pod_annotations} if pod_annotations else {})},
            "spec": pod,
        },
    }
    if spec.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    # No ttlSecondsAfterFinished yet: the Job and its pods must outlive the reading of the trainer's termination
    # message. The operator sets it once the outcome is recorded (decide.training.ttl_patch).
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner_reference(tj)],
        },
        "spec": job_spec,
    }


def _output_volume(output: Output) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The claim a pvc:// output is written to, mounted at OUTPUT_MOUNT; nothing for object storage."""
    if output.claim is None:
        return [], []
    return [{"name": "output", "persistentVolumeClaim": {"claimName": output.claim}}], [
        {"name": "output", "mountPath": OUTPUT_MOUNT}
    ]


def _custom_pod(
    spec: TrainingJobSpec, output: Output, volumes: list[dict[str, Any]], mounts: list[dict[str, Any]]
) -> dict[str, Any]:
    """A bring-your-own trainer: the user's pod, plus the output volume, object storage settings and the contract's
    environment. With object storage output the trainer uploads itself: DRIFTLINE_ARTIFACT_URI names the prefix and
    DRIFTLINE_OUTPUT_DIR is absent (docs/training-contract.md)."""
    assert spec.template is not None
    pod: dict[str, Any] = json.loads(json.dumps(spec.template.spec.model_dump(mode="json", exclude_none=True)))
    pod.setdefault("restartPolicy", "Never")
    # A pod that needs the API server says so: the namespace's default ServiceAccount token is not handed out unasked.
    pod.setdefault("automountServiceAccountToken", False)
    pod["volumes"] = [*(pod.get("volumes") or []), *volumes]
    storage_env, _, _ = object_storage(spec.storage)
    contract = [
        *([] if output.claim is None else [{"name": "DRIFTLINE_OUTPUT_DIR", "value": output.target}]),
        {"name": "DRIFTLINE_ARTIFACT_URI", "value": output.uri},
        {"name": "DRIFTLINE_DATASET_URI", "value": spec.dataset.uri},
        {"name": "DRIFTLINE_TARGET", "value": spec.dataset.target},
        {"name": "DRIFTLINE_SEED", "value": str(spec.dataset.seed)},
        {"name": "DRIFTLINE_VALIDATION_SPLIT", "value": str(spec.dataset.validation_split)},
        {"name": "DRIFTLINE_TERMINATION_LOG", "value": TERMINATION_LOG},
        *dataset_env(spec),
        *signing_env(spec),
        *storage_env,
    ]
    for container in pod.get("containers") or []:
        container["volumeMounts"] = [*(container.get("volumeMounts") or []), *mounts]
        container["env"] = [*(container.get("env") or []), *contract]
        container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    return pod


PREDICTORS = frozenset(p.value for p in Predictor)


def model_version(
    tj: dict[str, Any],
    spec: TrainingJobSpec,
    summary: dict[str, Any],
    version: int,
    image: str,
    image_id: str | None = None,
    serving_image: str | None = None,
) -> dict[str, Any]:
    """The ModelVersion for a finished run: `image` ran it, `image_id` is that image by digest where its node reported
    one, `serving_image` the image a built-in trainer's version serves with (default `image`). Owned by nothing: it
    must outlive the TrainingJob and its TTL."""
    meta = tj["metadata"]
    artifact = summary["artifact"]
    dataset = summary.get("dataset") or {}
    mv_spec: dict[str, Any] = {
        "model": spec.model,
        "version": version,
        "artifact": {
            "storageUri": artifact["storageUri"],
            "format": artifact.get("format", "joblib"),
            "sha256": artifact["sha256"],
            "framework": artifact.get("framework", "scikit-learn"),
        },
        "metrics": {k: float(v) for k, v in (summary.get("metrics") or {}).items()},
        "trainingJobRef": {
            "apiVersion": c.API_VERSION,
            "kind": c.TRAINING_JOB.kind,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "dataset": {"uri": spec.dataset.uri, **({"sha256": dataset["sha256"]} if dataset.get("sha256") else {})},
        "trainingImage": image,
    }
    if image_id:
        mv_spec["trainingImageID"] = image_id
    if spec.template is None:  # the built-in trainer: its runtime image serves what it pickled
        mv_spec["servingImage"] = serving_image or image
    for key in ("frameworkVersion", "signedBy"):
        if artifact.get(key):
            mv_spec["artifact"][key] = artifact[key]
    if artifact.get("predictor") in PREDICTORS:  # another runtime's word for it is left out, not a refused version
        mv_spec["artifact"]["predictor"] = artifact["predictor"]
        if artifact.get("predictorReason"):
            mv_spec["artifact"]["predictorReason"] = str(artifact["predictorReason"])[:256]
    if summary.get("params"):
        mv_spec["params"] = summary["params"]
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.MODEL_VERSION.kind,
        "metadata": {
            "name": model_version_name(spec.model, version),
            "namespace": meta["namespace"],
            "labels": {
                c.LABEL_MODEL: spec.model,
                c.LABEL_VERSION: str(version),
                c.LABEL_TRAINING_JOB: meta["name"],
                LABEL_TRAINING_JOB_UID: meta["uid"],
                c.LABEL_APP_PART_OF: c.PART_OF,
                c.LABEL_APP_MANAGED_BY: c.MANAGED_BY,
            },
        },
        "spec": mv_spec,
    }


LABEL_TRAINING_JOB_UID = f"{c.GROUP}/trainingjob-uid"
"""On a ModelVersion: the uid of the run that made it, so a restarted operator finds it instead of making another."""


def model_version_name(model: str, version: int) -> str:
    return f"{model}-v{version}"
