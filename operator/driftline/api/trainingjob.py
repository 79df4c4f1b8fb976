"""TrainingJob: train one model version from a dataset, with the built-in trainer or a custom pod."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from driftline.api.base import ApiModel, FieldError, StatusModel, rule
from driftline.api.common import (
    Conditions,
    DatasetSpec,
    ObjectMeta,
    PodSettings,
    PodTemplate,
    ResourceRequirements,
    SecretKeySelector,
    StorageSpec,
)
from driftline.api.constants import API_VERSION
from driftline.api.fields import Bool, EstimatorPath, ImageRef, Int, ModelName, StorageUri, Timestamp
from driftline.api.promotion import PromotionPolicy


class OutputSpec(ApiModel):
    """Where the trained artifact is written."""

    storage_uri: StorageUri
    """An object storage prefix, s3://<bucket>/<prefix> (reached with spec.storage.s3), or a directory on a
    PersistentVolumeClaim, pvc://<claim>/<path>. Each run gets its own <model>/<run> below it, written once and never
    overwritten: in object storage its metadata.json is uploaded last and marks it complete. A claim must be
    ReadWriteMany for the serving pods to read it from other nodes; object storage has no such limit."""


class SigningSpec(ApiModel):
    """How the trained artifact is signed."""

    secret_key_ref: SecretKeySelector
    """The Secret key holding the private key, an unencrypted elliptic-curve PEM (P-256, P-384 or P-521). The trainer
    signs the artifact's files into model.sig beside them, in the OpenSSF model signing format (verifiable with
    `model_signing verify key`); a custom trainer gets the key as DRIFTLINE_SIGNING_KEY (`driftline-runtime publish`
    signs with it). Whoever may read this Secret can sign as this key: see docs/reliability.md."""


class TrainingJobSpec(ApiModel):
    """What to train, on which data, where to put it, and whether the result may be promoted on its own."""

    model: ModelName
    """Name of the model the resulting version is registered under (the ModelVersion is <model>-v<version>)."""
    dataset: DatasetSpec
    """The training data and its split."""
    estimator: EstimatorPath | None = None
    """Built-in trainer: the estimator's class path, e.g. sklearn.linear_model.LogisticRegression. Only module
    prefixes the operator allows are accepted (sklearn. by default). Exactly one of estimator or template."""
    params: dict[str, Any] | None = None
    """Hyperparameters: keyword arguments of the estimator, or handed to a custom template as the JSON in the
    environment variable DRIFTLINE_PARAMS. Recorded on the ModelVersion."""
    template: PodTemplate | None = None
    """Bring your own trainer: a pod template whose image honours Driftline's training contract (the same artifact
    files as the built-in trainer, and a JSON summary in the termination message). Exactly one of estimator or
    template."""
    image: ImageRef | None = None
    """Image of the built-in trainer; the operator's runtime image when empty."""
    resources: ResourceRequirements | None = None
    """Resources of the built-in trainer's container."""
    pod: PodSettings | None = None
    """Where and how the built-in trainer's pod runs (labels, annotations, imagePullSecrets, nodeSelector,
    tolerations, affinity, topologySpreadConstraints, priorityClassName); empty fields take the chart's podDefaults.
    With a template, set them in the template."""
    output: OutputSpec
    """Where the artifact goes."""
    storage: StorageSpec | None = None
    """How the trainer reaches object storage, for an s3:// dataset or output."""
    promotion: PromotionPolicy = PromotionPolicy()
    """Whether the resulting version becomes Production on its own."""
    signing: SigningSpec | None = None
    """Sign the artifact, for clusters or services that serve only signed artifacts; unsigned when empty."""
    backoff_limit: Annotated[Int, Field(ge=0, le=20)] = 1
    """Retries of the training pod before the TrainingJob fails (the Job's backoffLimit)."""
    active_deadline_seconds: Annotated[Int, Field(ge=1, le=30 * 86400)] | None = None
    """Time limit for the whole training, retries included; unlimited when empty."""
    ttl_seconds_after_finished: Annotated[Int, Field(ge=0, le=30 * 86400)] | None = None
    """Delete the finished Job and its pods (not the TrainingJob or the ModelVersion) this long after it ends, once
    the operator has recorded its outcome; kept when empty. The training never runs again."""
    suspend: Bool = False
    """Create the Job suspended, or suspend a running one (its pods are deleted)."""

    @rule(
        "has(self.estimator) || has(self.template)",
        "set one of estimator (built-in trainer) or template (custom pod)",
        field_path=".estimator",
        reason=FieldError.REQUIRED,
    )
    def _one_trainer(self) -> bool:
        return self.estimator is not None or self.template is not None

    @rule(
        "!has(self.estimator) || !has(self.template)",
        "estimator and template are mutually exclusive: use the built-in trainer or a custom pod, not both",
        field_path=".template",
        reason=FieldError.FORBIDDEN,
    )
    def _not_both_trainers(self) -> bool:
        return self.estimator is None or self.template is None

    @rule(
        "!has(self.template) || (!has(self.image) && !has(self.resources))",
        "image and resources configure the built-in trainer; with a template set them on its containers",
        field_path=".image",
        reason=FieldError.FORBIDDEN,
    )
    def _builtin_settings_only_builtin(self) -> bool:
        return self.template is None or (self.image is None and self.resources is None)

    @rule(
        "!has(self.template) || !has(self.pod)",
        "pod configures the built-in trainer's pod; with a template, set these in the template",
        field_path=".pod",
        reason=FieldError.FORBIDDEN,
    )
    def _pod_only_builtin(self) -> bool:
        return self.template is None or self.pod is None


class TrainingPhase(StrEnum):
    """Where a TrainingJob stands; follows its Job."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class TrainingJobStatus(StatusModel):
    """What the operator observed of the training."""

    phase: TrainingPhase | None = None
    """Pending, Running, Succeeded or Failed."""
    job_name: str | None = None
    """Name of the batch Job running the training."""
    start_time: Timestamp | None = None
    """When the Job started."""
    completion_time: Timestamp | None = None
    """When the Job finished."""
    model_version: str | None = None
    """Name of the ModelVersion the training produced."""
    version: int | None = None
    """Its version number."""
    message: str | None = None
    """Why the training failed, from the trainer's termination message."""
    conditions: Conditions = []
    """Ready (True once the ModelVersion exists), Reconciling and Stalled (kstatus)."""
    observed_generation: int | None = None
    """The metadata.generation the status reflects."""


class TrainingJob(ApiModel):
    """Trains one version of a model: runs a batch Job, then registers the result as a ModelVersion, which the
    promotion policy may make Production."""

    api_version: Literal["driftline.dev/v1alpha1"] = API_VERSION
    """APIVersion of the object."""
    kind: Literal["TrainingJob"] = "TrainingJob"
    """Kind of the object."""
    metadata: ObjectMeta = ObjectMeta()
    """Standard object metadata."""
    spec: TrainingJobSpec
    """What to train."""
    status: TrainingJobStatus | None = None
    """What the operator observed."""
