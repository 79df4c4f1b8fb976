"""The images the runner can run, with the ENTRYPOINT/CMD their Dockerfiles declare.

A test (tests/unit/devcluster/test_images.py) checks these against operator/Dockerfile and serving-image/Dockerfile,
so a pod behaves the same here and on a real node.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftline.api.fields import image_repository


@dataclass(frozen=True)
class LocalImage:
    repository: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    dockerfile: str = ""


KNOWN_IMAGES: tuple[LocalImage, ...] = (
    LocalImage("driftline/runtime", ("driftline-runtime",), (), "serving-image/Dockerfile"),
    LocalImage("driftline/operator", ("driftline",), ("run", "--all-namespaces"), "operator/Dockerfile"),
)


def repository_of(image: str) -> str:
    """`registry:5000/driftline/runtime:0.1@sha256:…` -> `driftline/runtime` (the last two path parts, no tag)."""
    parts = image_repository(image).split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else parts[0]


def lookup(image: str) -> LocalImage | None:
    repo = repository_of(image)
    return next((i for i in KNOWN_IMAGES if i.repository == repo), None)


def known_repositories() -> list[str]:
    return [i.repository for i in KNOWN_IMAGES]
