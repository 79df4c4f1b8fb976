"""What the demo applies: a claim for artifacts and a few TrainingJobs of one model."""

from __future__ import annotations

from typing import Any

MODEL = "breast-cancer"
NAMESPACE = "driftline-demo"
GATES: dict[str, Any] = {
    "auto": True,
    "gates": [{"metric": "accuracy", "op": ">=", "value": 0.9}],
    "mustBeat": {"metric": "accuracy", "minDelta": 0.0},
}


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }


def models_claim() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "models", "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def trainingjob(name: str, estimator: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": MODEL,
            "dataset": {"uri": "sklearn://breast_cancer"},
            "estimator": estimator,
            "params": params,
            "output": {"storageUri": "pvc://models/registry"},
            "promotion": GATES,
        },
    }


# Each step: (TrainingJob name, estimator, params, what the audience should expect).
TRAINING_STEPS: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "logreg",
        "sklearn.linear_model.LogisticRegression",
        {"max_iter": 5000},
        "v1 passes the accuracy >= 0.9 gate and becomes Production",
    ),
    (
        "stump",
        "sklearn.tree.DecisionTreeClassifier",
        {"max_depth": 1},
        "a one-split tree cannot beat v1: Rejected by the must-beat gate",
    ),
    (
        "forest",
        "sklearn.ensemble.RandomForestClassifier",
        {"n_estimators": 100, "random_state": 0},
        "a random forest: promoted only if it beats Production on accuracy",
    ),
]
