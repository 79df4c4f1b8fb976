"""Container mode: a pod's container run as a real OCI container (podman with runc) from the image `make images`
built, honouring what a kubelet honours of its spec. This module builds the `podman run` command from the pod and
container specs (pure); sandbox.ContainerRun runs it and reads back how it ended.

What maps to what:
- the pod's network identity: `--network host`, and the runner's sitecustomize (mounted read-only, on PYTHONPATH)
  moves a wildcard or loopback bind to the pod's own loopback address, as in process mode;
- securityContext (the container's over the pod's): runAsUser/runAsGroup (`--user`), runAsNonRoot (refused before
  start when the user would be root, as a kubelet refuses), fsGroup and supplementalGroups (`--group-add`),
  readOnlyRootFilesystem (`--read-only`, with a private /tmp only if a volume does not provide one),
  capabilities (`--cap-drop`/`--cap-add`), allowPrivilegeEscalation: false (`no-new-privileges`), seccompProfile
  (RuntimeDefault is the engine's default profile; Unconfined turns it off);
- resources.limits: memory and cpu (`--cpus`); a container over its memory limit is killed by the kernel and
  reported OOMKilled, exit code 137. On cgroup v1 (these machines) the memory limit is set on a parent cgroup made for
  the container, as a kubelet's pod cgroup, since podman does not see the kill there; on v2 it is `--memory` and
  podman's own OOMKilled;
- env, volume mounts (read-only where asked), workingDir, command/args (`--entrypoint`), the termination message
  file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ENGINE = ("podman", "--runtime", "runc", "--cgroup-manager=cgroupfs")
"""runc, not podman's default crun, which refuses these machines' hybrid cgroup layout; cgroupfs, no systemd here."""
SITE_MOUNT = "/run/driftline/pod-site"
CLUSTER_LABEL = "dev.driftline.cluster"
"""On every container a local cluster runs: its directory, so that stopping the cluster removes them all."""
_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


class NotRunnable(ValueError):
    """The spec asks what a kubelet would refuse (CreateContainerConfigError), e.g. runAsNonRoot with uid 0."""


def quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (`512Mi`, `1.5G`, `500m`, `2`) as a number (bytes, or cores)."""
    text = str(value).strip()
    if text.endswith("m") and text[:-1].replace(".", "", 1).isdigit():
        return Decimal(text[:-1]) / 1000
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * _UNITS[suffix]
    return Decimal(text)


@dataclass(frozen=True)
class Limits:
    nofile: int
    nproc: int


def security(pod_spec: Mapping[str, Any], container: Mapping[str, Any], image_user: int | None) -> list[str]:
    """The securityContext flags. `image_user`: the uid the image's USER names (None: root or unknown)."""
    pod_sc: Mapping[str, Any] = pod_spec.get("securityContext") or {}
    sc: Mapping[str, Any] = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return sc.get(key, pod_sc.get(key))

    out: list[str] = []
    uid, gid = pick("runAsUser"), pick("runAsGroup")
    if pick("runAsNonRoot") and (uid == 0 or (uid is None and not image_user)):
        raise NotRunnable("container has runAsNonRoot and image will run as root")
    if uid is not None:
        out += ["--user", f"{uid}:{gid}" if gid is not None else str(uid)]
    elif gid is not None:
        out += ["--group-add", str(gid)]
    for group in [pod_sc.get("fsGroup"), *(pod_sc.get("supplementalGroups") or [])]:
        if group is not None:
            out += ["--group-add", str(group)]
    if sc.get("readOnlyRootFilesystem"):
        out.append("--read-only")
    caps: Mapping[str, Any] = sc.get("capabilities") or {}
    for cap in caps.get("drop") or []:
        out += ["--cap-drop", str(cap).upper()]
    for cap in caps.get("add") or []:
        out += ["--cap-add", str(cap).upper()]
    if sc.get("allowPrivilegeEscalation") is False:
        out += ["--security-opt", "no-new-privileges"]
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    if seccomp == "Unconfined":
        out += ["--security-opt", "seccomp=unconfined"]
    if sc.get("privileged"):
        out.append("--privileged")
    return out


def memory_limit(container: Mapping[str, Any]) -> int | None:
    limits: Mapping[str, Any] = (container.get("resources") or {}).get("limits") or {}
    return int(quantity(limits["memory"])) if "memory" in limits else None


def resources(container: Mapping[str, Any], cgroup_parent: str | None = None) -> list[str]:
    """The limits as flags; with `cgroup_parent` the memory limit is that cgroup's (oci_io.memory_cgroup), not a
    flag: the parent outlives the container, so how it ended can be read after."""
    limits: Mapping[str, Any] = (container.get("resources") or {}).get("limits") or {}
    out: list[str] = []
    if cgroup_parent is not None:
        out += ["--cgroup-parent", cgroup_parent]
    elif "memory" in limits:
        memory = int(quantity(limits["memory"]))
        out += ["--memory", str(memory), "--memory-swap", str(memory)]  # swap off: over the limit is an OOM kill
    if "cpu" in limits:
        out += ["--cpus", f"{quantity(limits['cpu']):f}"]
    return out


def run_command(
    *,
    name: str,
    image: str,
    pod_spec: Mapping[str, Any],
    container: Mapping[str, Any],
    env: Mapping[str, str],
    mounts: Mapping[str, str],
    read_only: set[str],
    pod_ip: str,
    site_dir: str,
    limits: Limits,
    image_user: int | None,
    label: str = "",
    cgroup_parent: str | None = None,
) -> list[str]:
    """`podman run` for one container, attached (its exit is the container's). `mounts`: container path -> host path
    (volumes, the termination message file, the service-account token); `read_only`: the container paths mounted so;
    `env`: the container's own variables."""
    argv = [*ENGINE, "run", "--name", name, "--network", "host", "--hostname", str(env.get("HOSTNAME", name))]
    argv += ["--label", label] if label else []
    # podman raises the open-file and process limits by default, which a sandbox without CAP_SYS_RESOURCE refuses.
    argv += ["--ulimit", f"nofile={limits.nofile}:{limits.nofile}", "--ulimit", f"nproc={limits.nproc}:{limits.nproc}"]
    argv += security(pod_spec, container, image_user)
    argv += resources(container, cgroup_parent)
    sc: Mapping[str, Any] = container.get("securityContext") or {}
    if sc.get("readOnlyRootFilesystem") and "/tmp" not in mounts:
        argv += ["--tmpfs", "/tmp"]
    for path, host in sorted(mounts.items()):
        argv += ["-v", f"{host}:{path}" + (":ro" if path in read_only else "")]
    argv += ["-v", f"{site_dir}:{SITE_MOUNT}:ro"]
    variables = {**env, "DRIFTLINE_POD_IP": pod_ip, "PYTHONPATH": SITE_MOUNT}
    if env.get("PYTHONPATH"):
        variables["PYTHONPATH"] = f"{SITE_MOUNT}:{env['PYTHONPATH']}"
    for key, value in sorted(variables.items()):
        argv += ["-e", f"{key}={value}"]
    if container.get("workingDir"):
        argv += ["-w", str(container["workingDir"])]
    command = list(container.get("command") or [])
    if command:
        argv += ["--entrypoint", command[0]]
    argv.append(image)
    return argv + command[1:] + [str(a) for a in container.get("args") or []]


def exec_in_container(container: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The container spec with its exec probes run inside the container (`podman exec`), as a kubelet runs them."""
    out = dict(container)
    for key in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(key)
        if probe and "exec" in probe:
            out[key] = {**probe, "exec": {"command": [*ENGINE, "exec", name, *probe["exec"]["command"]]}}
    return out
