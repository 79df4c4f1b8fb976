"""Pieces more than one kind uses: conditions, references, resources, datasets, metric sources, pod templates."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator

from driftline.api.base import ApiModel, FieldError, OpenModel, StatusModel, rule
from driftline.api.constants import CONDITIONS_CAP, ConditionStatus
from driftline.api.fields import (
    AwsRegion,
    Bool,
    DataKey,
    DatasetUri,
    Float,
    HttpUrl,
    Int,
    Message,
    Name,
    NonNegativeInt,
    ObjectName,
    Quantity,
    ReasonString,
    Sha256,
    Timestamp,
    quantity_value,
)


class ObjectMeta(OpenModel):
    """The parts of metav1.ObjectMeta Driftline reads; the API server validates the rest."""

    name: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    """Name of the object, unique within its namespace."""
    generate_name: Annotated[str, Field(min_length=1, max_length=58)] | None = None
    """Prefix from which the API server generates a unique name when `name` is empty."""
    namespace: Name | None = None
    """Namespace of the object."""
    labels: dict[str, str] | None = None
    """Labels of the object."""
    annotations: dict[str, str] | None = None
    """Annotations of the object, including Driftline's declarative requests (driftline.dev/promote, ...)."""


class Condition(StatusModel):
    """One aspect of an object's state, as metav1.Condition: kstatus and GitOps tools read these."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    """Type of the condition in CamelCase, e.g. Ready, Progressing, Degraded, Drifted, Reconciling, Stalled."""
    status: ConditionStatus
    """Whether the condition holds: True, False or Unknown."""
    reason: ReasonString
    """Machine-readable CamelCase reason for the last transition, e.g. AnalysisFailed."""
    message: Message = ""
    """Human-readable details of the last transition."""
    last_transition_time: Timestamp
    """When the status last changed (RFC 3339)."""
    observed_generation: NonNegativeInt | None = None
    """The metadata.generation the condition was computed from."""


Conditions = Annotated[
    list[Condition],
    Field(
        max_length=CONDITIONS_CAP,
        # One entry per type, so server-side apply merges conditions by type.
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]


class ObjectRef(ApiModel):
    """A reference to another Kubernetes object."""

    api_version: Annotated[str, Field(max_length=253)] | None = None
    """API version of the referent, e.g. driftline.dev/v1alpha1."""
    kind: Annotated[str, Field(max_length=63)] | None = None
    """Kind of the referent, e.g. TrainingJob."""
    name: Name
    """Name of the referent."""
    namespace: Name | None = None
    """Namespace of the referent; the referrer's own namespace when empty."""
    uid: Annotated[str, Field(max_length=64)] | None = None
    """UID of the referent, which tells it apart from a later object of the same name."""


_RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
_KNOWN_RESOURCE = "k in ['cpu', 'memory', 'ephemeral-storage'] || k.startsWith('hugepages-') || k.contains('/')"
_RESOURCE_NAMES_MESSAGE = (
    "resource names are cpu, memory, ephemeral-storage, hugepages-<size> or an extended resource with its domain, "
    "such as nvidia.com/gpu"
)


def _known_resource(name: str) -> bool:
    return name in _RESOURCE_NAMES or name.startswith("hugepages-") or "/" in name


