"""Container mode's side effects: asking podman about images and containers, stopping and removing them, and giving
a volume to the pod's fsGroup. Each call is one short `podman` command; none runs while a pod is steady."""

from __future__ import annotations

import contextlib
import os
import resource
import stat
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from driftline.devcluster.podrunner.oci import ENGINE, Limits


@dataclass(frozen=True)
class ImageInfo:
    user: int | None
    """The uid the image's USER names; None for root or a name (resolved inside the image only)."""
    id: str = ""
    """The image's own id, sha256:<hex>: what a kubelet reports as imageID for an image no registry gave it."""


@dataclass(frozen=True)
class Ended:
    exit_code: int | None
    oom_killed: bool


def _podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENGINE, *args], capture_output=True, text=True, timeout=timeout, check=False)


def inspect_image(ref: str) -> ImageInfo | None:
    """The image as built on this machine, or None when it is not."""
    out = _podman("image", "inspect", "--format", "{{.Id}} {{.Config.User}}", ref)
    if out.returncode != 0:
        return None
    image_id, _, user = out.stdout.strip().partition(" ")
    user = user.split(":")[0]
    return ImageInfo(int(user) if user.isdigit() and user != "0" else None, f"sha256:{image_id}")


def ended(name: str) -> Ended:
    """How a container that exited ended: its exit code and whether the kernel killed it over its memory limit."""
    out = _podman("container", "inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", name)
    if out.returncode != 0 or len(out.stdout.split()) != 2:
        return Ended(None, False)
    code, oom = out.stdout.split()
    return Ended(int(code), oom == "true")


def stop(name: str, grace: float) -> None:
    _podman("stop", "--time", str(max(0, int(grace))), name, timeout=grace + 30)


def remove(name: str) -> None:
    _podman("rm", "--force", "--ignore", name)


@lru_cache(maxsize=1)
def limits() -> Limits:
    """The machine's hard limits, the process count capped at 4096: a container may not raise a limit here, and the
    hard process limit itself is refused inside one."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    return Limits(
        nofile=65536 if nofile == resource.RLIM_INFINITY else int(nofile),
        nproc=4096 if nproc == resource.RLIM_INFINITY else min(4096, int(nproc)),
    )


def own_volume(host_dir: Path, fs_group: int | None) -> None:
    """What a kubelet does to a writable volume for the pod's fsGroup: the group owns it, may write it, and new files
    keep the group (setgid directories). Without an fsGroup the directory is left as it is, except that it is made
    writable by all, as an emptyDir is (0777)."""
    if not host_dir.is_dir():
        return
    if fs_group is None:
        with contextlib.suppress(PermissionError):
            host_dir.chmod(0o777)
        return
    for root, dirs, files in os.walk(host_dir):
        for path in [root, *(os.path.join(root, f) for f in files)]:
            with contextlib.suppress(FileNotFoundError, PermissionError):
                os.chown(path, -1, fs_group, follow_symlinks=False)
                mode = os.stat(path, follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    continue
                extra = stat.S_IRGRP | stat.S_IWGRP | (stat.S_IXGRP | stat.S_ISGID if stat.S_ISDIR(mode) else 0)
                os.chmod(path, stat.S_IMODE(mode) | extra)
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]


def remove_labelled(label: str) -> None:
    """Every container carrying `label` (a cluster's), running or not: what a stopped local cluster leaves behind."""
    out = _podman("ps", "--all", "--quiet", "--filter", f"label={label}")
    ids = out.stdout.split()
    if ids:
        _podman("rm", "--force", "--time", "0", *ids, timeout=120)


_V1_MEMORY = Path("/sys/fs/cgroup/memory")
_CGROUPS = Path("/sys/fs/cgroup")


def memory_cgroup(name: str, limit: int | None) -> str | None:
    """On cgroup v1, a parent cgroup `/driftline/NAME` holding the container's memory limit (swap included, so over
    it is an OOM kill, never swapping); None on cgroup v2 or with no limit (podman's own --memory then)."""
    if limit is None or not (_V1_MEMORY / "memory.limit_in_bytes").exists():
        return None
    path = _V1_MEMORY / "driftline" / name
    path.mkdir(parents=True, exist_ok=True)
    (path / "memory.limit_in_bytes").write_text(str(limit))
    with contextlib.suppress(FileNotFoundError, OSError):  # no swap accounting: the plain limit still holds
        (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
    return f"/driftline/{name}"


def memory_limit_hit(name: str) -> bool:
    """The container's parent cgroup's peak usage reached its limit (with a SIGKILL exit: the kernel's OOM kill).
    Its failcnt stays 0 here when the charge fails on the way up the hierarchy; the peak does not lie."""
    path = _V1_MEMORY / "driftline" / name
    with contextlib.suppress(FileNotFoundError, ValueError):
        limit = int((path / "memory.limit_in_bytes").read_text())
        peak = max(
            int((path / f).read_text())
            for f in ("memory.max_usage_in_bytes", "memory.memsw.max_usage_in_bytes")
            if (path / f).exists()
        )
        return peak >= limit - 256 * 1024  # within a few pages of it: reclaim gave up there
    return False


def remove_cgroup(name: str) -> None:
    """The parent cgroup (and what runc and conmon made under it) in every hierarchy, once the container is gone."""
    for hierarchy in _CGROUPS.glob("*"):
        top = hierarchy / "driftline" / name
        if not top.is_dir():
            continue
        for sub in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
