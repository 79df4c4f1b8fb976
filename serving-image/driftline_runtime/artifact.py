"""The model artifact directory: model.joblib + metadata.json + profile.json, and model.sig when signed (see
docs/training-contract.md and signing.py).

Writing is all-or-nothing: files go to a hidden sibling directory that is renamed into place, so a reader never sees
a half artifact. Reading verifies the model file's sha256 before anyone unpickles it.

In object storage (s3://, see storage.py) an artifact is a prefix: `publish` refuses one that holds anything (a
version is never overwritten) and uploads metadata.json last, so metadata.json marks a complete artifact and a
training killed mid-upload leaves none; `fetch` reads metadata.json first and checks the model's sha256 against the
one the ModelVersion recorded before the file takes its name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from typing import Any

from driftline_runtime import signing, storage, trees
from driftline_runtime.termination import Failure

FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
PROFILE_FILE = "profile.json"
SIGNATURE_FILE = signing.SIGNATURE_FILE
PREDICTOR_FILE = trees.FILE
# metadata.json goes last: when a directory cannot be renamed into place, its presence marks a complete artifact.
# model.sig is there only when the artifact is signed, model.treelite only for a tree ensemble it agrees with.
_WRITE_ORDER = (MODEL_FILE, PREDICTOR_FILE, PROFILE_FILE, SIGNATURE_FILE, METADATA_FILE)
_OPTIONAL = (PREDICTOR_FILE, SIGNATURE_FILE)
_REQUIRED_METADATA = (
    "formatVersion",
    "task",
    "target",
    "features",
    "metrics",
    "estimator",
    "framework",
    "frameworkVersion",
    "dataset",
    "artifact",
    "createdAt",
)


class ArtifactError(ValueError):
    """The directory is not a valid artifact: missing files, unknown format or a sha256 mismatch."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_output_dir(path: str) -> None:
    """Fail before any work when the output directory could not receive the artifact."""
    if os.path.isdir(path):
        if os.listdir(path):
            raise Failure("OutputDirNotEmpty", f"output directory {path} already exists and is not empty")
    elif os.path.lexists(path):
        raise Failure("InvalidOutputDir", f"output path {path} exists and is not a directory")
    # The staging directory is created beside the output: its nearest existing ancestor must be writable.
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor) or not os.access(ancestor, os.W_OK | os.X_OK):
        raise Failure("InvalidOutputDir", f"cannot create the artifact {path}: {ancestor} is not a writable directory")


def write_artifact(
    output_dir: str,
    model: Any,
    metadata: dict[str, Any],
    profile: dict[str, Any],
    signing_key: str | None = None,
    predictor: bytes | None = None,
) -> dict[str, Any]:
    """Dump the model, add the `artifact` block to the metadata, and move the three files into `output_dir`; with a
    compiled predictor (trees.py), its checkpoint too (its sha256 into metadata's `predictor` block); with a signing
    key (a PEM), sign them all into model.sig before they move."""
    import joblib

    check_output_dir(output_dir)
    target = os.path.abspath(output_dir)
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.tmp-", dir=parent)
    except OSError as e:
        raise Failure("InvalidOutputDir", f"cannot create the artifact next to {output_dir}: {e}") from e
    try:
        # mkdtemp makes it private (0700); the serving pod may run as another user and must read the artifact.
        os.chmod(staging, 0o755)
        model_path = os.path.join(staging, MODEL_FILE)
        joblib.dump(model, model_path)
        block: dict[str, Any] = {"file": MODEL_FILE, "sha256": sha256_file(model_path), "format": "joblib"}
        if signing_key is not None:
            block["signedBy"] = signing.key_fingerprint(signing_key)
        metadata = {**metadata, "artifact": block}
        if predictor is not None:
            predictor_path = os.path.join(staging, PREDICTOR_FILE)
            with open(predictor_path, "wb") as f:
                f.write(predictor)
            metadata["predictor"] = {**metadata.get("predictor", {}), "sha256": sha256_file(predictor_path)}
        _write_json(os.path.join(staging, PROFILE_FILE), profile)
        _write_json(os.path.join(staging, METADATA_FILE), metadata)
        if signing_key is not None:
            signing.sign(staging, signing_key)
        _commit(staging, target)
    except (OSError, pickle.PicklingError) as e:
        raise Failure("ArtifactWriteFailed", f"cannot write the artifact to {output_dir}: {e}") from e
    except signing.SignatureError as e:
        raise Failure(e.reason, str(e)) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return metadata


