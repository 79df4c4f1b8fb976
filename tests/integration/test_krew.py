"""The krew release of `kubectl driftline`, installed as a user installs it: hack/krew/package.py packs the plugin (a
Python zip application) and renders the krew manifest as krew-release-bot does on a release; the real krew (built
from its Go module by hack/krew/build.sh) installs them; the plugin then runs from krew's PATH, with a plain python3
and none of the project's virtualenv, against the real control plane."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cluster
from tests.integration.test_crd_validation import crds  # noqa: F401  (the fixture)
from tests.unit.api._manifests import REPO

pytestmark = pytest.mark.integration


def krew_bin() -> Path:
    out = subprocess.run(["bash", str(REPO / "hack" / "krew" / "build.sh")], check=True, stdout=subprocess.PIPE,
                         text=True, timeout=900)  # fmt: skip
    return Path(out.stdout.strip().splitlines()[-1])


def package(out: Path) -> tuple[Path, Path]:
    subprocess.run([sys.executable, str(REPO / "hack" / "krew" / "package.py"), str(out)], check=True, timeout=120)
    return out / "kubectl-driftline.tar.gz", out / "driftline.yaml"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """krew's root with the plugin installed, and the environment a user's shell would have: krew's bin on PATH, a
    python3 that is the bare interpreter (no site-packages of the project: the archive must carry all it imports)."""
    tmp = tmp_path_factory.mktemp("krew")
    archive, manifest = package(tmp / "release")
    python = tmp / "python"
    python.mkdir()
    base = getattr(sys, "_base_executable", sys.executable)
    # -S: no site-packages at all (the base interpreter's own may hold PyYAML): only the standard library and the zip.
    (python / "python3").write_text(f'#!/bin/sh\nexec "{base}" -S "$@"\n')
    (python / "python3").chmod(0o755)
    env = {"KREW_ROOT": str(tmp / "root"), "HOME": str(tmp), "PATH": f"{tmp / 'root' / 'bin'}:{python}:/usr/bin:/bin"}
    krew = krew_bin()
    # `krew list` and `uninstall` want the index `krew update` clones (no network here): an empty one, as git makes it.
    subprocess.run(["git", "init", "-q", str(tmp / "root" / "index" / "default")], check=True, timeout=30)
    done = subprocess.run([str(krew), "install", f"--manifest={manifest}", f"--archive={archive}"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Installed plugin: driftline" in done.stderr + done.stdout
    yield {**env, "KREW": str(krew), "MANIFEST": str(manifest), "ARCHIVE": str(archive)}


def test_the_release_is_reproducible_and_its_manifest_names_its_archive(
    installed: dict[str, str], tmp_path: Path
) -> None:
    archive, manifest = package(tmp_path)
    assert archive.read_bytes() == Path(installed["ARCHIVE"]).read_bytes()  # the same tree, the same bytes
    spec = yaml.safe_load(manifest.read_text())["spec"]
    (platform,) = spec["platforms"]
    assert platform["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert platform["uri"].endswith(f"/releases/download/{spec['version']}/kubectl-driftline.tar.gz")
    assert platform["bin"] == "kubectl-driftline"


def test_krew_installs_the_plugin_and_kubectl_runs_it_without_the_projects_python(
    crds: Cluster,  # noqa: F811
    installed: dict[str, str],
    namespace: str,
) -> None:
    cluster = crds
    env = {**installed, "KUBECONFIG": cluster.kubeconfig, "PATH": f"{installed['PATH']}:{cluster.bin}"}

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(cluster.bin / "kubectl"), *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip

    listed = subprocess.run([installed["KREW"], "list"], env=env, capture_output=True, text=True, check=True).stdout
    assert "detached/driftline" in listed.split(), listed  # installed from a manifest, not from an index
    plugins = kubectl("plugin", "list").stdout
    assert f"{installed['KREW_ROOT']}/bin/kubectl-driftline" in plugins, plugins
    cluster.kubectl("apply", "-n", namespace, "-f", str(REPO / "examples" / "modelversion-external.yaml"))

    out = kubectl("driftline", "-n", namespace, "get", "model", "fraud")
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()
    assert header.split()[:2] == ["VERSION", "STAGE"] and row.split()[:2] == ["1", "new"], out.stdout
    out = kubectl("driftline", "-n", namespace, "lineage", "fraud-v1", "-o", "yaml")  # PyYAML from the archive
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["modelVersion"]["spec"]["model"] == "fraud"
    out = kubectl("driftline", "-n", namespace, "lineage", "fraud-v1")
    assert "trained by: nobody Driftline knows (registered by hand)" in out.stdout, out.stdout

    done = subprocess.run([installed["KREW"], "uninstall", "driftline"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not os.path.lexists(f"{installed['KREW_ROOT']}/bin/kubectl-driftline")
    assert not (Path(installed["KREW_ROOT"]) / "receipts" / "driftline.yaml").exists()
    assert "driftline" not in kubectl("plugin", "list").stdout