class ResourceRequirements(ApiModel):
    """Compute resources of a container, as core/v1 ResourceRequirements (quantities like 500m, 1Gi or 2)."""

    limits: Annotated[dict[str, Quantity], Field(max_length=16)] | None = None
    """Maximum amount of each resource the container may use, e.g. {cpu: "1", memory: 1Gi}."""
    requests: Annotated[dict[str, Quantity], Field(max_length=16)] | None = None
    """Amount of each resource the scheduler reserves for the container, e.g. {cpu: 250m, memory: 256Mi}; none may
    exceed its limit."""

    @rule(f"!has(self.limits) || self.limits.all(k, {_KNOWN_RESOURCE})", _RESOURCE_NAMES_MESSAGE, field_path=".limits")
    def _known_limits(self) -> bool:
        return all(_known_resource(k) for k in self.limits or {})

    @rule(
        f"!has(self.requests) || self.requests.all(k, {_KNOWN_RESOURCE})",
        _RESOURCE_NAMES_MESSAGE,
        field_path=".requests",
    )
    def _known_requests(self) -> bool:
        return all(_known_resource(k) for k in self.requests or {})

    @rule(
        "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || "
        "!isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k])) || "
        "quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",
        "a request must not exceed the limit of the same resource: no pod could be created",
        field_path=".requests",
    )
    def _requests_within_limits(self) -> bool:
        limits = self.limits or {}
        for name, request in (self.requests or {}).items():
            asked, cap = quantity_value(request), quantity_value(limits.get(name))
            if asked is not None and cap is not None and asked > cap:
                return False
        return True


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace, as core/v1 LocalObjectReference."""

    name: ObjectName
    """Name of the object."""


class PodSettings(ApiModel):
    """Where and how the model's pods run, as on any workload: scheduling, registry credentials, pod metadata. The
    chart's podDefaults apply to every field left empty here."""

    labels: Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=32)] | None = None
    """Extra labels on the pods (not under driftline.dev/, which the operator's own labels use)."""
    annotations: Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=32)] | None = None
    """Extra annotations on the pods (e.g. a service mesh's or a log collector's)."""
    image_pull_secrets: Annotated[list[LocalObjectReference], Field(max_length=8)] | None = None
    """Secrets with the credentials of the registry the image is pulled from."""
    node_selector: Annotated[dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=32)] | None = None
    """Node labels the pods' nodes must have (e.g. a GPU or spot node pool)."""
    tolerations: Annotated[list[dict[str, Any]], Field(max_length=32)] | None = None
    """core/v1 Tolerations, so the pods may run on tainted nodes."""
    affinity: dict[str, Any] | None = None
    """core/v1 Affinity: node affinity, pod affinity and anti-affinity."""
    topology_spread_constraints: Annotated[list[dict[str, Any]], Field(max_length=8)] | None = None
    """core/v1 TopologySpreadConstraints, e.g. spreading the replicas over zones."""
    priority_class_name: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """The pods' PriorityClass."""

    @rule(
        "!has(self.labels) || self.labels.all(k, !k.startsWith('driftline.dev/'))",
        "labels under driftline.dev/ are the operator's own: use another prefix",
        field_path=".labels",
    )
    def _own_labels(self) -> bool:
        return not any(k.startswith("driftline.dev/") for k in self.labels or {})


class DatasetFormat(StrEnum):
    """How the trainer parses a dataset file."""

    AUTO = "auto"
    CSV = "csv"
    PARQUET = "parquet"
    JSON = "json"


class SecretKeySelector(ApiModel):
    """One key of a Secret in the object's own namespace, as core/v1 SecretKeySelector."""

    name: ObjectName
    """Name of the Secret."""
    key: DataKey
    """Key within the Secret's data."""


class ConfigMapKeySelector(ApiModel):
    """One key of a ConfigMap in the object's own namespace, as core/v1 ConfigMapKeySelector."""

    name: ObjectName
    """Name of the ConfigMap."""
    key: DataKey
    """Key within the ConfigMap's data."""


class S3Credentials(ApiModel):
    """S3 keys, referenced and never copied: they reach the pods as environment variables the kubelet fills from the
    Secret when it starts them, so the operator needs no access to Secrets and the values appear in no spec, status,
    Event or log. Until the Secret and keys exist a pod does not start: it waits in CreateContainerConfigError."""

    access_key_id: SecretKeySelector
    """The Secret key holding the access key id (AWS_ACCESS_KEY_ID)."""
    secret_access_key: SecretKeySelector
    """The Secret key holding the secret access key (AWS_SECRET_ACCESS_KEY)."""
    session_token: SecretKeySelector | None = None
    """The Secret key holding a session token (AWS_SESSION_TOKEN), for temporary credentials."""


