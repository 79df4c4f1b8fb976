"""InferenceService: serve a model's Production (or pinned) version, roll it forward and back, watch its drift."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field

from driftline.api.base import ApiModel, FieldError, StatusModel, rule
from driftline.api.batching import BatchingSpec
from driftline.api.common import Conditions, ObjectMeta, PodSettings, ResourceRequirements, StorageSpec
from driftline.api.constants import API_VERSION, HISTORY_CAP
from driftline.api.drift import DriftSpec, DriftStatus
from driftline.api.fields import Duration, ImageRef, Int, ModelName, ModelVersionNumber, Timestamp
from driftline.api.monitor import MonitorAction
from driftline.api.performance import PerformanceSpec, PerformanceStatus
from driftline.api.rollout import AnalysisStatus, RolloutSpec
from driftline.api.shadow import ShadowSpec, ShadowStatus
from driftline.api.trainingjob import TrainingJobSpec

DNS_1035_LABEL: Final = "^[a-z]([-a-z0-9]*[a-z0-9])?$"


class Protocol(StrEnum):
    """Inference protocol."""

    V1 = "v1"  # KServe V1: POST /v1/models/<name>:predict with {"instances": [...]}
    V2 = "v2"  # Open Inference Protocol: POST /v2/models/<name>/infer with named tensors


class RetrainData(StrEnum):
    """What a retrain learns from."""

    TEMPLATE = "Template"
    """The template's dataset."""
    LIVE_LABELS = "LiveLabels"
    """The labelled rows the serving pods hold (ground truth clients sent back): what the world says now. Without
    any, the template's dataset, said in the retrain's Event."""


class RetrainSpec(ApiModel):
    """The TrainingJob a monitor starts (drift or performance action Retrain), or a person asks for."""

    template: TrainingJobSpec
    """Spec of the TrainingJob to create; its model must be this service's model. Its promotion policy decides
    whether the new version goes to Production, and so whether the service rolls forward."""
    cooldown: Duration = "1h"
    """Least time between two retrains started by the monitors. At most one runs at a time."""
    data: RetrainData = RetrainData.TEMPLATE
    """What the retrain learns from: Template (the template's dataset) or LiveLabels (the serving pods' labelled
    windows, stored in a ConfigMap owned by the service, at most 900 KiB, the newest rows)."""


