"""Artifact fetch from object storage: what storing a model in S3 adds to a serving pod's start, against reading the
same files from a pod-local directory (a claim's files, as the server reads them).

One real SeaweedFS (S3 authentication on) on loopback; two real artifacts published by the runtime's own rules
(`artifact.publish`): a LogisticRegression on breast_cancer (a few KB) and a KNeighborsClassifier that keeps its
400,000 x 16 training rows (a 50 MB model.joblib). What is timed, per trial:
- **fetch command**: `driftline-runtime fetch` as the init container runs it, a process of its own: Python starting,
  obstore loading, metadata.json, the model (streamed to disk, its sha256 checked against the ModelVersion's) and the
  profile, into an empty directory. A serving pod pays this before its server starts; a pvc:// version pays nothing.
- **transfer alone**: `artifact.fetch` in this process (no process start, imports done): the network part of it.
- **local read** (the baseline): the same three files read from a local directory and the model's sha256 computed,
  as the server does when it loads from a claim (and again after a fetch).
The ratio divides each by the local read of the same artifact, measured in the same run.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import Result, Row, load_average, say
from driftline.devcluster.s3 import Identity, S3Server
from driftline_runtime import artifact, storage
from driftline_runtime.profile import build_profile

NAME = "storage"
DESCRIPTION = "artifact fetch from S3 (SeaweedFS) vs reading the same files from a pod-local directory, 5 KB and 50 MB"
DEFAULT_TRIALS = 5
NEEDS_CLUSTER = False
BUCKET = "models"


def _metadata(task: str, names: list[str]) -> dict[str, Any]:
    return {
        "formatVersion": 1,
        "task": task,
        "target": "target",
        "features": [{"name": n, "dtype": "float64"} for n in names],
        "classes": [0, 1],
        "metrics": {"accuracy": 0.9},
        "estimator": "bench",
        "framework": "scikit-learn",
        "frameworkVersion": "bench",
        "dataset": {"uri": "bench://"},
        "createdAt": "2026-12-04T00:00:00Z",
    }


def artifacts(directory: Path) -> dict[str, Path]:
    """A small and a 50 MB artifact, written as the trainer writes them."""
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    out = {}
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    small = LogisticRegression(max_iter=5000).fit(x, y)
    profile = build_profile(x, small.predict(x), 10, task="classification")
    out["small"] = directory / "small"
    artifact.write_artifact(str(out["small"]), small, _metadata("classification", list(x.columns)), profile)
    rng = np.random.default_rng(0)
    names = [f"f{j}" for j in range(16)]
    big_x = pd.DataFrame(rng.standard_normal((400_000, 16)), columns=names)
    big_y = (big_x["f0"] > 0).astype(int)
    big = KNeighborsClassifier().fit(big_x, big_y)  # keeps its training rows: 400k x 16 float64 = 51 MB
    head = big_x.iloc[:2000]
    out["50MB"] = directory / "big"
    profile = build_profile(head, big.predict(head), 10, task="classification")
    artifact.write_artifact(str(out["50MB"]), big, _metadata("classification", names), profile)
    return out


def local_read(directory: Path) -> float:
    """Seconds to read the three files and hash the model, as the server does from a claim."""
    started = time.perf_counter()
    for name in (artifact.METADATA_FILE, artifact.PROFILE_FILE):
        (directory / name).read_bytes()
    digest = hashlib.sha256()
    with (directory / artifact.MODEL_FILE).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return time.perf_counter() - started


def run(env: object, trials: int | None) -> Result:
    trials = trials or DEFAULT_TRIALS
    result = Result(NAME, rows=[])
    result.extra["load"] = load_average()
    with tempfile.TemporaryDirectory(prefix="driftline-bench-storage-") as tmp:
        root = Path(tmp)
        admin = Identity("admin")
        server = S3Server(root / "s3", [admin]).start()
        try:
            server.create_bucket(BUCKET)
            s3_env = server.env(admin)
            saved = {k: os.environ.get(k) for k in s3_env}
            os.environ.update(s3_env)
            say("writing and publishing the artifacts")
            built = artifacts(root / "written")
            for label, directory in built.items():
                prefix = storage.ObjectUri(BUCKET, f"bench/{label}-{uuid.uuid4().hex[:6]}")
                artifact.publish(str(directory), prefix)
                sha = artifact.read_artifact(str(directory))[0]["artifact"]["sha256"]
                size = (directory / artifact.MODEL_FILE).stat().st_size
                say(f"{label}: model.joblib {size / 1e6:.1f} MB at {prefix}")
                command, transfer, local = [], [], []
                for trial in range(trials):
                    target = root / f"fetched-{label}-{trial}"
                    t0 = time.perf_counter()
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "driftline_runtime.cli",
                            "fetch",
                            f"--from={prefix}",
                            f"--to={target}",
                            f"--expected-sha256={sha}",
                            f"--termination-log={root / 'log'}",
                        ],
                        env={**os.environ, **s3_env},
                        check=True,
                        capture_output=True,
                    )
                    command.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    artifact.fetch(prefix, str(root / f"in-process-{label}-{trial}"), sha)
                    transfer.append(time.perf_counter() - t0)
                    local.append(local_read(directory))
                base = f"{label}: local read (3 files + sha256)"
                result.rows += [
                    Row(base, local, baseline=True),
                    Row(f"{label}: fetch command (a process, as the init container)", command, against=base),
                    Row(f"{label}: transfer alone (in process)", transfer, against=base),
                ]
                result.extra[f"{label}_model_bytes"] = size
                result.notes.append(
                    f"{label} ({size / 1e6:.1f} MB): the fetch command takes {statistics.median(command):.2f} s, "
                    f"{statistics.median(command) / statistics.median(local):.0f}x a local read; the transfer "
                    f"itself {statistics.median(transfer) * 1000:.0f} ms"
                )
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        finally:
            server.stop()
    result.notes.append("ratio column: each row's p50 / the local read of the same artifact (its baseline row)")
    return result


if __name__ == "__main__":  # python -m bench.storage: no cluster needed
    import datetime as dt

    started = time.monotonic()
    stamp = dt.datetime.now().isoformat(timespec="seconds")
    res = run(None, None)
    res.started, res.seconds = stamp, time.monotonic() - started
    print(res.table(), flush=True)
    print(f"  -> {res.write()}", flush=True)