def _write_json(path: str, document: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _commit(staging: str, target: str) -> None:
    if os.path.isdir(target):
        try:
            os.rmdir(target)
        except OSError:
            # Typically a volume mounted right at the output path: it cannot be replaced, so fill it instead.
            _fill(staging, target)
            return
    os.rename(staging, target)


def _fill(staging: str, target: str) -> None:
    placed: list[str] = []
    try:
        for name in _present(staging):
            partial = os.path.join(target, f".{name}.partial")
            shutil.copyfile(os.path.join(staging, name), partial)
            os.replace(partial, os.path.join(target, name))
            placed.append(name)
    except BaseException:
        for name in [*placed, *(f".{n}.partial" for n in _WRITE_ORDER)]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(target, name))
        raise


def _present(directory: str) -> list[str]:
    """The artifact's files in `directory`, in writing order (the optional ones only when there)."""
    return [name for name in _WRITE_ORDER if name not in _OPTIONAL or os.path.isfile(os.path.join(directory, name))]


def read_artifact(directory: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metadata, profile) of an artifact directory, after checking the format and the model's sha256."""
    metadata = _read_json(directory, METADATA_FILE)
    if metadata.get("formatVersion") != FORMAT_VERSION:
        raise ArtifactError(f"unsupported artifact formatVersion {metadata.get('formatVersion')!r}")
    missing = [key for key in _REQUIRED_METADATA if key not in metadata]
    if metadata.get("task") == "classification" and "classes" not in metadata:
        missing.append("classes")
    if missing:
        raise ArtifactError(f"{METADATA_FILE} lacks {', '.join(missing)}")
    if metadata["task"] not in ("classification", "regression"):
        raise ArtifactError(f"unknown task {metadata['task']!r}")
    block = metadata["artifact"]
    name = block.get("file") if isinstance(block, dict) else None
    if not isinstance(name, str) or not name or name != os.path.basename(name) or name.startswith("."):
        raise ArtifactError(f"artifact.file must be a plain file name, got {name!r}")
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise ArtifactError(f"model file {name} is missing from {directory}")
    actual = sha256_file(path)
    if actual != block.get("sha256"):
        raise ArtifactError(f"{name} has sha256 {actual}, metadata says {block.get('sha256')!r}")
    from driftline_runtime.profile import validate_profile  # pandas: 0.5 s of import the fetch never needs

    profile = _read_json(directory, PROFILE_FILE)
    try:
        validate_profile(profile)
    except ValueError as e:
        raise ArtifactError(f"{PROFILE_FILE}: {e}") from e
    names = [f.get("name") for f in metadata["features"] if isinstance(f, dict)]
    if names != [f["name"] for f in profile["features"]]:
        raise ArtifactError(f"{PROFILE_FILE} features do not match {METADATA_FILE} features")
    return metadata, profile


def compiled_predictor(metadata: dict[str, Any]) -> bool:
    """Whether the artifact holds a compiled predictor the trainer found equal to the estimator."""
    block = metadata.get("predictor")
    return isinstance(block, dict) and block.get("kind") == trees.KIND and isinstance(block.get("sha256"), str)