class S3Storage(ApiModel):
    """How pods reach an S3-compatible object store. They get it as the AWS SDKs' standard environment variables,
    so a custom trainer using boto3 sees the same settings."""

    endpoint: HttpUrl | None = None
    """URL of an S3-compatible service (SeaweedFS, Ceph RGW, Cloudflare R2, ...), e.g. http://seaweedfs.storage:8333
    (AWS_ENDPOINT_URL); AWS S3 when empty."""
    region: AwsRegion | None = None
    """Region of the bucket (AWS_REGION); us-east-1 when empty."""
    path_style: Bool = False
    """Address buckets by path (http://host/bucket/key), as most S3-compatible services want; AWS's virtual-hosted
    style (http://bucket.host/key) when false."""
    ca_bundle: ConfigMapKeySelector | None = None
    """A ConfigMap key holding PEM certificates to trust besides the system's, for a service with a private CA
    (mounted into the pods; AWS_CA_BUNDLE points at it)."""
    credentials: S3Credentials | None = None
    """Keys from a Secret. When empty, the SDK's default chain: web identity (IRSA, GKE/AKS workload identity
    federation with an AWS role), EKS Pod Identity or ECS container credentials, then the node's instance profile.
    Those go with the pod's ServiceAccount or node, not with anything in this spec."""


class StorageSpec(ApiModel):
    """Object storage settings for the pods that read or write s3:// URIs."""

    s3: S3Storage | None = None
    """S3 and S3-compatible services."""


class DatasetAuthorization(ApiModel):
    """Credentials for downloading a dataset, referenced and never copied: the kubelet reads the Secret when it starts
    the training container, so the operator needs no access to Secrets."""

    secret_key_ref: SecretKeySelector
    """The Secret key holding the whole value of the HTTP Authorization header, e.g. "Bearer <token>" or
    "Basic <base64 of user:password>". Surrounding whitespace (a file's trailing newline) is ignored. Until the
    Secret and key exist the training pod does not start: it waits in CreateContainerConfigError, with a Warning
    Event naming what is missing."""


class DatasetSpec(ApiModel):
    """The data a model trains on, and how it is split for evaluation."""

    uri: DatasetUri
    """Where the data is: s3://<bucket>/<key> (an object, read with spec.storage.s3), https://<url>,
    pvc://<claim>/<path> (a file on a PersistentVolumeClaim), configmap://<name>/<key> (a key of a ConfigMap in the
    same namespace), or sklearn://<name> for a dataset scikit-learn ships (iris, wine, breast_cancer, diabetes, ...).
    CSV, Parquet and JSON files, optionally compressed."""
    format: DatasetFormat = DatasetFormat.AUTO
    """File format: auto guesses it from the file name; ignored for sklearn:// datasets."""
    target: Annotated[str, Field(min_length=1, max_length=253)] = "target"
    """Column holding the label to predict. The sklearn:// datasets call it target."""
    features: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=253)]],
            Field(min_length=1, max_length=1000, json_schema_extra={"x-kubernetes-list-type": "set"}),
        ]
        | None
    ) = None
    """Columns to train on, in this order, each once and never the target; every column but the target when
    absent."""
    validation_split: Annotated[Float, Field(gt=0, lt=1)] = 0.2
    """Share of the rows held out to evaluate the model, strictly between 0 and 1."""
    seed: Annotated[Int, Field(ge=0, le=2**32 - 1)] = 42
    """Seed of the train/validation split and of the estimator, so a run can be reproduced."""
    authorization: DatasetAuthorization | None = None
    """Credentials for an https:// dataset, from a Secret in the same namespace. The trainer sends them as the
    Authorization header to the dataset's own host only (not to another host a redirect points at); they never
    appear in the TrainingJob's status, its Events, the ModelVersion or the logs."""

    @rule(
        "!has(self.authorization) || self.uri.startsWith('https://')",
        "authorization is only sent to an https:// dataset (the uri must start with https://)",
        field_path=".authorization",
        reason=FieldError.FORBIDDEN,
    )
    def _authorization_only_over_https(self) -> bool:
        return self.authorization is None or self.uri.startswith("https://")

    @rule(
        "!has(self.features) || !(self.target in self.features)",
        "the target column cannot also be a feature: the model would be given the answer",
        field_path=".features",
    )
    def _target_not_a_feature(self) -> bool:
        return self.features is None or self.target not in self.features

    @field_validator("features")
    @classmethod
    def _features_once(cls, features: list[str] | None) -> list[str] | None:
        if features is not None and len(set(features)) != len(features):
            raise ValueError("features: Duplicate value: each column may be listed once")
        return features