class InferenceServiceSpec(ApiModel):
    """Which model to serve, how, how to move between versions, and how to watch it."""

    model: ModelName
    """Name of the model to serve."""
    version: ModelVersionNumber | None = None
    """Pin a version. Without a pin the service follows the model's Production version. A pinned version that gets
    rolled back is not served; the service keeps the last good version and reports Degraded until the pin changes."""
    replicas: Annotated[Int, Field(ge=0, le=100)] = 1
    """Number of serving pods of the stable version."""
    resources: ResourceRequirements | None = None
    """Resources of each serving container."""
    image: ImageRef | None = None
    """Runtime image for every version served; when empty, each version's own (the image that trained it), else the
    operator's runtime image. A change moves the served version to it as a rolling update, back to the image before
    (status.failedImage) if its pods are not available within rollout.progressDeadlineSeconds."""
    pod: PodSettings | None = None
    """Where and how the serving pods run, stable and canary alike: labels, annotations, imagePullSecrets,
    nodeSelector, tolerations, affinity, topologySpreadConstraints, priorityClassName. Empty fields take the chart's
    podDefaults."""
    protocol: Protocol = Protocol.V2
    """Protocol that status.url points at (v1 or v2). The server answers both."""
    port: Annotated[Int, Field(ge=1024, le=65535)] = 8080
    """Container and Service port of the server (1024..65535: the pods run as non-root)."""
    batching: BatchingSpec | None = None
    """How the server batches concurrent requests into one call of the model; when empty, the server's defaults
    (up to 256 rows a call, no added wait)."""
    rollout: RolloutSpec = RolloutSpec()
    """How the service moves to a new version."""
    drift: DriftSpec | None = None
    """Drift watching; off when empty."""
    performance: PerformanceSpec | None = None
    """Live performance watching on labelled rows (ground truth sent to the pods' feedback endpoint); off when
    empty."""
    retrain: RetrainSpec | None = None
    """What to train when a monitor asks for it (action Retrain)."""
    shadow: ShadowSpec | None = None
    """A challenger version on a mirrored share of the traffic, scored on the same labels; off when empty."""
    storage: StorageSpec | None = None
    """How the serving pods reach object storage: a version stored at s3:// is fetched into each pod before its
    server starts, with these settings."""

    def serving_image(self, version_image: str | None, runtime_image: str) -> str:
        """The image a version serves with: the service's own, else the version's (the runtime image that trained
        it), else the operator's current runtime image, so a new default moves only versions that name none."""
        return self.image or version_image or runtime_image

    @rule(
        "!has(self.drift) || self.drift.action != 'Retrain' || has(self.retrain)",
        "drift action Retrain needs spec.retrain.template",
        field_path=".retrain",
        reason=FieldError.REQUIRED,
    )
    def _retrain_has_template(self) -> bool:
        return self.drift is None or self.drift.action is not MonitorAction.RETRAIN or self.retrain is not None

    @rule(
        "!has(self.performance) || self.performance.action != 'Retrain' || has(self.retrain)",
        "performance action Retrain needs spec.retrain.template",
        field_path=".retrain",
        reason=FieldError.REQUIRED,
    )
    def _performance_retrain_has_template(self) -> bool:
        watch = self.performance
        return watch is None or watch.action is not MonitorAction.RETRAIN or self.retrain is not None

    @rule(
        "!has(self.shadow) || !has(self.shadow.version) || !has(self.version) || self.shadow.version != self.version",
        "shadow.version is the version spec.version pins: a version in shadow of itself has nothing to be compared "
        "with",
        field_path=".shadow.version",
    )
    def _shadow_not_the_pin(self) -> bool:
        shadow = self.shadow
        return shadow is None or shadow.version is None or self.version is None or shadow.version != self.version

    @rule(
        "!has(self.retrain) || self.retrain.template.model == self.model",
        "retrain.template.model must equal spec.model: a retrain makes a new version of the model served",
        field_path=".retrain.template.model",
    )
    def _retrain_same_model(self) -> bool:
        return self.retrain is None or self.retrain.template.model == self.model


class ServicePhase(StrEnum):
    """Where an InferenceService stands."""

    PENDING = "Pending"  # nothing to serve yet, e.g. no Production version
    PROGRESSING = "Progressing"  # a roll forward, canary or rollback is under way
    READY = "Ready"  # serving what spec asks for
    DEGRADED = "Degraded"  # serving, but not what spec asks for, or drift/metrics trouble
    FAILED = "Failed"  # not serving


class HistoryAction(StrEnum):
    """A change of the served version."""

    ROLL_FORWARD = "RollForward"
    ROLLBACK = "Rollback"
    CANARY_STARTED = "CanaryStarted"
    CANARY_PROMOTED = "CanaryPromoted"
    CANARY_ABORTED = "CanaryAborted"
    RETRAIN = "Retrain"
    IMAGE_MOVE = "ImageMove"
    IMAGE_ROLLBACK = "ImageRollback"


class HistoryEntry(StatusModel):
    """One rollout, rollback or retrain."""

    time: Timestamp
    """When it happened."""
    action: HistoryAction
    """RollForward, Rollback, CanaryStarted, CanaryPromoted, CanaryAborted, Retrain, ImageMove or ImageRollback."""
    from_version: int | None = None
    """Version served before."""
    to_version: int | None = None
    """Version served after (or being tried)."""
    reason: str | None = None
    """CamelCase reason, e.g. AnalysisFailed, DriftDetected, RollbackRequested."""
    message: str | None = None
    """Details for people, e.g. the failed measurement and its threshold."""


