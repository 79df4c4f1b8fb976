"""What the demo applies, as plain manifests: a namespace, the object store's credentials, this month's data, the
TrainingJobs of one model and the InferenceService that serves it, watches its drift and retrains on it."""

from __future__ import annotations

from typing import Any

MODEL = "breast-cancer"
NAMESPACE = "driftline-demo"
SYSTEM_NAMESPACE = "driftline-system"
RELEASE = "driftline"
SERVICE = "breast-cancer"
LIVE_DATA = "live-data"
"""The ConfigMap holding what the traffic looks like after the shift: the data a retrain learns from."""
SHIFT = 1.5
"""Every feature of the live traffic is scaled by this once the world changes."""
BUCKET = "models"
STORAGE = f"s3://{BUCKET}/{MODEL}"
"""Every version's artifact goes to the local SeaweedFS, as it would to S3 on a real cluster."""
S3_SECRET = "models-s3"
REPLICAS = 3
"""Spread over the local cluster's two nodes: no pod reads another's files, each fetches the model itself."""
GATES: dict[str, Any] = {
    "auto": True,
    "gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
    "mustBeat": {"metric": "accuracy", "minDelta": 0.0},
}
GATES_ONLY: dict[str, Any] = {"auto": True, "gates": GATES["gates"]}
DRIFT: dict[str, Any] = {
    "metric": "psi",
    "threshold": 0.25,
    "window": {"size": 300},
    "minSamples": 150,
    "consecutive": 2,
    "scrapeInterval": "2s",
    "action": "Retrain",
    "rollbackWindowSeconds": 600,
}


def s3_secret(data: dict[str, str]) -> dict[str, Any]:
    """The object store's keys, which the operator never reads: pods get them as secretKeyRef env."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": S3_SECRET, "namespace": NAMESPACE},
        "stringData": data,
    }


def storage(endpoint: str) -> dict[str, Any]:
    return {
        "s3": {
            "endpoint": endpoint,
            "pathStyle": True,
            "credentials": {
                "accessKeyId": {"name": S3_SECRET, "key": "AWS_ACCESS_KEY_ID"},
                "secretAccessKey": {"name": S3_SECRET, "key": "AWS_SECRET_ACCESS_KEY"},
            },
        }
    }


def live_data(csv: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": LIVE_DATA, "namespace": NAMESPACE},
        "data": {"data.csv": csv},
    }


def trainingjob_spec(
    estimator: str, params: dict[str, Any], *, dataset: str = "sklearn://breast_cancer", promotion: dict[str, Any]
) -> dict[str, Any]:
    source: dict[str, Any] = {"uri": dataset}
    if dataset.startswith("configmap://"):
        source["format"] = "csv"
    return {
        "model": MODEL,
        "dataset": source,
        "estimator": estimator,
        "params": params,
        "output": {"storageUri": STORAGE},
        "promotion": promotion,
    }


def trainingjob(name: str, spec: dict[str, Any], store: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {**spec, "storage": store},
    }


LOGREG = ("sklearn.linear_model.LogisticRegression", {"max_iter": 5000})

FIRST = ("logreg", trainingjob_spec(*LOGREG, promotion=GATES), "v1 passes the accuracy >= 0.9 gate: Production")

BAD_RELEASE = (
    "last-month",
    trainingjob_spec(*LOGREG, promotion=GATES_ONLY),
    "someone ships a model trained on last month's data: it passes its gates and rolls out",
)


def inferenceservice(store: dict[str, Any]) -> dict[str, Any]:
    retrain = trainingjob_spec(*LOGREG, dataset=f"configmap://{LIVE_DATA}/data.csv", promotion=GATES_ONLY)
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE},
        "spec": {
            "model": MODEL,
            "replicas": REPLICAS,
            "storage": store,
            "drift": DRIFT,
            "retrain": {"template": {**retrain, "storage": store}, "cooldown": "1h"},
        },
    }
