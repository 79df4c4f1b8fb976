"""`driftline-runtime train`: dataset -> checks -> split -> fit -> metrics -> profile -> artifact, one stage a line.

Whatever happens, the job ends with one JSON document in the termination log and exit code 0 (trained) or 1
(a named reason, no artifact left behind).
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from driftline_runtime import artifact, datasets, signing, storage, termination, trees
from driftline_runtime.profile import build_profile
from driftline_runtime.termination import Failure
from driftline_runtime.train import estimator as estimators
from driftline_runtime.train import metrics, prepare, threads
from driftline_runtime.train.options import Options, parse
from driftline_runtime.train.summary import success_summary

STAGES = 6
_WARNINGS_KEPT = 5


class _Terminated(BaseException):
    """SIGTERM (the pod is being deleted): unwind so the staging directory is removed."""


@dataclass
class _Stage:
    detail: str = ""


class _Progress:
    def __init__(self, stages: int = STAGES) -> None:
        self.done = 0
        self.stages = stages

    @contextmanager
    def stage(self, title: str) -> Iterator[_Stage]:
        self.done += 1
        print(f"[{self.done}/{self.stages}] {title} ...", end="", flush=True)
        started, stage = time.perf_counter(), _Stage()
        try:
            yield stage
        except BaseException:
            print(" failed", flush=True)
            raise
        detail = f" {stage.detail}," if stage.detail else ""
        print(f"{detail} {time.perf_counter() - started:.2f}s", flush=True)


def main(argv: list[str]) -> int:
    log_path = termination.path_of(argv)
    previous = _on_sigterm()
    try:
        options = parse(argv)
        log_path = options.termination_log
        termination.write(log_path, train(options))
        return 0
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except Failure as failure:
        return _fail(log_path, failure.reason, failure.message)
    except _Terminated:
        return _fail(log_path, "Terminated", "the trainer received SIGTERM and stopped; no artifact was written")
    except Exception as e:
        traceback.print_exc()
        return _fail(log_path, "InternalError", f"unexpected {type(e).__name__}: {e}")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _fail(log_path: str, reason: str, message: str) -> int:
    print(f"error: {reason}: {message}", file=sys.stderr, flush=True)
    termination.write(log_path, termination.failure_document(reason, message))
    return 1


def _on_sigterm() -> Any:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def train(options: Options) -> dict[str, Any]:
    cls = estimators.resolve(options.estimator, options.allowed_prefixes)
    model, params = estimators.instantiate(cls, options.estimator, options.params, options.seed)
    task = estimators.task_of(model)
    if storage.is_object_uri(options.output_dir):
        artifact.check_output_prefix(storage.parse(options.output_dir))
    else:
        artifact.check_output_dir(options.output_dir)
    print(
        f"training {options.estimator} ({task}) on {options.dataset_ref} -> {options.artifact_uri}"
        f" ({options.threads} threads)",
        flush=True,
    )
    with threads.limited(options.threads):
        return _stages(options, cls, model, params, task)


def _stages(options: Options, cls: type[Any], model: Any, params: dict[str, Any], task: str) -> dict[str, Any]:
    ensemble = trees.is_ensemble(model)  # one stage more: its trees are compiled
    progress = _Progress(STAGES + ensemble)
    with progress.stage(f"loading dataset {options.dataset_ref}") as stage:
        data = datasets.load(options.dataset, options.format)
        frame = data.frame
        stage.detail = f"{len(frame)} rows x {frame.shape[1]} columns, sha256 {data.sha256[:12]}"

    with progress.stage("checking columns and splitting") as stage:
        default_target = "target" if options.dataset.startswith("sklearn://") else None
        target, features = prepare.select_columns(frame, options.target or default_target, options.features)
        nan_ok = estimators.allows_nan(model)
        prepare.check_values(frame, target, features, task=task, estimator=options.estimator, nan_ok=nan_ok)
        parts = prepare.split(
            frame[features], frame[target], task=task, validation_split=options.validation_split, seed=options.seed
        )
        kind = "stratified" if parts.stratified else "random"
        stage.detail = f"target {target!r}, {len(features)} features, {len(parts.y_train)}/{len(parts.y_val)} {kind}"

    with _captured() as caught, progress.stage(f"fitting {cls.__name__}") as stage:
        _fit(model, options.estimator, parts)
        stage.detail = f"{len(caught)} warning(s)" if caught else ""

    with _captured() as more, progress.stage(f"evaluating on {len(parts.y_val)} validation rows") as stage:
        try:
            scores = metrics.evaluate(model, task, parts.x_val, parts.y_val)
        except Exception as e:
            raise _training_failed(options.estimator, "predicting the validation rows", e) from e
        stage.detail = " ".join(f"{k}={v:.4g}" for k, v in scores.items())

    predictor: dict[str, Any] = {"kind": trees.SCIKIT_LEARN}
    checkpoint = None
    if ensemble:
        with progress.stage("compiling the trees (Treelite)") as stage:
            predictor, checkpoint = _compiled(model, parts.x_val)
            stage.detail = predictor.get("reason") or f"equal to the estimator within {predictor['maxDifference']:.2g}"

    with progress.stage(f"profiling {len(parts.y_train)} training rows") as stage:
        try:
            predictions = model.predict(parts.x_train)
        except Exception as e:
            raise _training_failed(options.estimator, "predicting the training rows", e) from e
        reference = build_profile(parts.x_train, predictions, options.profile_bins, task=task)
        stage.detail = f"{len(features)} features, {options.profile_bins} bins"

    with progress.stage(f"writing artifact {options.output_dir}") as stage:
        metadata = _metadata(options, model, task, target, frame, features, scores, params, data, parts)
        metadata["warnings"] = _warning_texts([*caught, *more])
        metadata["predictor"] = predictor
        metadata = _write(options.output_dir, model, metadata, reference, checkpoint)
        signed = metadata["artifact"].get("signedBy")
        stage.detail = f"sha256 {metadata['artifact']['sha256'][:12]}" + (f", signed {signed[:19]}" if signed else "")
    return success_summary(metadata, options.artifact_uri)


def _compiled(model: Any, x_val: Any) -> tuple[dict[str, Any], bytes | None]:
    """The metadata's `predictor` block for a tree ensemble, and the compiled trees' checkpoint when they give the
    estimator's own answers on the validation rows (else scikit-learn serves, and the block says why)."""
    try:
        compiled, checkpoint = trees.compile_estimator(model)
        difference = trees.agreement(compiled, model, x_val)
    except trees.NotCompiled as e:
        return {"kind": trees.SCIKIT_LEARN, "reason": str(e)}, None
    except Exception as e:  # Treelite failing on a model it imported: serve with scikit-learn, say why
        return {"kind": trees.SCIKIT_LEARN, "reason": f"compiled trees failed: {type(e).__name__}: {e}"[:300]}, None
    if difference > trees.TOLERANCE:
        what = "predict other labels" if difference == float("inf") else f"differ by {difference:.3g}"
        reason = f"the compiled trees {what} on the validation rows (tolerance {trees.TOLERANCE:g})"
        return {"kind": trees.SCIKIT_LEARN, "reason": reason}, None
    import treelite

    block = {"kind": trees.KIND, "file": trees.FILE, "inputDtype": compiled.input_dtype}
    return {**block, "maxDifference": difference, "treelite": treelite.__version__}, checkpoint


