"""ModelVersion: one immutable, registered version of a model, and its stage in the registry."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import Field

from driftline.api.base import ApiModel, Rule, StatusModel, rule
from driftline.api.common import Conditions, DatasetRef, ObjectMeta, ObjectRef
from driftline.api.constants import API_VERSION
from driftline.api.fields import (
    Float,
    ImageId,
    ImageRef,
    KeyFingerprint,
    ModelName,
    ModelVersionNumber,
    Sha256,
    ShortText,
    StorageUri,
    Timestamp,
)


def model_version_name(model: str, version: int) -> str:
    """The one name a version of a model can have, e.g. breast-cancer-v3: the API server then guarantees that a
    (model, version) pair exists at most once per namespace."""
    return f"{model}-v{version}"


class ArtifactFormat(StrEnum):
    """How the model file is serialised."""

    JOBLIB = "joblib"
    PICKLE = "pickle"


class Predictor(StrEnum):
    """What answers the version's predictions in the server."""

    SCIKIT_LEARN = "scikit-learn"
    TREELITE = "treelite"  # the tree ensemble's compiled trees, found equal to it on the validation rows


class ArtifactSpec(ApiModel):
    """The trained model's files."""

    storage_uri: StorageUri
    """Where the model file, metadata.json and the reference profile are: an object storage prefix,
    s3://<bucket>/<prefix>, or a directory on a PersistentVolumeClaim, pvc://<claim>/<path>. Serving fetches an
    s3:// artifact into each pod and checks sha256 before loading it."""
    format: ArtifactFormat = ArtifactFormat.JOBLIB
    """Serialisation of the model file."""
    sha256: Sha256
    """sha256 of the model file. The server refuses to start on a mismatch."""
    framework: Annotated[str, Field(min_length=1, max_length=63)] = "scikit-learn"
    """Library the model was built with."""
    framework_version: Annotated[str, Field(max_length=63)] | None = None
    """Version of that library, e.g. 1.5.2."""
    predictor: Predictor | None = None
    """What serves the predictions, as the trainer decided: treelite (the tree ensemble's compiled trees, stored
    beside the pickle because they gave its own labels and probabilities, within 1e-6, on the validation rows) or
    scikit-learn. Empty for a version registered by hand: scikit-learn."""
    predictor_reason: Annotated[str, Field(max_length=256)] | None = None
    """Why a tree ensemble is served with scikit-learn, e.g. its compiled trees differed on the validation rows."""
    signed_by: KeyFingerprint | None = None
    """The key the trainer signed the artifact with (model.sig beside its files), by the sha256 of its public key, as
    the trainer reported it. Informational: where the cluster serves only signed artifacts, every serving pod checks
    model.sig itself against the trusted keys before it loads the model."""


class ModelVersionSpec(ApiModel):
    """The identity of a version: what was trained, from what, and how well it did. Immutable once created."""

    server_only_rules = (
        Rule("self == oldSelf", "spec is immutable: a ModelVersion's identity never changes; create a new version"),
    )

    model: ModelName
    """Name of the model this is a version of."""
    version: ModelVersionNumber
    """Version number, unique per model (the object's name is <model>-v<version>)."""
    artifact: ArtifactSpec
    """The model's files."""
    metrics: Annotated[dict[str, Float], Field(max_length=64)] = {}
    """Evaluation metrics on the held-out data, name to number, e.g. {accuracy: 0.96, f1: 0.97}."""
    training_job_ref: ObjectRef | None = None
    """The TrainingJob that produced this version; empty for a model registered by hand."""
    dataset: DatasetRef | None = None
    """The data the model was trained on, with its hash."""
    params: dict[str, Any] | None = None
    """Hyperparameters the model was trained with."""
    training_image: ImageRef | None = None
    """Image that ran the training."""
    training_image_id: Annotated[ImageId | None, Field(alias="trainingImageID")] = None
    """That image by digest, as the training pod's node reported it (containerStatuses[].imageID): `repository@sha256:…`
    when it came from a registry (then a built-in trainer's servingImage is pinned to it, so the same bytes serve
    whatever the tag points to later), `sha256:…` for an image the node had of its own. Empty where no digest was
    reported."""
    serving_image: ImageRef | None = None
    """The runtime image that serves this version unless its InferenceService names one (spec.image): for a version
    the built-in trainer made, the runtime image that trained it, so the scikit-learn that pickled the model loads it,
    and a later change of the operator's default runtime image (a chart upgrade) neither restarts the pods serving
    older versions nor loads them under another library version. Empty: the operator's current runtime image.
    Naming one by hand is running that image: it needs the right to create pods (admission)."""
    description: ShortText | None = None
    """Free text for people, e.g. where an externally trained model came from."""


