"""Validation metrics. Every value is a plain finite float; a metric that is undefined for the data is left out."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


def evaluate(estimator: Any, task: str, features: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    raw = (
        _classification(estimator, features, target)
        if task == "classification"
        else _regression(estimator, features, target)
    )
    return {name: float(value) for name, value in raw.items() if value is not None and math.isfinite(value)}


def _regression(estimator: Any, features: pd.DataFrame, target: pd.Series) -> dict[str, float | None]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    predicted = estimator.predict(features)
    return {
        "rmse": math.sqrt(mean_squared_error(target, predicted)),
        "mae": mean_absolute_error(target, predicted),
        # R² needs two or more validation rows; one row would only yield NaN and a warning.
        "r2": r2_score(target, predicted) if len(target) >= 2 else None,
    }


def _classification(estimator: Any, features: pd.DataFrame, target: pd.Series) -> dict[str, float | None]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    classes = estimator.classes_
    predicted = estimator.predict(features)
    proba = _call(estimator, "predict_proba", features)
    metrics: dict[str, float | None] = {"accuracy": accuracy_score(target, predicted)}
    if len(classes) == 2:
        metrics["f1"] = f1_score(target, predicted, pos_label=classes[1], average="binary", zero_division=0)
    else:
        metrics["f1_macro"] = f1_score(target, predicted, labels=classes, average="macro", zero_division=0)
    metrics["roc_auc"] = _roc_auc(estimator, features, target, classes, proba)
    # A validation label the model never saw in training makes log loss undefined.
    if proba is not None and set(np.asarray(target).tolist()) <= set(classes.tolist()):
        metrics["log_loss"] = log_loss(target, proba, labels=classes)
    return metrics


def _roc_auc(
    estimator: Any, features: pd.DataFrame, target: pd.Series, classes: npt.NDArray[Any], proba: Any
) -> float | None:
    from sklearn.metrics import roc_auc_score

    present = set(np.asarray(target).tolist())
    try:
        if len(classes) == 2:
            scores = proba[:, 1] if proba is not None else _call(estimator, "decision_function", features)
            if scores is None or len(present) < 2:
                return None
            return float(roc_auc_score(np.asarray(target) == classes[1], scores))
        # One-vs-rest AUC is undefined for a class with no validation rows.
        if proba is None or len(present) < len(classes):
            return None
        return float(roc_auc_score(target, proba, multi_class="ovr", labels=classes))
    except ValueError:
        return None


def _call(estimator: Any, method: str, features: pd.DataFrame) -> Any:
    """The method's output, or None when the estimator does not offer it in its current configuration."""
    func = getattr(estimator, method, None)
    if func is None:
        return None
    try:
        return func(features)
    except AttributeError:
        return None