def load_model(directory: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The verified (model, metadata, profile) of an artifact directory."""
    import joblib

    metadata, profile = read_artifact(directory)
    return joblib.load(os.path.join(directory, metadata["artifact"]["file"])), metadata, profile


def _read_json(directory: str, name: str) -> dict[str, Any]:
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            document = json.load(f)
    except FileNotFoundError as e:
        raise ArtifactError(f"{name} is missing from {directory}") from e
    except (OSError, ValueError) as e:
        raise ArtifactError(f"cannot read {name} in {directory}: {e}") from e
    if not isinstance(document, dict):
        raise ArtifactError(f"{name} must hold a JSON object")
    return document


# --- object storage -------------------------------------------------------------------------------------------------


def check_output_prefix(prefix: storage.ObjectUri) -> None:
    """Fail before any work when the prefix could not receive the artifact: it must hold nothing."""
    existing = storage.list_keys(prefix)
    if existing:
        shown = ", ".join(sorted(existing)[:3]) + (", ..." if len(existing) > 3 else "")
        raise Failure("OutputNotEmpty", f"{prefix} already holds {len(existing)} object(s) ({shown})")


def publish(directory: str, prefix: storage.ObjectUri) -> None:
    """Upload an artifact written by write_artifact under `prefix`, metadata.json last; each object is put only where
    none exists, so a second writer fails instead of mixing its files with the first's."""
    check_output_prefix(prefix)
    for name in _present(directory):
        storage.upload_new(os.path.join(directory, name), prefix.child(name))


def fetch(prefix: storage.ObjectUri, directory: str, expected_sha256: str) -> dict[str, Any]:
    """Download the artifact under `prefix` into `directory` (pod-local, empty or left by an earlier attempt of this
    same fetch) and return its metadata. Only a complete artifact whose model has `expected_sha256` lands."""
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):  # an earlier attempt's leftovers: start clean
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            os.remove(path)
    meta_path = os.path.join(directory, f".{METADATA_FILE}.fetching")
    try:
        storage.download(prefix.child(METADATA_FILE), meta_path)
    except storage.StorageFailure as e:
        if e.reason != "NoSuchKey":
            raise
        if storage.list_keys(prefix):
            raise Failure(
                "ArtifactIncomplete",
                f"{prefix} has no {METADATA_FILE}: its upload did not finish, so it is not an artifact",
            ) from e
        raise Failure("NoSuchKey", f"no artifact at {prefix}: nothing is stored under it") from e
    try:
        with open(meta_path, encoding="utf-8") as f:
            metadata = json.load(f)
        name = metadata["artifact"]["file"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Failure("InvalidArtifact", f"{prefix.child(METADATA_FILE)} is not an artifact's metadata: {e}") from e
    if not isinstance(name, str) or not name or name != os.path.basename(name) or name.startswith("."):
        raise Failure("InvalidArtifact", f"{prefix.child(METADATA_FILE)}: artifact.file must be a plain file name")
    model_path = os.path.join(directory, name)
    actual = storage.download(prefix.child(name), model_path)
    if actual != expected_sha256:
        os.remove(model_path)
        raise Failure(
            "ArtifactSha256Mismatch",
            f"{prefix.child(name)} has sha256 {actual}, the ModelVersion recorded {expected_sha256}: "
            "the stored artifact changed after registration, and is not served",
        )
    storage.download(prefix.child(PROFILE_FILE), os.path.join(directory, PROFILE_FILE))
    if compiled_predictor(metadata):  # checked by the server against metadata's sha256 before it is used
        storage.download(prefix.child(PREDICTOR_FILE), os.path.join(directory, PREDICTOR_FILE))
    try:  # uploaded before metadata.json, so present by now if the artifact is signed
        storage.download(prefix.child(SIGNATURE_FILE), os.path.join(directory, SIGNATURE_FILE))
    except storage.StorageFailure as e:
        if e.reason != "NoSuchKey":
            raise
    os.replace(meta_path, os.path.join(directory, METADATA_FILE))
    return dict(metadata)
