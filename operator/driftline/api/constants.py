"""Names shared by the operator, the runtime, the docs and the tests: group, kinds, labels, annotations, reasons.

Every string the API contract depends on lives here, once, so a label or annotation key is never spelled twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

GROUP: Final = "driftline.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "driftline.dev/v1alpha1"  # a literal, so models can type apiVersion as Literal

# `kubectl get driftline` lists all three kinds.
CATEGORY: Final = "driftline"


@dataclass(frozen=True)
class KindNames:
    """How one kind is spelled in the API: kind, plural and singular resource, short names."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


# Short names are chosen not to collide with other operators a cluster is likely to run next to Driftline:
# - TrainingJob: `dtj`. Not `tj`/`trainjob`: Kubeflow Trainer's kind TrainJob owns the singular `trainjob`, and the
#   plural `trainingjobs` is already shared with AWS SageMaker's TrainingJob (ACK), so users need a unique handle.
# - ModelVersion: `mv`. No widespread CRD uses it; `kubectl get mv` is what the docs show.
# - InferenceService: `dis` (Driftline InferenceService). KServe owns `isvc` and the plural `inferenceservices`;
#   when both are installed `kubectl get inferenceservices` is ambiguous, `kubectl get dis` never is.
TRAINING_JOB: Final = KindNames("TrainingJob", "trainingjobs", "trainingjob", ("dtj",))
MODEL_VERSION: Final = KindNames("ModelVersion", "modelversions", "modelversion", ("mv",))
INFERENCE_SERVICE: Final = KindNames("InferenceService", "inferenceservices", "inferenceservice", ("dis",))
KINDS: Final = (TRAINING_JOB, MODEL_VERSION, INFERENCE_SERVICE)

# --- Labels the operator puts on everything it creates. -------------------------------------------------------------
LABEL_MODEL: Final = f"{GROUP}/model"
"""The model name (TrainingJob/ModelVersion/InferenceService `spec.model`)."""
LABEL_VERSION: Final = f"{GROUP}/version"
"""The integer model version a pod serves or a Job produced, as a decimal string."""
LABEL_COMPONENT: Final = f"{GROUP}/component"
"""What a child object is for: one of the COMPONENT_* values."""
LABEL_TRACK: Final = f"{GROUP}/track"
"""Which Deployment of an InferenceService a pod belongs to: TRACK_STABLE, TRACK_CANARY or TRACK_SHADOW."""
LABEL_INFERENCE_SERVICE: Final = f"{GROUP}/inferenceservice"
"""The owning InferenceService's name, on its Deployments, Services and pods."""
LABEL_TRAINING_JOB: Final = f"{GROUP}/trainingjob"
"""The owning TrainingJob's name, on its Job and pods, and on the ModelVersion it produced (lineage)."""

LABEL_RETRAIN: Final = f"{GROUP}/retrain"
"""On a TrainingJob drift started: its sequence number among the InferenceService's retrains (1, 2, ...)."""

COMPONENT_TRAINER: Final = "trainer"
TRAINER_CONTAINER: Final = "trainer"
"""The built-in trainer's container in its Job's pods."""
COMPONENT_SERVER: Final = "server"
COMPONENT_SHADOW: Final = "shadow-server"
"""A shadow challenger's pods: not component server, so the service's Service never selects them."""
SERVER_CONTAINER: Final = "server"
"""The model server's container in a serving pod."""
TRACK_STABLE: Final = "stable"
TRACK_CANARY: Final = "canary"
TRACK_SHADOW: Final = "shadow"
"""A shadow challenger's pods: never selected by the service's Service, reached only by mirrored requests."""

# The recommended labels (kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
LABEL_APP_NAME: Final = "app.kubernetes.io/name"
LABEL_APP_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_APP_VERSION: Final = "app.kubernetes.io/version"
LABEL_APP_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_APP_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_APP_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
PART_OF: Final = "driftline"
MANAGED_BY: Final = "driftline-operator"

# --- Annotations: declarative requests from people and Git. ----------------------------------------------------------
# kubectl apply, Argo CD and Flux never write status, and the operator never rewrites a user's spec. So a person or a
# Git repository asks for a one-off act through an annotation, and the operator records in status the value it last
# carried out. A request is therefore handled once per distinct value: leaving the annotation in Git is harmless, and
# changing its value (e.g. to a date or a commit id) asks again.

ANNOTATION_PROMOTE: Final = f"{GROUP}/promote"
"""On a ModelVersion: `"true"` (or any new value) asks for stage Production, through the same invariants as an
automatic promotion (exactly one Production version per model; the previous one becomes Archived). Handled once per
value; the value carried out is `status.lastPromoteRequest`."""