def _write(
    output: str, model: Any, metadata: dict[str, Any], reference: dict[str, Any], predictor: bytes | None = None
) -> dict[str, Any]:
    """The artifact into a directory, or built in the pod's temporary storage and published to object storage; signed
    when the TrainingJob names a signing key (spec.signing, handed over as DRIFTLINE_SIGNING_KEY)."""
    key = os.environ.get(signing.SIGNING_KEY_ENV) or None
    if not storage.is_object_uri(output):
        return artifact.write_artifact(output, model, metadata, reference, signing_key=key, predictor=predictor)
    with tempfile.TemporaryDirectory(prefix="driftline-artifact-") as staging:
        place = os.path.join(staging, "artifact")
        written = artifact.write_artifact(place, model, metadata, reference, key, predictor)
        artifact.publish(os.path.join(staging, "artifact"), storage.parse(output))
    return written


def _fit(model: Any, path: str, parts: prepare.Split) -> None:
    try:
        model.fit(parts.x_train, parts.y_train)
    except Exception as e:
        if estimators.is_invalid_params(e):
            raise Failure("InvalidParams", f"{path} rejects --params: {e}") from e
        raise _training_failed(path, "fitting", e) from e


def _training_failed(path: str, doing: str, error: Exception) -> Failure:
    traceback.print_exc()
    text = str(error).strip() or "(no message)"
    return Failure("TrainingFailed", f"{path} failed while {doing}: {type(error).__name__}: {text}")


@contextmanager
def _captured() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    for text in _warning_texts(caught):
        print(f"warning: {text}", file=sys.stderr, flush=True)


def _warning_texts(caught: list[warnings.WarningMessage]) -> list[str]:
    texts = dict.fromkeys(termination.clip(f"{w.category.__name__}: {w.message}".splitlines()[0], 300) for w in caught)
    return list(texts)[:_WARNINGS_KEPT]


def _metadata(
    options: Options,
    model: Any,
    task: str,
    target: str,
    frame: Any,
    features: list[str],
    scores: dict[str, float],
    params: dict[str, Any],
    data: datasets.Dataset,
    parts: prepare.Split,
) -> dict[str, Any]:
    import joblib
    import numpy
    import pandas
    import sklearn

    metadata: dict[str, Any] = {
        "formatVersion": artifact.FORMAT_VERSION,
        "task": task,
        "target": target,
        "features": [{"name": f, "dtype": str(frame[f].dtype)} for f in features],
    }
    if task == "classification":
        metadata["classes"] = model.classes_.tolist()
    metadata |= {
        "metrics": scores,
        "params": params,
        "estimator": options.estimator,
        "framework": "scikit-learn",
        "frameworkVersion": sklearn.__version__,
        "libraries": {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "pandas": pandas.__version__,
            "scikit-learn": sklearn.__version__,
            "joblib": joblib.__version__,
        },
        "dataset": {"uri": options.dataset_ref, "sha256": data.sha256, "rows": len(frame), "format": data.format},
        "split": {
            "validationFraction": options.validation_split,
            "seed": options.seed,
            "stratified": parts.stratified,
            "trainRows": len(parts.y_train),
            "validationRows": len(parts.y_val),
        },
        "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return metadata
