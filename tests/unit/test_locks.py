"""The images' lock files (hack/lock.sh): exact versions with hashes, covering what each package declares, one version
of a package shared by both images, and the very scikit-learn the tests run (so what the tests prove of a pickle holds
in the image)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parents[2]
LOCKS = {
    "runtime": (REPO / "serving-image" / "requirements.lock", REPO / "serving-image" / "pyproject.toml"),
    "operator": (REPO / "operator" / "requirements.lock", REPO / "pyproject.toml"),
}
BUILD_LOCKS = {"runtime": REPO / "serving-image" / "build.lock", "operator": REPO / "operator" / "build.lock"}
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every requirement; fails on one that is not pinned exactly with a hash."""
    text = lock.read_text()
    out = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.splitlines()[0]
        if not first or first.startswith("#"):
            continue
        match = PIN.match(first)
        assert match, f"{lock.name}: {first!r} is not pinned with =="
        assert "--hash=sha256:" in block, f"{lock.name}: {match.group(1)} has no hash"
        out[str(canonicalize_name(match.group(1)))] = match.group(2)
    return out


def declared(pyproject: Path, section: str = "dependencies") -> list[Requirement]:
    data = tomllib.loads(pyproject.read_text())
    if section == "build":
        return [Requirement(r) for r in data["build-system"]["requires"]]
    return [Requirement(r) for r in data["project"][section]]


@pytest.mark.parametrize("image", sorted(LOCKS))
def test_the_lock_pins_every_declared_dependency_within_its_range(image: str) -> None:
    lock, pyproject = LOCKS[image]
    locked = pins(lock)
    for req in declared(pyproject):
        name = str(canonicalize_name(req.name))
        assert name in locked, f"{image}: {req.name} is declared but not locked (run make lock)"
        assert req.specifier.contains(locked[name], prereleases=True), f"{image}: {name}=={locked[name]} vs {req}"
    build = pins(BUILD_LOCKS[image])
    for req in declared(pyproject, "build"):
        name = str(canonicalize_name(req.name))
        assert name in build and req.specifier.contains(build[name], prereleases=True), (image, req)


def test_a_package_both_images_hold_has_one_version() -> None:
    runtime, operator = pins(LOCKS["runtime"][0]), pins(LOCKS["operator"][0])
    differ = {n: (runtime[n], operator[n]) for n in runtime.keys() & operator.keys() if runtime[n] != operator[n]}
    assert differ == {}


@pytest.mark.parametrize("package", ["scikit-learn", "numpy", "scipy", "joblib", "pandas"])
def test_the_tests_run_what_the_runtime_image_ships(package: str) -> None:
    """A pickle is loaded by the scikit-learn (and numpy, scipy, joblib) of the image that serves it; the tests prove
    training and serving with the same versions (make setup installs with the locks as constraints)."""
    assert metadata.version(package) == pins(LOCKS["runtime"][0])[package]


def test_the_runtime_image_installs_every_package_of_the_runtime() -> None:
    """setuptools installs the packages pyproject lists and no others: a new subpackage left out is missing from the
    image only (the tests' editable install finds it anyway)."""
    root = REPO / "serving-image"
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "driftline_runtime").rglob("__init__.py")
        if "build" not in init.parts
    }
    assert listed == found