ANNOTATION_REJECT: Final = f"{GROUP}/reject"
"""On a ModelVersion: `"<reason>"` asks for stage Rejected with that reason; auto-follow never serves a Rejected
version. Handled once per value (`status.lastRejectRequest`)."""

ANNOTATION_ROLLBACK: Final = f"{GROUP}/rollback"
"""On an InferenceService: any new token (e.g. `"2024-06-01T12:00"`) asks to return traffic to
`status.previousVersion` and mark the current version RolledBack. Handled once per token
(`status.lastRollbackRequest`)."""

ANNOTATION_RETRAIN: Final = f"{GROUP}/retrain"
"""On an InferenceService: any new token asks for a retrain from `spec.retrain.template` now (no cooldown), unless one
is still running. Handled once per token (`status.lastRetrainRequest`)."""

ANNOTATION_PROMOTE_VALUE: Final = "true"
"""The conventional value of ANNOTATION_PROMOTE."""

ANNOTATION_AUTHOR: Final = f"{GROUP}/author"
"""On a TrainingJob or InferenceService: who created or last changed its spec, as the chart's mutating admission
policy records it (any other writer's value is replaced). The operator checks this user's rights before it acts."""
ANNOTATION_AUTHOR_GROUPS: Final = f"{GROUP}/author-groups"
"""The author's groups, one per line, recorded with ANNOTATION_AUTHOR."""

# --- Annotations the operator keeps on its own children. -----------------------------------------------------------
ANNOTATION_RETRAIN_SERVED: Final = f"{GROUP}/retrain-served-version"
"""On a retrain TrainingJob: the version served when it was started."""
ANNOTATION_RETRAIN_REASON: Final = f"{GROUP}/retrain-reason"
"""On a retrain TrainingJob: why it was started (its status.history message)."""
ANNOTATION_RETRAIN_TRIGGER: Final = f"{GROUP}/retrain-trigger"
"""On a retrain TrainingJob: who started it, TRIGGER_DRIFT, TRIGGER_PERFORMANCE or TRIGGER_REQUEST (a person). Absent
on retrains started before it existed, all by drift."""
TRIGGER_DRIFT: Final = "Drift"
TRIGGER_PERFORMANCE: Final = "Performance"
TRIGGER_REQUEST: Final = "Request"
ANNOTATION_PREVIOUS_VERSION: Final = f"{GROUP}/previous-version"
"""On a serving Deployment: the version it served before the current one, written in the same patch that changes
the version, so where a rollback returns to survives a lost status write."""
ANNOTATION_PREVIOUS_IMAGE: Final = f"{GROUP}/previous-image"
"""On a stable Deployment moving its version to another runtime image: the image to go back to if the new one fails
(kept until the move's rollout completes, written in the patch that changes the image)."""
ANNOTATION_SPEC_HASH: Final = f"{GROUP}/spec-hash"
"""On a Deployment or Service the operator renders: a hash of the rendered manifest, so an unchanged child is never
patched (no writes at steady state)."""

# kopf keeps its progress and diff-base in annotations under this prefix, never in the validated status. Not GROUP
# itself: kopf ignores every annotation under a storage prefix it detects, which would hide driftline.dev/promote.
KOPF_PREFIX: Final = f"kopf.{GROUP}"
FINALIZER: Final = f"{GROUP}/finalizer"
FIELD_MANAGER: Final = "driftline-operator"
REPORTING_CONTROLLER: Final = f"{GROUP}/operator"
"""The reportingController (and source component) of the operator's Events."""

# --- The runtime's environment (driftline_runtime reads the same names). --------------------------------------------
SIGNING_KEY_ENV: Final = "DRIFTLINE_SIGNING_KEY"
"""A trainer's private key (spec.signing), from the Secret it names: the artifact is signed into model.sig."""
TRUSTED_KEYS_ENV: Final = "DRIFTLINE_TRUSTED_KEYS"
"""PEM public keys: set in a serving pod, only artifacts signed by one of them load. The operator gets them from the
chart under the same name."""

# --- Defaults. -------------------------------------------------------------------------------------------------------
DEFAULT_RUNTIME_IMAGE: Final = "driftline/runtime:0.1.0"
DEFAULT_OPERATOR_IMAGE: Final = "driftline/operator:0.1.0"
DEFAULT_ALLOWED_ESTIMATOR_PREFIXES: Final = ("sklearn.",)
"""Module prefixes a built-in trainer may import an estimator from; the operator's setting can widen it."""