class DatasetRef(ApiModel):
    """The exact data a model version was trained on (lineage)."""

    uri: DatasetUri
    """Where the data was read from (see TrainingJob spec.dataset.uri)."""
    sha256: Sha256 | None = None
    """sha256 of the data as the trainer read it, so a later change of the source is detectable."""


class PodsSource(ApiModel):
    """Scrape the serving pods' own /metrics endpoints directly; needs no Prometheus."""


class PrometheusSource(ApiModel):
    """Ask a Prometheus server with an instant PromQL query."""

    url: HttpUrl
    """Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090."""
    query: Annotated[str, Field(min_length=1, max_length=4096)]
    """Instant PromQL query returning one number. The placeholders {{namespace}}, {{name}} (the InferenceService),
    {{model}} and {{version}} (the version being measured) are replaced before the query is sent."""


class MetricSource(ApiModel):
    """Where a measurement comes from: exactly one of pods or prometheus."""

    pods: PodsSource | None = None
    """Scrape each serving pod's /metrics and aggregate across pods, weighted by sample count."""
    prometheus: PrometheusSource | None = None
    """Query a Prometheus server."""

    @rule("has(self.pods) != has(self.prometheus)", "set exactly one of pods or prometheus")
    def _exactly_one(self) -> bool:
        return (self.pods is None) != (self.prometheus is None)


def pods_source() -> MetricSource:
    """The default source: scrape the pods."""
    return MetricSource(pods=PodsSource())


class MetricValue(StatusModel):
    """A named number, e.g. one feature's drift."""

    name: Annotated[str, Field(max_length=253)]
    """Name of the feature or metric."""
    value: float
    """Its value."""


class ContainerSketch(OpenModel):
    """A core/v1 Container, of which Driftline checks only the name and image; other fields pass through."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    """Name of the container."""
    image: Annotated[str, Field(min_length=1, max_length=512)]
    """Image of the container; a custom trainer writes the files and termination summary of Driftline's training
    contract."""


class PodSpecSketch(OpenModel):
    """A core/v1 PodSpec, of which Driftline checks only that containers are listed; other fields pass through."""

    containers: Annotated[
        list[ContainerSketch],
        Field(
            min_length=1,
            max_length=20,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        ),
    ]
    """The pod's containers: at least one, each with its own name."""

    @field_validator("containers")
    @classmethod
    def _names_once(cls, containers: list[ContainerSketch]) -> list[ContainerSketch]:
        names = [c.name for c in containers]
        if len(set(names)) != len(names):
            raise ValueError("containers: Duplicate value: each container needs its own name")
        return containers


class PodTemplate(OpenModel):
    """A core/v1 PodTemplateSpec for a custom training pod. Driftline adds the output volume, labels and the restart
    policy; everything else is passed to the Job unchanged."""

    metadata: dict[str, Any] | None = None
    """Labels and annotations for the pod."""
    spec: PodSpecSketch
    """The pod's spec (core/v1 PodSpec)."""
