"""Loading a model directory: verify the artifact's sha256 (and, where the cluster trusts only signed artifacts, its
signature) first, unpickle only after, then read its profile.

The operator never unpickles; this is the one place that does, and only a file whose digest matches the one the
operator recorded for the ModelVersion.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from driftline_runtime import signing, trees
from driftline_runtime.drift import ProfileError, Reference, parse_reference

METADATA_FILE = "metadata.json"
PROFILE_FILE = "profile.json"
log = logging.getLogger("driftline.server")
NUMERIC_DTYPE_PREFIXES = ("float", "int", "uint", "bool")


class ModelLoadError(Exception):
    """The model directory cannot be served; the message says why and goes to the termination log."""


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str

    @functools.cached_property  # read per request and per feature: worked out once
    def numeric(self) -> bool:
        return self.dtype.lower().startswith(NUMERIC_DTYPE_PREFIXES)


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str
    sha256: str
    estimator: Any
    task: str  # "classification" | "regression"
    target: str
    features: tuple[Feature, ...]
    classes: tuple[Any, ...]
    framework_version: str
    reference: Reference
    predictor: trees.CompiledTrees | None = None
    """What answers predict and predict_proba in the estimator's place: its compiled trees (trees.py), which the
    trainer found equal to it on the validation rows; None: the estimator itself."""

    @property
    def predictor_kind(self) -> str:
        return trees.SCIKIT_LEARN if self.predictor is None else trees.KIND

    @functools.cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @functools.cached_property
    def all_numeric(self) -> bool:
        return all(f.numeric for f in self.features)

    @property
    def has_proba(self) -> bool:
        return self.task == "classification" and hasattr(self.estimator, "predict_proba")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path} is not readable JSON: {e}") from e


def _features(metadata: dict[str, Any]) -> tuple[Feature, ...]:
    raw = metadata.get("features")
    if not isinstance(raw, list) or not raw:
        raise ModelLoadError("metadata.json features must be a non-empty list")
    features = []
    for i, f in enumerate(raw):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not isinstance(f.get("dtype"), str):
            raise ModelLoadError(f"metadata.json features[{i}] must be an object with string name and dtype")
        features.append(Feature(f["name"], f["dtype"]))
    if len({f.name for f in features}) != len(features):
        raise ModelLoadError("metadata.json features has duplicate names")
    return tuple(features)


def _artifact_path(model_dir: Path, metadata: dict[str, Any]) -> tuple[Path, str | None]:
    artifact = metadata.get("artifact")
    if not isinstance(artifact, dict):
        raise ModelLoadError("metadata.json artifact must be an object")
    file, fmt, recorded = artifact.get("file", "model.joblib"), artifact.get("format", "joblib"), artifact.get("sha256")
    # The file name comes from the artifact itself: keep it inside the model directory.
    if not isinstance(file, str) or Path(file).name != file or file in {"", ".", ".."}:
        raise ModelLoadError(f"metadata.json artifact.file must be a plain file name, got {file!r}")
    if fmt != "joblib":
        raise ModelLoadError(f"metadata.json artifact.format {fmt!r} is not supported (only 'joblib')")
    return model_dir / file, recorded if isinstance(recorded, str) else None


def load_model(
    model_dir: Path, name: str, version: str, expected_sha256: str, trusted_keys: list[str] | None = None
) -> ServedModel:
    """The verified model; with `trusted_keys` (PEM public keys), only if model.sig, made by one of them, covers
    exactly the directory's files."""
    expected = expected_sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ModelLoadError(f"--expected-sha256 must be 64 hex digits, got {expected_sha256!r}")
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist")
    metadata = _read_json(model_dir / METADATA_FILE)
    if not isinstance(metadata, dict):
        raise ModelLoadError("metadata.json must hold a JSON object")
    artifact, recorded = _artifact_path(model_dir, metadata)
    if not artifact.is_file():
        raise ModelLoadError(f"model artifact {artifact} is missing")
    actual = sha256_of(artifact)
    if actual != expected:
        raise ModelLoadError(
            f"sha256 mismatch for {artifact}: expected {expected}, found {actual}; refusing to load the model"
        )
    if recorded is not None and recorded.lower() != actual:
        raise ModelLoadError(f"metadata.json records sha256 {recorded} but {artifact} hashes to {actual}")
    task = metadata.get("task")
    if task not in ("classification", "regression"):
        raise ModelLoadError(f"metadata.json task must be 'classification' or 'regression', got {task!r}")
    features = _features(metadata)
    try:
        reference = parse_reference(
            _read_json(model_dir / PROFILE_FILE), [f.name for f in features], [f.dtype for f in features]
        )
    except ProfileError as e:
        raise ModelLoadError(f"profile.json: {e}") from e
    if trusted_keys is not None:
        try:
            signer = signing.verify(str(model_dir), trusted_keys)
        except signing.SignatureError as e:
            raise ModelLoadError(f"{e.reason}: {e}") from e
        log.info("model.sig verified: signed by %s", signer)
    try:
        estimator = joblib.load(artifact)
    except Exception as e:  # unpickling can raise anything (missing module, version skew, corrupt file)
        raise ModelLoadError(f"cannot load {artifact}: {type(e).__name__}: {e}") from e
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{artifact} holds a {type(estimator).__name__}, which has no predict()")
    # Estimators fitted on a DataFrame warn on every ndarray call; numeric batches go in as ndarrays on purpose.
    warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
    classes = tuple(np.asarray(getattr(estimator, "classes_", metadata.get("classes") or [])).tolist())
    predictor = _compiled_trees(model_dir, metadata, estimator)
    return ServedModel(
        name=name,
        version=version,
        sha256=actual,
        estimator=estimator,
        task=task,
        target=str(metadata.get("target", "")),
        features=features,
        classes=classes,
        framework_version=str(metadata.get("frameworkVersion", "")),
        reference=reference,
        predictor=predictor,
    )


def _compiled_trees(model_dir: Path, metadata: dict[str, Any], estimator: Any) -> trees.CompiledTrees | None:
    """The artifact's compiled trees, when the trainer kept them; None (scikit-learn serves) when it did not, or when
    they cannot be used here, which is logged and never stops the model from serving."""
    block = metadata.get("predictor")
    if not isinstance(block, dict) or block.get("kind") != trees.KIND:
        return None
    path = model_dir / trees.FILE
    try:
        if not path.is_file():
            raise ValueError(f"{path} is missing")
        checkpoint = path.read_bytes()  # read once: hashed, then loaded
        if hashlib.sha256(checkpoint).hexdigest() != block.get("sha256"):
            raise ValueError(f"{path} does not hash to the sha256 metadata.json records")
        dtype, classes = str(block.get("inputDtype")), trees.classes_of(estimator)
        compiled = trees.load(checkpoint, dtype, classes, trees.allows_nan(estimator))
    except Exception as e:  # a missing or damaged checkpoint, a Treelite that cannot read it
        log.warning("serving with scikit-learn, not the compiled trees: %s: %s", type(e).__name__, e)
        return None
    log.info("serving with the compiled trees (Treelite), %s input", compiled.input_dtype)
    return compiled
