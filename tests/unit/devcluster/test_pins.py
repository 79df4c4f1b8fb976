"""The wrapper Go modules the control plane is built from (hack/k8s-bin) require exactly the versions
hack/versions.env pins: a bump of one without regenerating the other (hack/k8s-bin/generate.sh) fails here, not in a
half-built cache."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from driftline.devcluster import binaries

pytestmark = pytest.mark.unit
K8S_BIN = Path(binaries.REPO_ROOT) / "hack" / "k8s-bin"


@pytest.mark.parametrize(
    ("module", "pin", "path"),
    [
        ("kubernetes", "KUBERNETES_VERSION", "k8s.io/kubernetes"),
        ("kubernetes-min", "KUBERNETES_MIN_VERSION", "k8s.io/kubernetes"),
        ("etcd", "ETCD_VERSION", "go.etcd.io/etcd/server/v3"),
        ("helm", "HELM_VERSION", "helm.sh/helm/v3"),
    ],
)
def test_each_wrapper_module_requires_its_pinned_version(module: str, pin: str, path: str) -> None:
    gomod = (K8S_BIN / module / "go.mod").read_text()
    version = binaries.versions()[pin]
    assert re.search(rf"^require {re.escape(path)} {re.escape(version)}$", gomod, re.M), f"{module}/go.mod vs {pin}"
    if module.startswith("kubernetes"):
        # Every staging module replaced by its published twin of the same release (v0.<minor>.<patch>).
        twins = set(re.findall(r"^\s+k8s\.io/[a-z0-9-]+ => k8s\.io/[a-z0-9-]+ (v\S+)$", gomod, re.M))
        assert twins == {"v0." + version.removeprefix("v1.")}, twins


def test_the_oldest_supported_kubernetes_is_older_than_the_pinned_one() -> None:
    pins = binaries.versions()
    minor = [int(pins[k].split(".")[1]) for k in ("KUBERNETES_MIN_VERSION", "KUBERNETES_VERSION")]
    assert minor[0] < minor[1]
