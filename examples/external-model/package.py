"""Package a scikit-learn model trained elsewhere as a Driftline artifact, and write the ModelVersion that registers it.

    python examples/external-model/package.py --estimator fraud.joblib --train train.csv --validation val.csv \
        --target label --model fraud --version 1 --storage-uri s3://models/fraud/v1 --out fraud-v1 \
        --dataset-uri s3://datasets/fraud/2024-05.csv

writes fraud-v1/artifact/ (model.joblib, metadata.json, profile.json: the training contract's files, the profile of
the training rows that drift is measured against, the metrics on the validation rows; model.sig too with
--signing-key) and fraud-v1/modelversion.yaml, with the model file's sha256. Then upload and register:

    driftline-runtime publish --from fraud-v1/artifact --to s3://models/fraud/v1   # S3 settings from AWS_* as usual
    kubectl apply -f fraud-v1/modelversion.yaml                                   # needs the verb register

The version waits as a Candidate until a person promotes it (driftline.dev/promote: "true") or, with
--promote, asks for it at once (needs the verb promote). See docs/external-models.md.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import sklearn
import yaml

from driftline_runtime import artifact
from driftline_runtime.profile import build_profile
from driftline_runtime.train import metrics

FORMAT_VERSION = 1


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--estimator", type=Path, required=True, help="the fitted estimator, saved with joblib.dump")
    p.add_argument("--train", type=Path, required=True, help="CSV of the training rows (the drift reference)")
    p.add_argument("--validation", type=Path, help="CSV of held-out rows for the metrics (none: no metrics)")
    p.add_argument("--target", required=True, help="the label column")
    p.add_argument("--model", required=True, help="the model's name, e.g. fraud")
    p.add_argument("--version", type=int, required=True, help="the version number to register")
    p.add_argument("--storage-uri", required=True, help="where the artifact will live: s3://... or pvc://...")
    p.add_argument("--out", type=Path, required=True, help="directory for artifact/ and modelversion.yaml")
    p.add_argument("--dataset-uri", help="where the training data lives (s3://, https://, ...), for the lineage")
    p.add_argument("--signing-key", type=Path, help="an EC private key PEM: sign the artifact into model.sig")
    p.add_argument("--promote", action="store_true", help="ask for promotion in the ModelVersion itself")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    model = joblib.load(args.estimator)
    train = pd.read_csv(args.train)
    features = [c for c in train.columns if c != args.target]
    task = "classification" if hasattr(model, "classes_") else "regression"
    scores: dict[str, float] = {}
    if args.validation is not None:
        val = pd.read_csv(args.validation)
        scores = metrics.evaluate(model, task, val[features], val[args.target])
    metadata: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "task": task,
        "target": args.target,
        "features": [{"name": f, "dtype": str(train[f].dtype)} for f in features],
        **({"classes": model.classes_.tolist()} if task == "classification" else {}),
        "metrics": scores,
        "params": {},
        "estimator": f"{type(model).__module__}.{type(model).__name__}",
        "framework": "scikit-learn",
        "frameworkVersion": sklearn.__version__,
        "dataset": {
            "uri": args.dataset_uri or args.train.name,
            "sha256": hashlib.sha256(args.train.read_bytes()).hexdigest(),
        },
        "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    profile = build_profile(train[features], model.predict(train[features]), 10, task=task)
    key = args.signing_key.read_text() if args.signing_key else None
    written = artifact.write_artifact(str(args.out / "artifact"), model, metadata, profile, signing_key=key)
    sha = written["artifact"]["sha256"]
    spec: dict[str, Any] = {
        "model": args.model,
        "version": args.version,
        "artifact": {
            "storageUri": args.storage_uri,
            "sha256": sha,
            "framework": "scikit-learn",
            "frameworkVersion": sklearn.__version__,
            **({"signedBy": written["artifact"]["signedBy"]} if "signedBy" in written["artifact"] else {}),
        },
        "metrics": scores,
        **({"dataset": {"uri": args.dataset_uri, "sha256": metadata["dataset"]["sha256"]}} if args.dataset_uri else {}),
        "description": f"{metadata['estimator']} trained outside Driftline, packaged by examples/external-model",
    }
    version = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"{args.model}-v{args.version}",
            **({"annotations": {"driftline.dev/promote": "true"}} if args.promote else {}),
        },
        "spec": spec,
    }
    (args.out / "modelversion.yaml").write_text(yaml.safe_dump(version, sort_keys=False))
    print(f"wrote {args.out / 'artifact'} (model.joblib sha256 {sha}) and {args.out / 'modelversion.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
