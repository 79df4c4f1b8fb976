"""A bring-your-own trainer that honours Driftline's training contract (docs/training-contract.md).

It does what the built-in trainer cannot: one-hot encodes text columns inside a scikit-learn Pipeline. It needs only
pandas, numpy, scikit-learn and joblib, and imports nothing from Driftline.

    python train.py --dataset data.csv --target label --output-dir /artifacts/m/1 --artifact-uri pvc://models/m/1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def is_text(column: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column)


def feature_profile(name: str, column: pd.Series, bins: int = 10) -> dict[str, Any]:
    missing = int(column.isna().sum())
    present = column.dropna()
    if is_text(column):
        counts = present.map(str).value_counts()
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "name": name,
            "kind": "categorical",
            "categories": [k for k, _ in ranked[:50]],
            "counts": [int(v) for _, v in ranked[:50]],
            "other": int(sum(v for _, v in ranked[50:])),
            "missing": missing,
        }
    values = present.to_numpy(dtype=float)
    cuts: list[float] = []
    if values.size and values.min() < values.max():
        cuts = np.unique(np.quantile(values, np.arange(1, bins) / bins)).tolist()
    counts = np.bincount(np.searchsorted(cuts, values, side="right"), minlength=len(cuts) + 1)
    return {
        "name": name,
        "kind": "numeric",
        "cuts": cuts,
        "counts": counts.tolist(),
        "min": float(values.min()) if values.size else None,
        "max": float(values.max()) if values.size else None,
        "missing": missing,
    }


def train(args: argparse.Namespace) -> dict[str, Any]:
    frame = pd.read_csv(args.dataset)
    features = [c for c in frame.columns if c != args.target]
    x, y = frame[features], frame[args.target]
    text = [c for c in features if is_text(x[c])]
    model = Pipeline(
        [
            (
                "encode",
                ColumnTransformer([("text", OneHotEncoder(handle_unknown="ignore"), text)], remainder="passthrough"),
            ),
            ("scale", StandardScaler(with_mean=False)),
            ("classify", LogisticRegression(**json.loads(args.params))),
        ]
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=args.validation_split, random_state=args.seed, stratify=y
    )
    model.fit(x_train, y_train)
    predicted = model.predict(x_val)
    metrics = {"accuracy": float(accuracy_score(y_val, predicted))}
    if len(model.classes_) == 2:
        metrics["f1"] = float(f1_score(y_val, predicted, pos_label=model.classes_[1]))
    profile = {
        "formatVersion": 1,
        "rows": len(x_train),
        "features": [feature_profile(c, x_train[c]) for c in features],
        "prediction": feature_profile("__prediction__", pd.Series(model.predict(x_train)).map(str)),
    }
    metadata = {
        "formatVersion": 1,
        "task": "classification",
        "target": args.target,
        "features": [{"name": c, "dtype": str(x[c].dtype)} for c in features],
        "classes": model.classes_.tolist(),
        "metrics": metrics,
        "params": json.loads(args.params),
        "estimator": "sklearn.pipeline.Pipeline",
        "framework": "scikit-learn",
        "frameworkVersion": sklearn.__version__,
        "libraries": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "joblib": joblib.__version__,
        },
        "dataset": {"uri": args.dataset_ref or args.dataset, "sha256": sha256(args.dataset), "rows": len(frame)},
        "createdAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    # Stage beside the destination, then one rename: a reader never sees half an artifact.
    out = os.path.abspath(args.output_dir)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(out))
    try:
        os.chmod(staging, 0o755)
        joblib.dump(model, os.path.join(staging, "model.joblib"))
        digest = sha256(os.path.join(staging, "model.joblib"))
        metadata["artifact"] = {"file": "model.joblib", "sha256": digest, "format": "joblib"}
        for name, document in (("profile.json", profile), ("metadata.json", metadata)):
            with open(os.path.join(staging, name), "w") as f:
                json.dump(document, f, indent=2)
        if os.path.isdir(out):
            os.rmdir(out)  # must be empty
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {
        "ok": True,
        "artifact": {
            "storageUri": args.artifact_uri or out,
            "sha256": digest,
            "format": "joblib",
            "framework": "scikit-learn",
            "frameworkVersion": sklearn.__version__,
        },
        "metrics": metrics,
        "task": "classification",
        "dataset": metadata["dataset"],
        "params": metadata["params"],
        "features": features[:20],
    }


def report(path: str, document: dict[str, Any]) -> None:
    text = json.dumps(document, separators=(",", ":"))
    if len(text) > 4000:  # the kubelet keeps 4096 bytes: drop the bulky parts rather than cut the JSON
        slim = {k: v for k, v in document.items() if k not in ("params", "features")}
        if "message" in slim:
            slim["message"] = slim["message"][:1000]
        text = json.dumps({**slim, "truncated": True}, separators=(",", ":"))
    print(text)
    if os.path.isdir(os.path.dirname(path) or "."):
        with open(path, "w") as f:
            f.write(text)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", required=True)
    p.add_argument("--dataset-ref")
    p.add_argument("--target", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument("--artifact-uri")
    p.add_argument("--termination-log", default="/dev/termination-log")
    p.add_argument("--validation-split", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--params", default="{}")
    args, _ = p.parse_known_args()  # ignore flags meant for the built-in trainer
    try:
        report(args.termination_log, train(args))
        return 0
    except Exception as e:
        traceback.print_exc()
        report(args.termination_log, {"ok": False, "reason": "TrainingFailed", "message": f"{type(e).__name__}: {e}"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
