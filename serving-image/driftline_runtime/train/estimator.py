"""Turning `--estimator` and `--params` into an unfitted estimator, with the allow-list checked before any import.

The class path comes from a user's resource, and importing a module runs its code: so the string is matched against
the allowed prefixes first, private names are refused, and only real scikit-learn-style estimators are accepted.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from typing import Any

from driftline_runtime.termination import Failure

_CLASS_PATH = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+")


def is_allowed(path: str, prefixes: list[str]) -> bool:
    """`sklearn.` admits `sklearn.x.Y`; a prefix without a dot admits that exact module or package and below."""
    for prefix in prefixes:
        if prefix.endswith("."):
            if path.startswith(prefix):
                return True
        elif path == prefix or path.startswith(prefix + "."):
            return True
    return False


def check_allowed(path: str, prefixes: list[str]) -> None:
    shown = ", ".join(prefixes) or "(none)"
    if not is_allowed(path, prefixes):
        raise Failure("EstimatorNotAllowed", f"estimator {path!r} is not under the allowed prefixes: {shown}")
    if not _CLASS_PATH.fullmatch(path):
        raise Failure(
            "EstimatorNotAllowed",
            f"estimator {path!r} must be a public class path like sklearn.linear_model.LogisticRegression "
            "(dotted names, no private or dunder parts)",
        )


def resolve(path: str, prefixes: list[str]) -> type[Any]:
    check_allowed(path, prefixes)
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise Failure("EstimatorNotFound", f"estimator {path!r}: module {module_name} cannot be imported ({e})") from e
    cls = getattr(module, class_name, None)
    if cls is None:
        public = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(class_name, public, n=3)
        hint = f"; did you mean {', '.join(f'{module_name}.{c}' for c in close)}?" if close else ""
        raise Failure("EstimatorNotFound", f"estimator {path!r}: {module_name} has no {class_name}{hint}")
    from sklearn.base import BaseEstimator

    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)) or inspect.isabstract(cls):
        raise Failure("NotAnEstimator", f"{path!r} is not a scikit-learn estimator class")
    if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "predict", None))):
        raise Failure("NotAnEstimator", f"{path!r} has no fit/predict, so it cannot be trained and served")
    return cls


def instantiate(cls: type[Any], path: str, params: dict[str, Any], seed: int) -> tuple[Any, dict[str, Any]]:
    """The estimator and its effective parameters: the user's, plus `random_state=seed` when it takes one."""
    try:
        estimator = cls(**params)
    except TypeError as e:
        accepted = [n for n in inspect.signature(cls).parameters if n not in ("self", "args", "kwargs")]
        raise Failure("InvalidParams", f"{path} rejects --params: {e}; it accepts: {', '.join(accepted)}") from e
    except ValueError as e:
        raise Failure("InvalidParams", f"{path} rejects --params: {e}") from e
    effective = dict(params)
    # Seeding the estimator too makes a rerun with the same inputs produce the same model.
    if "random_state" not in params and "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=seed)
        effective["random_state"] = seed
    from sklearn.base import is_classifier, is_regressor

    if not (is_classifier(estimator) or is_regressor(estimator)):
        raise Failure(
            "NotAnEstimator", f"{path} is neither a classifier nor a regressor; the built-in trainer is supervised"
        )
    return estimator, effective


def task_of(estimator: Any) -> str:
    from sklearn.base import is_classifier

    return "classification" if is_classifier(estimator) else "regression"


def allows_nan(estimator: Any) -> bool:
    """Whether the estimator copes with NaN inputs itself (e.g. HistGradientBoosting*)."""
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(estimator).input_tags.allow_nan)
    except (ImportError, AttributeError):
        return False


def is_invalid_params(error: BaseException) -> bool:
    """scikit-learn validates parameter values at fit time with its own (private) exception type."""
    return type(error).__name__ == "InvalidParameterError"
