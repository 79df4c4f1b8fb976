"""Where the control-plane binaries come from: the versioned cache that hack/build-k8s.sh fills."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-k8s.sh"
REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "helm")


def versions() -> dict[str, str]:
    """The pins of hack/versions.env, the single place they are written."""
    pins: dict[str, str] = {}
    for line in (REPO_ROOT / "hack" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key] = value
    return pins


def bin_dir() -> Path:
    """The directory holding every binary, building them first when the cache is cold (the build shows progress)."""
    override = os.environ.get("DRIFTLINE_K8S_BIN")
    if override:
        path = Path(override)
    else:
        out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
        path = Path(out.stdout.strip().splitlines()[-1])
    missing = [b for b in REQUIRED if not (path / b).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} lacks {', '.join(missing)}; run hack/build-k8s.sh")
    return path


def min_apiserver() -> tuple[Path, str]:
    """The kube-apiserver of the oldest Kubernetes Driftline supports (KUBERNETES_MIN_VERSION) and that version,
    built beside the others by hack/build-k8s.sh."""
    version = versions()["KUBERNETES_MIN_VERSION"]
    path = bin_dir().parent / f"kube-apiserver-{version}" / "kube-apiserver"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run hack/build-k8s.sh")
    return path, version