HISTORY_CAP: Final = 20
"""InferenceService `status.history` keeps the newest this many entries."""
DRIFT_TOP_FEATURES: Final = 10
"""InferenceService `status.drift.features` lists at most this many features, largest drift first."""
ANALYSIS_MEASUREMENTS_CAP: Final = 50
"""InferenceService `status.analysis.measurements` keeps the newest this many measurements."""
CONDITIONS_CAP: Final = 16
"""Upper bound on `status.conditions`, which bounds the cost of CEL rules over them."""


class ConditionType(StrEnum):
    """Condition types. Every kind always carries Ready; Reconciling and Stalled follow kstatus (True only when
    something is abnormal); the rest belong to the kind named."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    PROGRESSING = "Progressing"  # InferenceService: a roll forward, canary or rollback is under way
    DEGRADED = "Degraded"  # InferenceService: serving, but not what spec asks for (e.g. a rolled-back pin)
    DRIFTED = "Drifted"  # InferenceService: live inputs drift beyond the threshold
    UNDERPERFORMING = "Underperforming"  # InferenceService: live performance on labelled rows below the policy
    SHADOWING = "Shadowing"  # InferenceService: a challenger version runs on mirrored traffic (spec.shadow)


class ConditionStatus(StrEnum):
    """The status of a condition, as in metav1.Condition."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """Condition and Event reasons (CamelCase, as Kubernetes requires for `reason`)."""

    # Any kind
    RECONCILED = "Reconciled"
    INVALID_SPEC = "InvalidSpec"
    # TrainingJob
    JOB_CREATED = "JobCreated"
    JOB_PENDING = "JobPending"
    JOB_RUNNING = "JobRunning"
    JOB_SUSPENDED = "JobSuspended"
    JOB_SUCCEEDED = "JobSucceeded"
    JOB_FAILED = "JobFailed"
    ESTIMATOR_NOT_ALLOWED = "EstimatorNotAllowed"
    POD_NOT_ALLOWED = "PodNotAllowed"
    AUTHOR_NOT_ALLOWED = "AuthorNotAllowed"
    SUMMARY_UNREADABLE = "SummaryUnreadable"
    ARTIFACT_OUTSIDE_RUN = "ArtifactOutsideRun"
    ARTIFACT_SHARED = "ArtifactShared"
    MODEL_VERSION_CREATED = "ModelVersionCreated"
    # ModelVersion
    REGISTERED = "Registered"
    GATES_PASSED = "GatesPassed"
    GATES_FAILED = "GatesFailed"
    PROMOTED = "Promoted"
    EVALUATING = "Evaluating"
    ONLINE_EVALUATION_PASSED = "OnlineEvaluationPassed"
    ONLINE_EVALUATION_FAILED = "OnlineEvaluationFailed"
    PROMOTE_REQUESTED = "PromoteRequested"
    REJECT_REQUESTED = "RejectRequested"
    SUPERSEDED = "Superseded"
    ROLLED_BACK = "RolledBack"
    RESTORED = "Restored"
    # InferenceService
    NO_PRODUCTION_VERSION = "NoProductionVersion"
    VERSION_NOT_FOUND = "VersionNotFound"
    PINNED_VERSION_ROLLED_BACK = "PinnedVersionRolledBack"
    VERSION_PINNED = "VersionPinned"
    LAST_GOOD_VERSION = "LastGoodVersion"
    ROLLING_OUT = "RollingOut"
    ROLLED_OUT = "RolledOut"
    CANARY_STARTED = "CanaryStarted"
    CANARY_STEP = "CanaryStep"
    CANARY_PROMOTED = "CanaryPromoted"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    ANALYSIS_PAUSED = "AnalysisPaused"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    IMAGE_MOVE = "ImageMove"
    IMAGE_ROLLED_BACK = "ImageRolledBack"
    ROLLBACK_REQUESTED = "RollbackRequested"
    AVAILABLE = "Available"
    UNAVAILABLE = "Unavailable"
    CHILD_CONFLICT = "ChildConflict"
    EDIT_REVERTED = "EditReverted"
    NO_DRIFT = "NoDrift"
    DRIFT_DETECTED = "DriftDetected"
    SHADOW_STARTED = "ShadowStarted"
    SHADOW_RUNNING = "ShadowRunning"
    SHADOW_STOPPED = "ShadowStopped"
    SHADOW_NOT_RUN = "ShadowNotRun"
    PERFORMANCE_OK = "PerformanceOk"
    PERFORMANCE_DROPPED = "PerformanceDropped"
    INSUFFICIENT_SAMPLES = "InsufficientSamples"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    RETRAIN_STARTED = "RetrainStarted"
    RETRAIN_REQUESTED = "RetrainRequested"
    RETRAIN_COOLDOWN = "RetrainCooldown"
