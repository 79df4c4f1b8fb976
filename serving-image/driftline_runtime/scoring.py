"""A model's quality on labelled rows, by the metric names a ModelVersion records: the trainer's validation metrics and
the model server's live ones are one computation, so "live accuracy 0.05 below validation" compares like with like.

Classification: accuracy; f1 (binary, the greater class positive, as scikit-learn orders classes) or f1_macro
(multiclass); roc_auc (binary from the positive class' probability or decision function, multiclass one-vs-rest);
log_loss (from probabilities). Regression: rmse, mae, r2. A metric the rows cannot define (one class present for
AUC, a label the model does not know for log loss, R² on one row) is left out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

CLASSIFICATION = ("accuracy", "f1", "f1_macro", "roc_auc", "log_loss")
REGRESSION = ("rmse", "mae", "r2")
HIGHER_IS_BETTER = frozenset({"accuracy", "f1", "f1_macro", "roc_auc", "r2"})


def score(
    task: str,
    target: Sequence[Any] | npt.NDArray[Any],
    predicted: Sequence[Any] | npt.NDArray[Any],
    classes: Sequence[Any] | npt.NDArray[Any] = (),
    proba: npt.NDArray[Any] | None = None,
    decision: npt.NDArray[Any] | None = None,
) -> dict[str, float]:
    """Every metric of `task` the rows define, each a finite float. `classes` in the model's order (proba's
    columns); `decision`, a binary classifier's decision_function, stands in for proba in roc_auc."""
    if len(target) == 0:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's UndefinedMetricWarning: such metrics are left out below
        raw = (
            _classification(np.asarray(target), np.asarray(predicted), np.asarray(classes), proba, decision)
            if task == "classification"
            else _regression(np.asarray(target, dtype=np.float64), np.asarray(predicted, dtype=np.float64))
        )
    return {name: float(value) for name, value in raw.items() if value is not None and math.isfinite(value)}


def _regression(target: npt.NDArray[Any], predicted: npt.NDArray[Any]) -> dict[str, float | None]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "rmse": math.sqrt(mean_squared_error(target, predicted)),
        "mae": mean_absolute_error(target, predicted),
        "r2": r2_score(target, predicted) if len(target) >= 2 else None,
    }


def _classification(
    target: npt.NDArray[Any],
    predicted: npt.NDArray[Any],
    classes: npt.NDArray[Any],
    proba: npt.NDArray[Any] | None,
    decision: npt.NDArray[Any] | None,
) -> dict[str, float | None]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    metrics: dict[str, float | None] = {"accuracy": accuracy_score(target, predicted)}
    if len(classes) == 2:
        metrics["f1"] = f1_score(target, predicted, pos_label=classes[1], average="binary", zero_division=0)
    else:
        metrics["f1_macro"] = f1_score(target, predicted, labels=classes, average="macro", zero_division=0)
    metrics["roc_auc"] = _roc_auc(target, classes, proba, decision)
    if proba is not None and set(target.tolist()) <= set(classes.tolist()):
        metrics["log_loss"] = log_loss(target, proba, labels=classes)
    return metrics


def _roc_auc(
    target: npt.NDArray[Any], classes: npt.NDArray[Any], proba: npt.NDArray[Any] | None, decision: Any
) -> float | None:
    from sklearn.metrics import roc_auc_score

    present = set(target.tolist())
    try:
        if len(classes) == 2:
            scores = proba[:, 1] if proba is not None else decision
            if scores is None or len(present) < 2:
                return None
            return float(roc_auc_score(target == classes[1], scores))
        if proba is None or len(present) < len(classes):  # one-vs-rest AUC is undefined for a class with no rows
            return None
        return float(roc_auc_score(target, proba, multi_class="ovr", labels=classes))
    except ValueError:
        return None
