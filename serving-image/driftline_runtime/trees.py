"""Compiled tree ensembles: Treelite's model of a scikit-learn forest or boosting, predicted by its GTIL interpreter
instead of scikit-learn's per-tree Python loop (a 200-tree forest's one row: 43 us instead of 8.6 ms).

The trainer builds it beside the pickle and keeps it only if it gives the estimator's own answers on the
validation rows (`agreement`); the server uses it only then, and otherwise serves with scikit-learn. A checkpoint is
data, not code: loading one runs nothing of the artifact's.

Why Treelite's GTIL (measured against TL2cgen, skl2onnx + ONNX Runtime and Hummingbird, docs/performance.md): equal
to scikit-learn (forests exactly, boosting within 1e-7) where ONNX Runtime's float32 sums miss 1e-6 on large forests
and it mis-routes missing values; no C compiler (TL2cgen needs one in the image); +3.4 MiB (ONNX Runtime +74 MiB,
Hummingbird's torch 5 GiB).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

FILE: Final = "model.treelite"
KIND: Final = "treelite"
SCIKIT_LEARN: Final = "scikit-learn"
TOLERANCE: Final = 1e-6
"""Largest difference from the estimator's probabilities (or, relative, its regression values) that is agreement."""
ENSEMBLES: Final = (
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
)
# scikit-learn's classic trees compare float32(X) with float32 thresholds; the histogram boostings compare float64.
# Fed the other dtype, a row on a threshold takes the other branch.
FLOAT64_INPUT: Final = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")


class NotCompiled(Exception):
    """The estimator is served with scikit-learn; the message says why."""


@dataclass(frozen=True)
class CompiledTrees:
    """predict / predict_proba as the estimator answers them, from its Treelite model. Rows with a missing value are
    refused (ValueError, as scikit-learn raises) when the estimator refuses them."""

    model: Any  # treelite.Model
    input_dtype: str
    classes: tuple[Any, ...]
    """The estimator's classes_ (empty for a regressor)."""
    allow_nan: bool

    def _raw(self, x: Any) -> NDArray[Any]:
        import treelite.gtil

        rows = np.ascontiguousarray(x, dtype=self.input_dtype)
        if not self.allow_nan and np.isnan(rows).any():
            raise ValueError("Input X contains NaN.")
        out: NDArray[Any] = treelite.gtil.predict(self.model, rows, nthread=1)  # the server scales by processes
        return out.reshape(rows.shape[0], -1)

    def predict_proba(self, x: Any) -> NDArray[Any]:
        raw = self._raw(x)
        # Binary boosting gives P(class 1) alone.
        return np.column_stack([1.0 - raw[:, 0], raw[:, 0]]) if raw.shape[1] == 1 and len(self.classes) == 2 else raw

    def predict(self, x: Any) -> NDArray[Any]:
        if not self.classes:
            return self._raw(x).reshape(-1)
        best = np.argmax(self.predict_proba(x), axis=1)
        labels: NDArray[Any] = np.asarray(self.classes)[best]
        return labels


def allows_nan(estimator: Any) -> bool:
    """Whether scikit-learn takes rows with a missing value for this estimator (the compiled trees then do too)."""
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(estimator).input_tags.allow_nan)
    except (ImportError, AttributeError):
        return False


def is_ensemble(estimator: Any) -> bool:
    """A scikit-learn tree ensemble, whose trees the trainer tries to compile."""
    return type(estimator).__name__ in ENSEMBLES and type(estimator).__module__.startswith("sklearn.")


def compile_estimator(estimator: Any) -> tuple[CompiledTrees, bytes]:
    """The estimator's compiled trees and their checkpoint; NotCompiled when it is no tree ensemble Treelite takes."""
    name = type(estimator).__name__
    if not is_ensemble(estimator):
        raise NotCompiled(f"{name} is not a scikit-learn tree ensemble")
    import treelite

    try:
        model = treelite.sklearn.import_model(estimator)
    except Exception as e:  # an ensemble Treelite cannot express (e.g. a loss it lacks)
        raise NotCompiled(f"Treelite cannot import this {name}: {type(e).__name__}: {e}") from e
    dtype = "float64" if name in FLOAT64_INPUT else "float32"
    compiled = CompiledTrees(model, dtype, classes_of(estimator), allows_nan(estimator))
    return compiled, bytes(model.serialize_bytes())


def classes_of(estimator: Any) -> tuple[Any, ...]:
    return tuple(np.asarray(getattr(estimator, "classes_", [])).tolist())


def load(checkpoint: bytes, input_dtype: str, classes: tuple[Any, ...], allow_nan: bool) -> CompiledTrees:
    import treelite

    if input_dtype not in ("float32", "float64"):
        raise ValueError(f"unknown input dtype {input_dtype!r}")
    return CompiledTrees(treelite.Model.deserialize_bytes(checkpoint), input_dtype, classes, allow_nan)


def agreement(compiled: CompiledTrees, estimator: Any, rows: Any) -> float:
    """The largest difference between the compiled trees' answers and the estimator's on `rows` (probabilities, or
    regression values relative to their size); infinite when a predicted label differs."""
    x = np.asarray(rows, dtype=np.float64)  # the estimator takes `rows` as it was fitted (a DataFrame: no warning)
    if compiled.classes:
        if not np.array_equal(compiled.predict(x), np.asarray(estimator.predict(rows))):
            return float("inf")
        return float(np.max(np.abs(compiled.predict_proba(x) - estimator.predict_proba(rows)), initial=0.0))
    expected = np.asarray(estimator.predict(rows), dtype=np.float64)
    return float(np.max(np.abs(compiled.predict(x) - expected) / np.maximum(1.0, np.abs(expected)), initial=0.0))