class Stage(StrEnum):
    """Where a version stands in the registry. Exactly one version per model is Production at a time."""

    CANDIDATE = "Candidate"
    EVALUATING = "Evaluating"  # passed its gates; being judged online, in shadow (promotion.online)
    PRODUCTION = "Production"
    ARCHIVED = "Archived"
    REJECTED = "Rejected"
    ROLLED_BACK = "RolledBack"


BAD_STAGES: Final = frozenset({Stage.REJECTED, Stage.ROLLED_BACK})
"""Stages a version is finished with as far as serving goes: auto-follow never serves it, kstatus reads it as
Stalled."""


class Evaluation(StatusModel):
    """The online gate a version in stage Evaluating is judged by (its TrainingJob's promotion.online)."""

    service: str
    """The InferenceService that runs it in shadow."""
    metric: str
    """The live metric compared."""
    min_samples: int
    """Labelled rows each version's metric must stand on."""
    margin: float
    """How much better it must be."""


class ModelVersionStatus(StatusModel):
    """The version's stage, and how it got there."""

    stage: Stage | None = None
    """Candidate, Evaluating (passed its gates, judged online in shadow), Production, Archived (superseded by a newer
    Production version), Rejected (failed its gates or its online evaluation, or rejected by a person) or RolledBack
    (taken out of service after a failed rollout or drift)."""
    evaluation: Evaluation | None = None
    """The online gate, while and after the version is Evaluating."""
    promoted_at: Timestamp | None = None
    """When the version last became Production."""
    promoted_by: Annotated[str, Field(max_length=253)] | None = None
    """Who promoted it: policy/<trainingjob> for an automatic promotion, annotation for driftline.dev/promote."""
    reason: Annotated[str, Field(max_length=4096)] | None = None
    """Why the version is in its stage, e.g. each failed gate with its numbers."""
    headline_metric: Annotated[str, Field(max_length=128)] | None = None
    """The metric shown by kubectl get, as name=value: the promotion's mustBeat metric, else accuracy or r2, else
    the first metric by name."""
    last_promote_request: Annotated[str, Field(max_length=253)] | None = None
    """Value of the driftline.dev/promote annotation last carried out; a different value is a new request."""
    last_reject_request: Annotated[str, Field(max_length=1024)] | None = None
    """Value of the driftline.dev/reject annotation last carried out; a different value is a new request."""
    conditions: Conditions = []
    """Ready (True once the version is registered and its stage known), Reconciling and Stalled (kstatus)."""
    observed_generation: int | None = None
    """The metadata.generation the status reflects."""


class ModelVersion(ApiModel):
    """A registered version of a model: an immutable artifact with its metrics and lineage, written by the operator
    after training or by a person or Git to register an external model. Its stage lives in status; a person or Git
    asks for a promotion with the annotation driftline.dev/promote: "true"."""

    api_version: Literal["driftline.dev/v1alpha1"] = API_VERSION
    """APIVersion of the object."""
    kind: Literal["ModelVersion"] = "ModelVersion"
    """Kind of the object."""
    metadata: ObjectMeta = ObjectMeta()
    """Standard object metadata."""
    spec: ModelVersionSpec
    """The version's identity."""
    status: ModelVersionStatus | None = None
    """Its stage in the registry."""

    # string(int) has no size bound for CEL's cost estimate, so the rule parses the number out of the name instead.
    @rule(
        "self.metadata.name.startsWith(self.spec.model + '-v')"
        " && self.metadata.name.substring(size(self.spec.model) + 2).matches(r'^[1-9][0-9]{0,9}$')"
        " && int(self.metadata.name.substring(size(self.spec.model) + 2)) == self.spec.version",
        "metadata.name must be <spec.model>-v<spec.version>, e.g. breast-cancer-v3",
        field_path=".metadata.name",
    )
    def _name_is_identity(self) -> bool:
        name = self.metadata.name
        return name is None or name == model_version_name(self.spec.model, self.spec.version)
