"""The three CustomResourceDefinitions, built from the models: names, schema, subresources, printer columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from driftline.api.base import ApiModel
from driftline.api.constants import (
    CATEGORY,
    GROUP,
    INFERENCE_SERVICE,
    LABEL_APP_NAME,
    LABEL_APP_PART_OF,
    MODEL_VERSION,
    PART_OF,
    TRAINING_JOB,
    VERSION,
    KindNames,
)
from driftline.api.inferenceservice import InferenceService
from driftline.api.modelversion import ModelVersion
from driftline.api.schema import JsonSchema, structural, without_defaults
from driftline.api.trainingjob import TrainingJob


@dataclass(frozen=True)
class Column:
    """One additionalPrinterColumn; priority 1 shows only with `kubectl get -o wide`."""

    name: str
    json_path: str
    description: str
    type: str = "string"
    priority: int = 0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "jsonPath": self.json_path, "type": self.type}
        out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        return out


AGE = Column("Age", ".metadata.creationTimestamp", "Time since the object was created.", "date")


@dataclass(frozen=True)
class Kind:
    """Everything the CRD of one kind is built from."""

    names: KindNames
    model: type[ApiModel]
    columns: tuple[Column, ...]
    selectable_fields: tuple[str, ...] = (".spec.model",)
    scalable: bool = False


KIND_DEFINITIONS: tuple[Kind, ...] = (
    Kind(
        TRAINING_JOB,
        TrainingJob,
        (
            Column("Model", ".spec.model", "Model the version is trained for."),
            Column("Phase", ".status.phase", "Pending, Running, Succeeded or Failed."),
            Column("Version", ".status.modelVersion", "ModelVersion the training produced."),
            AGE,
            Column("Estimator", ".spec.estimator", "Built-in estimator (empty for a custom template).", priority=1),
            Column("Dataset", ".spec.dataset.uri", "Training data.", priority=1),
            Column("Job", ".status.jobName", "The batch Job running the training.", priority=1),
        ),
    ),
    Kind(
        MODEL_VERSION,
        ModelVersion,
        (
            Column("Model", ".spec.model", "Model this is a version of."),
            Column("Version", ".spec.version", "Version number.", "integer"),
            Column("Stage", ".status.stage", "Candidate, Production, Archived, Rejected or RolledBack."),
            Column("Metric", ".status.headlineMetric", "Headline evaluation metric, name=value."),
            AGE,
            Column("Promoted", ".status.promotedAt", "When the version last became Production.", "date", 1),
            Column("By", ".status.promotedBy", "Who promoted it.", priority=1),
            Column("Artifact", ".spec.artifact.storageUri", "Where the model files are.", priority=1),
            Column("Predictor", ".spec.artifact.predictor", "What serves it: treelite or scikit-learn.", priority=1),
        ),
        selectable_fields=(".spec.model", ".status.stage", ".spec.artifact.storageUri"),
    ),
    Kind(
        INFERENCE_SERVICE,
        InferenceService,
        (
            Column("Model", ".spec.model", "Model served."),
            Column("Phase", ".status.phase", "Pending, Progressing, Ready, Degraded or Failed."),
            Column("Active", ".status.activeVersion", "Version the stable pods serve.", "integer"),
            AGE,
            Column("Pin", ".spec.version", "Pinned version, if any.", "integer", 1),
            Column("Canary", ".status.canaryVersion", "Version under canary, if any.", "integer", 1),
            Column("Weight", ".status.canaryWeight", "Canary traffic share in percent.", "integer", 1),
            Column("Ready", ".status.readyReplicas", "Ready serving pods.", "integer", 1),
            Column("Drift", ".status.drift.score", "Latest drift score.", "number", 1),
            Column("URL", ".status.url", "Predict endpoint.", priority=1),
        ),
        scalable=True,
    ),
)

_STANDARD_FIELDS: JsonSchema = {
    "apiVersion": {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    },
    "kind": {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object represents.",
    },
    # The only part of metadata a CRD may constrain. Every kind names a child object or label value after itself
    # (Job, Service, <model>-v<version>), so names stay within a DNS label's 63 characters; CEL needs the bound too.
    "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 63}}},
}


def openapi_schema(model: type[ApiModel]) -> JsonSchema:
    """The openAPIV3Schema of a resource model."""
    schema = structural(model.model_json_schema(by_alias=True, mode="validation"))
    properties = schema["properties"]
    properties.update(_STANDARD_FIELDS)
    # Status is the operator's: no defaults (the API server would write them into every status) and nothing required.
    properties["status"] = without_defaults(properties["status"])
    schema["required"] = ["spec"]
    return schema


def build_crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    names = kind.names
    subresources: dict[str, Any] = {"status": {}}
    if kind.scalable:
        subresources["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    version = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": openapi_schema(kind.model)},
        "subresources": subresources,
        "additionalPrinterColumns": [c.as_dict() for c in kind.columns],
        "selectableFields": [{"jsonPath": p} for p in kind.selectable_fields],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": names.crd_name,
            "labels": {LABEL_APP_NAME: "driftline", LABEL_APP_PART_OF: PART_OF},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": names.kind,
                "listKind": f"{names.kind}List",
                "plural": names.plural,
                "singular": names.singular,
                "shortNames": list(names.short_names),
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def crd_file_name(kind: Kind) -> str:
    """The file a CRD is committed under, as controller-gen names them."""
    return f"{GROUP}_{kind.names.plural}.yaml"
