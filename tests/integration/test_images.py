"""Both images, built from their Dockerfiles by `make images` (hack/images.sh: podman with runc here, on stand-in
Python bases made from Debian where the official image cannot be pulled), run as real OCI containers the way the
operator's pods run them: uid 65532, read-only root filesystem, every capability dropped, no privilege escalation,
the engine's default seccomp profile."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from driftline.devcluster import procs
from driftline.devcluster.podrunner import oci, oci_io
from tests.unit.api._manifests import REPO

pytestmark = pytest.mark.integration

RESTRICTED = [
    "--user", "65532:65532", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges", "--network", "host",
]  # fmt: skip


@pytest.fixture(scope="module")
def images(built_images: dict[str, Any]) -> dict[str, Any]:
    return built_images


def engine(images: dict[str, Any]) -> list[str]:
    """The engine that built the images, with the settings container mode runs podman with (podrunner.oci)."""
    name = next(iter(images.values()))["engine"]
    return list(oci.ENGINE) if name == "podman" else [name]


def limits(images: dict[str, Any]) -> list[str]:
    """podman raises the open-file and process limits by default, which a sandbox without CAP_SYS_RESOURCE refuses."""
    if engine(images)[0] != "podman":
        return []
    lim = oci_io.limits()
    return ["--ulimit", f"nofile={lim.nofile}:{lim.nofile}", "--ulimit", f"nproc={lim.nproc}:{lim.nproc}"]


def run(images: dict[str, Any], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    cmd = [*engine(images), "run", "--rm", *limits(images), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def ref(images: dict[str, Any], repository: str) -> str:
    return next(r for r in images if r.split(":")[0] == repository)


@pytest.fixture
def models(tmp_path: Path) -> Iterator[Path]:
    """A directory the containers' user (65532) may write, as a volume is to a pod with fsGroup."""
    out = tmp_path / "models"
    out.mkdir()
    os.chown(out, 65532, 65532)
    yield out
    shutil.rmtree(out, ignore_errors=True)


def test_images_are_recorded_by_id_with_the_project_version(images: dict[str, Any]) -> None:
    version = next(line.split('"')[1] for line in (REPO / "pyproject.toml").read_text().splitlines()
                   if line.startswith("version = "))  # fmt: skip
    assert set(images) == {f"driftline/runtime:{version}", f"driftline/operator:{version}"}
    for recorded in images.values():
        assert recorded["id"].startswith("sha256:") and len(recorded["id"]) == 71


def test_the_runtime_image_trains_and_serves_as_a_restricted_non_root_container(
    images: dict[str, Any], models: Path
) -> None:
    runtime = ref(images, "driftline/runtime")
    train = [
        "train",
        "--dataset",
        "sklearn://breast_cancer",
        "--estimator",
        "sklearn.linear_model.LogisticRegression",
        "--params",
        '{"max_iter": 5000}',
        "--output-dir",
        "/models/v1",
        "--termination-log",
        "/tmp/log",
    ]
    out = run(images, *RESTRICTED, "-v", f"{models}:/models", runtime, *train)
    assert out.returncode == 0, out.stderr[-2000:]
    artifact = models / "v1" / "model.joblib"
    assert artifact.stat().st_uid == 65532  # written by the image's own user
    sha256 = hashlib.sha256(artifact.read_bytes()).hexdigest()

    port = procs.free_port()
    name = f"driftline-serve-{port}"
    serve = ["serve", "--model-dir", "/models/v1", "--model-name", "bc", "--model-version", "1", "--expected-sha256",
             sha256, "--host", "127.0.0.1", "--port", str(port), "--termination-log", "/tmp/log"]  # fmt: skip
    container = [*engine(images), "run", "--rm", *limits(images), "--name", name, *RESTRICTED]
    server = subprocess.Popen(
        [*container, "-v", f"{models}:/models:ro", runtime, *serve],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            time.sleep(0.5)
        meta = requests.get(f"{base}/v2/models/bc", timeout=5).json()
        features = len(meta["inputs"][0]["shape"]) and meta["inputs"][0]["shape"][-1]
        body = {"inputs": [{"name": "input-0", "shape": [1, features], "datatype": "FP64", "data": [[0.5] * features]}]}
        answer = requests.post(f"{base}/v2/models/bc/infer", json=body, timeout=5)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["shape"][0] == 1 and answer.json()["model_version"] == "1"
        bad = requests.post(f"{base}/v2/models/bc/infer", data=b"{not json", timeout=5)
        assert bad.status_code == 400, bad.text
        assert "driftline_" in requests.get(f"{base}/metrics", timeout=5).text
    finally:
        subprocess.run([*engine(images), "stop", "-t", "10", name], capture_output=True, timeout=60, check=False)
        server.wait(timeout=60)
    assert server.returncode == 0, server.stdout.read() if server.stdout else ""  # a graceful stop on SIGTERM


def test_the_operator_image_starts_as_a_restricted_non_root_container(images: dict[str, Any]) -> None:
    out = run(images, *RESTRICTED, ref(images, "driftline/operator"), "--help")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "run" in out.stdout
