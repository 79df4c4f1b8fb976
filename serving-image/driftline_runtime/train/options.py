"""Command-line options of `driftline-runtime train`. Every path arrives through argv so a harness can remap it."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any, NoReturn

from driftline_runtime import termination
from driftline_runtime.datasets import FORMATS
from driftline_runtime.termination import Failure
from driftline_runtime.train.threads import cpu_budget


@dataclass(frozen=True)
class Options:
    dataset: str
    dataset_ref: str
    format: str | None
    target: str | None
    features: list[str] | None
    validation_split: float
    seed: int
    estimator: str
    params: dict[str, Any]
    allowed_prefixes: list[str]
    output_dir: str
    artifact_uri: str
    termination_log: str
    profile_bins: int
    threads: int


class _Parser(argparse.ArgumentParser):
    # Usage errors must reach the termination log like any other failure, not exit 2 with text on stderr.
    def error(self, message: str) -> NoReturn:
        raise Failure("InvalidArguments", message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="driftline-runtime train",
        description="Train a scikit-learn estimator into a model artifact.",
        allow_abbrev=False,
    )
    p.add_argument("--dataset", required=True, help="sklearn://NAME, http(s)://..., file:///abs/path or a path")
    p.add_argument("--dataset-ref", help="the dataset URI as the user wrote it, for lineage (default: --dataset)")
    p.add_argument("--format", choices=FORMATS, help="default: from the file extension, else csv")
    p.add_argument("--target", help="target column (default 'target' for sklearn:// datasets)")
    p.add_argument("--features", help="comma-separated feature columns, or a JSON list (default: all but the target)")
    p.add_argument("--validation-split", type=float, default=0.2, help="fraction held out for metrics (default 0.2)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--estimator", required=True, help="class path, e.g. sklearn.linear_model.LogisticRegression")
    p.add_argument("--params", default="{}", help="estimator parameters as a JSON object")
    p.add_argument("--allowed-prefixes", default="sklearn.", help="comma-separated module prefixes (default sklearn.)")
    p.add_argument("--output-dir", required=True, help="artifact directory to create (absent or empty)")
    p.add_argument("--artifact-uri", help="the storage URI of --output-dir, echoed in the summary")
    p.add_argument("--termination-log", default=termination.DEFAULT_PATH)
    p.add_argument("--profile-bins", type=int, default=10, help="quantile bins per numeric feature (default 10)")
    p.add_argument("--threads", type=int, default=0, help="BLAS/OpenMP threads (default 0: the CPUs the pod may use)")
    return p


def parse(argv: list[str]) -> Options:
    ns = parser().parse_args(argv)
    if not 0.0 < ns.validation_split < 1.0:
        raise Failure("InvalidArguments", f"--validation-split must be between 0 and 1, got {ns.validation_split}")
    if not 1 <= ns.profile_bins <= 1000:
        raise Failure("InvalidArguments", f"--profile-bins must be between 1 and 1000, got {ns.profile_bins}")
    if ns.threads < 0:
        raise Failure("InvalidArguments", f"--threads must be 0 (automatic) or more, got {ns.threads}")
    return Options(
        dataset=ns.dataset,
        dataset_ref=ns.dataset_ref or ns.dataset,
        format=ns.format,
        target=ns.target,
        features=_features(ns.features),
        validation_split=ns.validation_split,
        seed=ns.seed,
        estimator=ns.estimator.strip(),
        params=parse_params(ns.params),
        allowed_prefixes=[p.strip() for p in ns.allowed_prefixes.split(",") if p.strip()],
        output_dir=ns.output_dir,
        artifact_uri=ns.artifact_uri or ns.output_dir,
        termination_log=ns.termination_log,
        profile_bins=ns.profile_bins,
        threads=ns.threads or cpu_budget(),
    )


def parse_params(text: str) -> dict[str, Any]:
    def reject(constant: str) -> NoReturn:
        raise ValueError(f"{constant} is not valid JSON")

    try:
        params = json.loads(text, parse_constant=reject)
    except ValueError as e:
        raise Failure("InvalidParams", f"--params is not valid JSON: {e}") from e
    if not isinstance(params, dict):
        raise Failure("InvalidParams", f"--params must be a JSON object, got {type(params).__name__}")
    return params


def _features(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    # A JSON list lets column names contain commas.
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except ValueError as e:
            raise Failure("InvalidArguments", f"--features is not a valid JSON list: {e}") from e
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise Failure("InvalidArguments", "--features as JSON must be a list of column names")
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Failure("InvalidArguments", f"--features lists {', '.join(map(repr, duplicates))} more than once")
    return list(names)