class FailedImage(StatusModel):
    """A runtime image the service was moved to that did not serve its version, so the operator moved it back."""

    image: ImageRef
    """The image that failed."""
    version: int
    """The version it was to serve."""
    reason: Annotated[str, Field(max_length=128)]
    """Why it was moved back, e.g. ProgressDeadlineExceeded."""
    message: Annotated[str, Field(max_length=1024)] = ""
    """What failed: the rollout's and the pods' own words."""
    time: Timestamp
    """When it was moved back."""


class InferenceServiceStatus(StatusModel):
    """What is served, and how the last rollout and drift readings went."""

    phase: ServicePhase | None = None
    """Pending, Progressing, Ready, Degraded or Failed."""
    active_version: int | None = None
    """Version the stable Deployment serves."""
    previous_version: int | None = None
    """Version served before the active one; where a rollback returns to."""
    canary_version: int | None = None
    """Version under canary, if any."""
    canary_weight: int | None = None
    """Traffic share of the canary, in percent."""
    image: ImageRef | None = None
    """Runtime image the stable pods run."""
    failed_image: FailedImage | None = None
    """The image spec.image names, when it failed to serve and the service went back to the image before it; cleared
    when spec.image changes."""
    url: str | None = None
    """In-cluster URL of the predict endpoint for spec.protocol."""
    replicas: int | None = None
    """Serving pods that exist."""
    ready_replicas: int | None = None
    """Serving pods that are ready."""
    selector: Annotated[str, Field(max_length=1024)] | None = None
    """Label selector of the stable serving pods, for the scale subresource (kubectl scale, HorizontalPodAutoscaler)."""
    drift: DriftStatus | None = None
    """Latest drift reading."""
    performance: PerformanceStatus | None = None
    """Latest live performance reading."""
    shadow: ShadowStatus | None = None
    """How the shadow challenger does, next to the version served."""
    analysis: AnalysisStatus | None = None
    """Analysis of the current or last canary."""
    history: Annotated[list[HistoryEntry], Field(max_length=HISTORY_CAP)] = []
    """The newest rollouts, rollbacks and retrains, oldest first."""
    last_rollback_request: Annotated[str, Field(max_length=253)] | None = None
    """Value of the driftline.dev/rollback annotation last carried out; a different value is a new request."""
    last_retrain_request: Annotated[str, Field(max_length=253)] | None = None
    """Value of the driftline.dev/retrain annotation last handled; a different value is a new request."""
    conditions: Conditions = []
    """Ready, Progressing, Degraded, Drifted, and Reconciling/Stalled (kstatus)."""
    observed_generation: int | None = None
    """The metadata.generation the status reflects."""


class InferenceService(ApiModel):
    """Serves a model over HTTP (KServe V1 and Open Inference Protocol V2). Follows the model's Production version,
    or a pinned one; rolls forward by Rolling update or analysed Canary, rolls back on failure or on request, and
    watches live inputs for drift."""

    api_version: Literal["driftline.dev/v1alpha1"] = API_VERSION
    """APIVersion of the object."""
    kind: Literal["InferenceService"] = "InferenceService"
    """Kind of the object."""
    metadata: ObjectMeta = ObjectMeta()
    """Standard object metadata."""
    spec: InferenceServiceSpec
    """What to serve and how."""
    status: InferenceServiceStatus | None = None
    """What the operator observed."""

    @rule(
        f"self.metadata.name.matches(r'{DNS_1035_LABEL}')",
        "metadata.name must be a DNS-1035 label (it names the Service): lowercase letters, digits and '-', starting "
        "with a letter",
        field_path=".metadata.name",
    )
    def _name_is_service_name(self) -> bool:
        return self.metadata.name is None or re.fullmatch(DNS_1035_LABEL, self.metadata.name) is not None
