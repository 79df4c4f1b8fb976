"""Checking the table against what the estimator needs, then the train/validation split.

Each check names the offending columns and values, because this message is what a user reads on the resource.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from driftline_runtime.termination import Failure

_NAMES_SHOWN = 50


@dataclass(frozen=True)
class Split:
    x_train: pd.DataFrame
    x_val: pd.DataFrame
    y_train: pd.Series
    y_val: pd.Series
    stratified: bool


def names(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:_NAMES_SHOWN])
    return shown + (f" … ({len(columns)} in all)" if len(columns) > _NAMES_SHOWN else "")


def select_columns(frame: pd.DataFrame, target: str | None, features: list[str] | None) -> tuple[str, list[str]]:
    columns = [str(c) for c in frame.columns]
    if target is None:
        raise Failure("InvalidArguments", f"--target is required for this dataset; its columns are: {names(columns)}")
    if target not in columns:
        raise Failure(
            "MissingTargetColumn",
            f"target column {target!r} is not in the dataset; available columns: {names(columns)}",
        )
    if features is None:
        features = [c for c in columns if c != target]
    elif target in features:
        raise Failure("InvalidArguments", f"--features includes the target column {target!r}")
    missing = [f for f in features if f not in columns]
    if missing:
        raise Failure(
            "MissingFeatureColumns",
            f"feature columns {names(missing)} are not in the dataset; available columns: {names(columns)}",
        )
    if not features:
        raise Failure("MissingFeatureColumns", f"the dataset has no columns besides the target {target!r}")
    return target, features


def check_values(
    frame: pd.DataFrame, target: str, features: list[str], *, task: str, estimator: str, nan_ok: bool
) -> None:
    x, y = frame[features], frame[target]
    # Booleans are fine for scikit-learn (they become 0/1); strings, categories and dates need encoding first.
    text = [f"{c!r} ({x[c].dtype})" for c in features if not pd.api.types.is_numeric_dtype(x[c])]
    if text:
        raise Failure(
            "NonNumericFeature",
            f"feature columns {', '.join(text[:_NAMES_SHOWN])} are not numeric: the built-in trainer's estimators "
            "need numbers, so encode them upstream or leave them out with --features",
        )
    missing_target = int(y.isna().sum())
    if missing_target:
        raise Failure(
            "TargetHasMissingValues",
            f"target column {target!r} has {missing_target} missing values in {len(y)} rows; drop or fill them",
        )
    holes = x.isna().sum()
    holes = holes[holes > 0]
    if len(holes) and not nan_ok:
        listed = ", ".join(f"{c!r} ({n} missing)" for c, n in list(holes.items())[:_NAMES_SHOWN])
        raise Failure(
            "FeaturesHaveMissingValues",
            f"feature columns {listed} have missing values and {estimator} does not accept NaN; fill or drop them, "
            "or pick an estimator that handles missing values (e.g. sklearn.ensemble.HistGradientBoostingClassifier)",
        )
    if task == "classification":
        _check_classes(y, target, estimator)
    elif not pd.api.types.is_numeric_dtype(y):
        raise Failure(
            "NonNumericTarget",
            f"target column {target!r} is {y.dtype}, but {estimator} is a regressor and needs numbers",
        )


def _check_classes(y: pd.Series, target: str, estimator: str) -> None:
    from sklearn.utils.multiclass import type_of_target

    classes = pd.Series(y.unique()).tolist()
    if len(classes) < 2:
        raise Failure(
            "SingleClass",
            f"target column {target!r} has a single class ({classes[0]!r}) in all {len(y)} rows; "
            "classification needs at least two",
        )
    if type_of_target(y) == "continuous":
        sample = ", ".join(f"{v:g}" for v in classes[:3])
        raise Failure(
            "ContinuousTarget",
            f"target column {target!r} holds continuous values ({sample}, ...) but {estimator} is a classifier; "
            "use a regressor or a target of class labels",
        )


def split(x: pd.DataFrame, y: pd.Series, *, task: str, validation_split: float, seed: int) -> Split:
    from sklearn.model_selection import train_test_split

    if len(y) < 2:
        raise Failure("TooFewRows", f"the dataset has {len(y)} row; at least 2 are needed to hold out validation data")
    stratify = task == "classification" and int(y.value_counts().min()) >= 2
    try:
        parts = train_test_split(x, y, test_size=validation_split, random_state=seed, stratify=y if stratify else None)
    except ValueError as e:
        if not stratify:
            raise Failure(
                "TooFewRows", f"cannot split {len(y)} rows with --validation-split {validation_split}: {e}"
            ) from e
        # Too few validation rows to hold every class: a plain split still gives honest metrics.
        parts = train_test_split(x, y, test_size=validation_split, random_state=seed)
        stratify = False
    x_train, x_val, y_train, y_val = parts
    return Split(x_train=x_train, x_val=x_val, y_train=y_train, y_val=y_val, stratified=stratify)
