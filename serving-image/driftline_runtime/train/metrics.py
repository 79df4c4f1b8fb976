"""Validation metrics: the estimator's predictions on the validation split, scored as the model server scores live
labelled rows (driftline_runtime.scoring). Every value is a plain finite float; a metric that is undefined for the
data is left out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from driftline_runtime import scoring


def evaluate(estimator: Any, task: str, features: pd.DataFrame, target: pd.Series) -> dict[str, float]:
    predicted = estimator.predict(features)
    if task != "classification":
        return scoring.score(task, target, predicted)
    proba = _call(estimator, "predict_proba", features)
    classes = np.asarray(estimator.classes_)
    decision = _call(estimator, "decision_function", features) if proba is None and len(classes) == 2 else None
    return scoring.score(task, target, predicted, classes, proba, decision)


def _call(estimator: Any, method: str, features: pd.DataFrame) -> Any:
    """The method's output, or None when the estimator does not offer it in its current configuration."""
    func = getattr(estimator, method, None)
    if func is None:
        return None
    try:
        return func(features)
    except AttributeError:
        return None
