"""One pod: its directory, loopback IP, volumes and container processes, advanced one step at a time."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from driftline.devcluster import procs
from driftline.devcluster.kubeapi import KubeApi
from driftline.devcluster.kubeconfig import write_kubeconfig
from driftline.devcluster.podrunner import images, oci, oci_io, probes, volumes
from driftline.devcluster.podrunner.downward import UnsupportedField, field_value
from driftline.devcluster.podrunner.expand import PathMap, expand, expand_all
from driftline.devcluster.podrunner.node import now_rfc3339
from driftline.devcluster.podrunner.status import ContainerState, pod_status

SITE_DIR = Path(__file__).with_name("pod_site")
_BACKOFF_START, _BACKOFF_MAX = 1.0, 20.0  # a kubelet uses 10 s .. 5 min; tests want faster turns
_TERMINATION_LIMIT = 4096
EventFn = Callable[[str, str, str], None]  # (type, reason, message)


class ConfigError(RuntimeError):
    """CreateContainerConfigError: the container's env names a missing Secret/ConfigMap key."""


def _python_env_bin() -> str:
    # The venv's bin directory, unresolved: resolving the symlink would leave the virtualenv.
    return str(Path(sys.executable).parent)


class ContainerRun:
    def __init__(self, pod: PodSandbox, spec: dict[str, Any], init: bool) -> None:
        self.pod = pod
        self.spec = spec
        self.init = init
        self.state = ContainerState(name=spec["name"], image=spec.get("image", ""))
        self.proc: subprocess.Popen[bytes] | None = None
        self.next_start = 0.0
        self.backoff = _BACKOFF_START
        self.kill_reason: str | None = None
        self.dir = pod.dir / "containers" / spec["name"]
        self.log = pod.dir / "logs" / f"{spec['name']}.log"
        self.termination_file = self.dir / "termination-log"
        self.env: dict[str, str] = {}
        self.stopped_by_runner = False

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        image = images.lookup(self.state.image)
        assert image is not None  # the sandbox refuses unknown images before any start
        if self.pod.containers:
            self._start_container()
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.termination_file.unlink(missing_ok=True)
        mapping = self.pod.prepared.mounts_for(self.spec) if self.pod.prepared else {}
        mapping[self.spec.get("terminationMessagePath", "/dev/termination-log")] = str(self.termination_file)
        if self.pod.prepared and self.pod.prepared.token_dir:
            mapping.setdefault(volumes.SA_MOUNT, str(self.pod.prepared.token_dir))
        paths = PathMap(mapping)
        env = self.pod.base_env()
        # Only the container's own values name container paths; the runner's (PATH, HOME, PYTHONPATH) are host
        # paths already, and may lie under a mountPath such as /tmp when the project itself lives there.
        env.update({k: paths.translate(v) for k, v in self.pod.resolve_env(self.spec, env).items()})
        if self.pod.prepared and (read_only := self.pod.prepared.read_only_for(self.spec)):
            env["DRIFTLINE_READONLY_PATHS"] = os.pathsep.join(read_only)
        self.env = env
        if self.spec.get("command"):
            argv = expand_all(list(self.spec["command"]) + list(self.spec.get("args") or []), env)
        else:
            argv = list(image.entrypoint) + expand_all(list(self.spec.get("args") or image.cmd), env)
        argv = paths.translate_all(argv)
        exe = argv[0]
        if exe in ("python", "python3") or exe.startswith("python3."):
            argv[0] = sys.executable
        else:
            found = shutil.which(exe, path=env["PATH"]) if "/" not in exe else exe
            if not found:
                self._start_error(f'exec: "{exe}": executable file not found in $PATH')
                return
            argv[0] = found
        workdir = self.spec.get("workingDir")
        cwd = Path(paths.host_path(workdir) or self.dir) if workdir else self.dir
        cwd.mkdir(parents=True, exist_ok=True)
        st = self.state
        self._launch(
            argv, env, cwd, spawn_env=env, container_id=f"driftline://{self.pod.uid}/{st.name}/{st.restart_count}"
        )

    def _launch(
        self, argv: list[str], env: dict[str, str], cwd: Path, spawn_env: dict[str, str] | None, container_id: str
    ) -> None:
        """Start `argv` (the container's process, or the `podman run` attached to its container) and mark the
        container running; its probes start with it. `spawn_env`: the process's environment (None: the runner's)."""
        with self.log.open("ab") as f:
            f.write(f"--- {now_rfc3339()} start {argv}\n".encode())
        self.env = env
        self.proc = procs.spawn(argv, cluster_dir=self.pod.cluster_dir, log=self.log, env=spawn_env, cwd=cwd)
        st = self.state
        st.state, st.started_at, st.ready, st.started = "running", now_rfc3339(), False, False
        st.ever_started = True
        st.container_id = container_id
        self.kill_reason = None
        how = f"OCI container {self.container_name}" if self.pod.containers else f"pid {self.proc.pid}"
        self.pod.event("Normal", "Started", f"Started container {st.name} ({how})")
        if not self.init:
            self._start_prober(env, cwd)

    @property
    def container_name(self) -> str:
        return f"driftline-{self.pod.uid[:13]}-{self.state.name}-{self.state.restart_count}"

    def _start_container(self) -> None:
        """Container mode: the container as a real OCI container from the image `make images` built (never this
        process's environment in its place: an image not built is an image the node cannot run)."""
        st, ref = self.state, self.state.image
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        built = oci_io.inspect_image(ref)
        if built is None:
            st.state, st.waiting_reason = "waiting", "ErrImageNeverPull"
            st.waiting_message = f"image {ref!r} is not built on this node (make images builds the project's images)"
            self.next_start = time.monotonic() + 5.0
            self.pod.event("Warning", "ErrImageNeverPull", st.waiting_message)
            return
        prepared = self.pod.prepared
        mounts = prepared.mounts_for(self.spec) if prepared else {}
        read_only = {
            m["mountPath"]
            for m in self.spec.get("volumeMounts") or []
            if prepared and (m.get("readOnly") or m["name"] in prepared.read_only)
        }
        fs_group = (self.pod.pod["spec"].get("securityContext") or {}).get("fsGroup")
        for path, host in mounts.items():
            if path not in read_only:
                oci_io.own_volume(Path(host), fs_group)  # as a kubelet applies fsGroup to a volume
        self.termination_file.write_bytes(b"")
        self.termination_file.chmod(0o666)  # the container's user writes its last words here
        mounts[self.spec.get("terminationMessagePath", "/dev/termination-log")] = str(self.termination_file)
        if prepared and prepared.token_dir:
            mounts.setdefault(volumes.SA_MOUNT, str(prepared.token_dir))
            read_only.add(volumes.SA_MOUNT)
        base = {"HOSTNAME": self.pod.name}
        env = {**base, **self.pod.resolve_env(self.spec, base)}
        if prepared and prepared.token_dir:
            # In-cluster configuration, as a kubelet gives it: the mounted token and CA, and the API server's address
            # in KUBERNETES_SERVICE_HOST/PORT (here its own loopback address: the container shares the host network).
            server = urlsplit(self.pod.server)
            env = {"KUBERNETES_SERVICE_HOST": server.hostname or "127.0.0.1",
                   "KUBERNETES_SERVICE_PORT": str(server.port or 443), **env}  # fmt: skip
        spec = dict(self.spec)
        for key in ("command", "args"):
            if spec.get(key):
                spec[key] = expand_all(list(spec[key]), env)
        try:
            argv = oci.run_command(
                name=self.container_name,
                image=ref,
                pod_spec=self.pod.pod["spec"],
                container=spec,
                env=env,
                mounts=mounts,
                read_only=read_only,
                pod_ip=self.pod.ip,
                site_dir=str(SITE_DIR),
                limits=oci_io.limits(),
                image_user=built.user,
                label=f"{oci.CLUSTER_LABEL}={self.pod.cluster_dir}",
                cgroup_parent=oci_io.memory_cgroup(self.container_name, oci.memory_limit(spec)),
            )
        except oci.NotRunnable as e:
            oci_io.remove_cgroup(self.container_name)
            raise ConfigError(str(e)) from e
        oci_io.remove(self.container_name)  # one left by a runner that died
        self.stopped_by_runner = False
        st.image_id = built.id
        self._launch(argv, env, self.dir, spawn_env=None, container_id=f"podman://{self.container_name}")

    def _start_prober(self, env: dict[str, str], cwd: Path) -> None:
        proc = self.proc
        ports = {p["name"]: int(p["containerPort"]) for p in self.spec.get("ports") or [] if p.get("name")}

        def running() -> bool:
            return proc is not None and self.proc is proc and proc.poll() is None and not self.pod.stopping

        def on_ready(ok: bool) -> None:
            if running():
                self.state.ready = ok
                self.pod.wake()

        def on_started() -> None:
            self.state.started = True
            self.pod.wake()

        def on_kill(reason: str) -> None:
            self.kill_reason = reason
            self.pod.wake()

        def event(reason: str, message: str) -> None:
            self.pod.event("Warning", reason, message)

        spec = oci.exec_in_container(self.spec, self.container_name) if self.pod.containers else self.spec
        threading.Thread(
            target=probes.probe_loop,
            args=(spec, self.pod.ip, ports, env, str(cwd), running, on_ready, on_started, on_kill, event),
            daemon=True,
            name=f"probe-{self.pod.name}-{self.state.name}",
        ).start()

    def _start_error(self, message: str) -> None:
        st = self.state
        st.state, st.exit_code, st.term_reason, st.term_message = "terminated", 128, "StartError", message
        st.started_at = st.finished_at = now_rfc3339()
        self.pod.event("Warning", "Failed", f"Error: {message}")

    def poll(self) -> bool:
        """Notice an exit or a failed liveness probe; True when the state changed."""
        if self.proc is None:
            return False
        if self.kill_reason and self.proc.poll() is None:
            self.pod.event("Normal", "Killing", self.kill_reason)
            self._signal_and_wait(float(self.pod.grace_period))
        code = self.proc.poll()
        if code is None:
            return False
        st = self.state
        st.state, st.finished_at, st.ready, st.started = "terminated", now_rfc3339(), False, False
        st.exit_code = code if code >= 0 else 128 - code  # killed by signal N -> 128+N, as a runtime reports
        st.term_reason = "Completed" if code == 0 else "Error"
        if self.pod.containers:
            ended = oci_io.ended(self.container_name)
            if ended.exit_code is not None:
                st.exit_code = ended.exit_code
            killed = st.exit_code == 137 and not self.stopped_by_runner
            if ended.oom_killed or (killed and oci_io.memory_limit_hit(self.container_name)):
                st.exit_code, st.term_reason = 137, "OOMKilled"  # as a kubelet reports the kernel's kill
            oci_io.remove(self.container_name)
            oci_io.remove_cgroup(self.container_name)
        st.term_message = self._termination_message(code)
        self.proc = None
        return True

    def _termination_message(self, code: int) -> str:
        msg = ""
        if self.termination_file.exists():
            msg = self.termination_file.read_bytes()[:_TERMINATION_LIMIT].decode(errors="replace")
        if not msg and code != 0 and self.spec.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            lines = self.log.read_bytes().decode(errors="replace").splitlines()[-80:]
            msg = "\n".join(lines)[-2048:]
        return msg

    def should_restart(self, restart_policy: str) -> bool:
        if self.state.state != "terminated":
            return False
        if restart_policy == "Always":
            return True
        return restart_policy == "OnFailure" and self.state.exit_code != 0

    def schedule_restart(self) -> None:
        st = self.state
        st.last_terminated = st.to_status()["state"]["terminated"]
        st.restart_count += 1
        st.state, st.waiting_reason = "waiting", "CrashLoopBackOff" if st.exit_code != 0 else "Restarting"
        st.waiting_message = f"back-off {self.backoff:.0f}s restarting container {st.name}"
        self.next_start = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, _BACKOFF_MAX)
        if st.exit_code != 0:
            self.pod.event("Warning", "BackOff", f"Back-off restarting failed container {st.name}")

    def _signal_and_wait(self, grace: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if self.pod.containers:
            self.stopped_by_runner = True  # a SIGKILL after the grace period is not the kernel's OOM kill
            oci_io.stop(self.container_name, grace)  # SIGTERM in the container, SIGKILL after the grace period
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # Whatever the container left behind in its process group goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop(self, grace: float) -> None:
        if self.proc is not None:
            self._signal_and_wait(grace)
            self.poll()


class PodSandbox:
    def __init__(
        self,
        api: KubeApi,
        pod: dict[str, Any],
        root: Path,
        ip: str,
        server: str,
        ca_cert: str,
        cluster_dir: Path,
        event: EventFn,
        wake: Callable[[], None],
        containers: bool = False,
    ) -> None:
        """`containers`: container mode (oci.py), every container a real OCI container; else a process each."""
        meta = pod["metadata"]
        self.containers = containers
        self.api, self.pod, self.ip, self.server, self.ca_cert = api, pod, ip, server, ca_cert
        self.uid, self.name, self.namespace = meta["uid"], meta["name"], meta["namespace"]
        self.dir = root / "pods" / f"{self.namespace}_{self.name}_{self.uid}"
        self.cluster_dir = cluster_dir
        self._event, self.wake = event, wake
        spec = pod["spec"]
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.grace_period = int(spec.get("terminationGracePeriodSeconds", 30))
        self.init = [ContainerRun(self, c, True) for c in spec.get("initContainers") or []]
        self.main = [ContainerRun(self, c, False) for c in spec.get("containers") or []]
        self.prepared: volumes.PreparedVolumes | None = None
        self.start_time = now_rfc3339()
        self.stopping = False
        self.kubeconfig: Path | None = None

    def event(self, etype: str, reason: str, message: str) -> None:
        self._event(etype, reason, message)

    def unknown_images(self) -> list[str]:
        return [c.state.image for c in self.init + self.main if images.lookup(c.state.image) is None]

    def setup(self) -> None:
        """Volumes and the token kubeconfig; raises volumes.VolumeNotReady to be retried."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prepared = volumes.prepare(self.api, self.pod, self.dir, self.ip)
        token_dir = self.prepared.token_dir
        if token_dir is not None:
            # In-cluster clients look for KUBERNETES_SERVICE_HOST, which a loopback process cannot use; a kubeconfig
            # holding the pod's own service-account token gives them the same identity and permissions.
            self.kubeconfig = write_kubeconfig(
                self.dir / "kubeconfig",
                server=self.server,
                ca_cert=Path(self.ca_cert),
                user=f"system:serviceaccount:{self.namespace}:{self.pod['spec'].get('serviceAccountName', 'default')}",
                token=(token_dir / "token").read_text(),
                namespace=self.namespace,
            )

    def base_env(self) -> dict[str, str]:
        env = {
            "PATH": f"{_python_env_bin()}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.dir / "home"),
            "HOSTNAME": self.name,
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(SITE_DIR),  # sitecustomize: binds on 0.0.0.0 land on the pod's own IP
            "DRIFTLINE_POD_IP": self.ip,
        }
        (self.dir / "home").mkdir(parents=True, exist_ok=True)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def resolve_env(self, spec: dict[str, Any], base: dict[str, str]) -> dict[str, str]:
        env: dict[str, str] = {}
        for src in spec.get("envFrom") or []:
            prefix = src.get("prefix", "")
            if "configMapRef" in src:
                ref = src["configMapRef"]
                cm = self.api.get_or_none(f"/api/v1/namespaces/{self.namespace}/configmaps/{ref['name']}")
                if cm is None and not ref.get("optional"):
                    raise ConfigError(f'configmap "{ref["name"]}" not found')
                env.update({prefix + k: v for k, v in ((cm or {}).get("data") or {}).items()})
            if "secretRef" in src:
                ref = src["secretRef"]
                s = self.api.get_or_none(f"/api/v1/namespaces/{self.namespace}/secrets/{ref['name']}")
                if s is None and not ref.get("optional"):
                    raise ConfigError(f'secret "{ref["name"]}" not found')
                env.update({prefix + k: base64.b64decode(v).decode() for k, v in ((s or {}).get("data") or {}).items()})
        for item in spec.get("env") or []:
            name = item["name"]
            if "valueFrom" not in item:
                env[name] = expand(str(item.get("value", "")), {**base, **env})
                continue
            vf = item["valueFrom"]
            if "fieldRef" in vf:
                try:
                    env[name] = field_value(self.pod, vf["fieldRef"]["fieldPath"], self.ip)
                except UnsupportedField as e:
                    raise ConfigError(str(e)) from e
            elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                # As the kubelet does: read through the API with the node's identity, at container start only; a
                # missing object or key (unless optional) keeps the container from starting, with its messages.
                is_cm = "configMapKeyRef" in vf
                ref = vf["configMapKeyRef"] if is_cm else vf["secretKeyRef"]
                kind, shown = ("configmaps", "ConfigMap") if is_cm else ("secrets", "Secret")
                obj = self.api.get_or_none(f"/api/v1/namespaces/{self.namespace}/{kind}/{ref['name']}")
                if obj is None and not ref.get("optional"):
                    raise ConfigError(f'{kind[:-1]} "{ref["name"]}" not found')
                data = (obj or {}).get("data") or {}
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise ConfigError(f"couldn't find key {ref['key']} in {shown} {self.namespace}/{ref['name']}")
                raw = data[ref["key"]]
                env[name] = raw if is_cm else base64.b64decode(raw).decode()
            elif "resourceFieldRef" in vf:
                res = vf["resourceFieldRef"]["resource"]
                section, _, rname = res.partition(".")
                resources: dict[str, Any] = spec.get("resources") or {}
                env[name] = str((resources.get(section) or {}).get(rname, "0"))
        return env

    # -- stepping ---------------------------------------------------------------------------------------------

    def step(self) -> None:
        """Advance: start the next init container, then all containers; notice exits; restart per policy."""
        if self.stopping:
            return
        for c in self.init + self.main:
            c.poll()
        for c in self.init:
            st = c.state
            if st.state == "terminated" and st.exit_code == 0:
                continue
            if st.state == "running":
                return
            if st.state == "terminated":
                if self.restart_policy == "Never":
                    return
                c.schedule_restart()
            if time.monotonic() >= c.next_start:
                self._start(c)
            return
        for c in self.main:
            if c.should_restart(self.restart_policy):
                c.schedule_restart()
            if c.state.state == "waiting" and time.monotonic() >= c.next_start:
                self._start(c)

    def _start(self, c: ContainerRun) -> None:
        try:
            c.start()
        except ConfigError as e:
            repeated = c.state.waiting_reason == "CreateContainerConfigError" and c.state.waiting_message == str(e)
            c.state.state, c.state.waiting_reason, c.state.waiting_message = (
                "waiting",
                "CreateContainerConfigError",
                str(e),
            )
            c.next_start = time.monotonic() + 2.0
            if not repeated:  # a kubelet's recorder folds repeats into one Event's count; one Event per cause here
                self.event("Warning", "Failed", f"Error: {e}")

    def status(self, previous_conditions: list[dict[str, Any]] | None) -> dict[str, Any]:
        return pod_status(
            restart_policy=self.restart_policy,
            init=[c.state for c in self.init],
            main=[c.state for c in self.main],
            pod_ip=self.ip,
            host_ip="127.0.0.1",
            start_time=self.start_time,
            now=now_rfc3339(),
            previous_conditions=previous_conditions,
        )

    def next_restart_due(self) -> float | None:
        due = [c.next_start for c in self.init + self.main if c.state.state == "waiting" and c.next_start]
        return min(due) if due else None

    def stop(self, grace: float | None = None) -> None:
        self.stopping = True
        g = float(self.grace_period if grace is None else grace)
        threads = [threading.Thread(target=c.stop, args=(g,)) for c in self.init + self.main]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
