"""Readiness, liveness and startup probes (httpGet, tcpSocket, exec), run against the pod's own IP."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests


def _port(value: Any, ports: Mapping[str, int]) -> int:
    if isinstance(value, int):
        return value
    if str(value).isdigit():
        return int(value)
    if value in ports:
        return ports[value]
    raise ValueError(f"probe port {value!r} names no containerPort")


def run_probe(
    probe: dict[str, Any], pod_ip: str, ports: Mapping[str, int], exec_env: Mapping[str, str], cwd: str
) -> tuple[bool, str]:
    timeout = float(probe.get("timeoutSeconds", 1))
    try:
        if "httpGet" in probe:
            h = probe["httpGet"]
            host = h.get("host") or pod_ip
            scheme = h.get("scheme", "HTTP").lower()
            url = f"{scheme}://{host}:{_port(h['port'], ports)}{h.get('path', '/')}"
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            r = requests.get(url, headers=headers, timeout=timeout, verify=False, allow_redirects=False)
            return 200 <= r.status_code < 400, f"HTTP probe failed with statuscode: {r.status_code}"
        if "tcpSocket" in probe:
            t = probe["tcpSocket"]
            with socket.create_connection((t.get("host") or pod_ip, _port(t["port"], ports)), timeout=timeout):
                return True, ""
        if "exec" in probe:
            cmd = probe["exec"]["command"]
            out = subprocess.run(cmd, env=dict(exec_env), cwd=cwd, capture_output=True, timeout=timeout, check=False)
            return out.returncode == 0, f"exec probe exited {out.returncode}: {out.stdout[-200:]!r}"
        return False, "probe has no handler"
    except (requests.RequestException, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return False, f"probe error: {exc}"


@dataclass
class ProbeState:
    """Counts consecutive results the way a kubelet's prober worker does."""

    spec: dict[str, Any]
    started: float
    next_due: float = 0.0
    successes: int = 0
    failures: int = 0
    result: bool | None = None
    last_message: str = ""
    history: list[bool] = field(default_factory=list)

    def due(self, now: float) -> bool:
        if now < self.started + float(self.spec.get("initialDelaySeconds", 0)):
            return False
        return now >= self.next_due

    def record(self, ok: bool, message: str, now: float) -> None:
        self.next_due = now + float(self.spec.get("periodSeconds", 10))
        self.last_message = message
        if ok:
            self.successes += 1
            self.failures = 0
            if self.successes >= int(self.spec.get("successThreshold", 1)):
                self.result = True
        else:
            self.failures += 1
            self.successes = 0
            if self.failures >= int(self.spec.get("failureThreshold", 3)):
                self.result = False


def probe_loop(
    container: dict[str, Any],
    pod_ip: str,
    ports: Mapping[str, int],
    exec_env: Mapping[str, str],
    cwd: str,
    running: Callable[[], bool],
    on_ready: Callable[[bool], None],
    on_started: Callable[[], None],
    on_kill: Callable[[str], None],
    event: Callable[[str, str], None],
) -> None:
    """Runs in its own thread for one container run; returns when the process stops."""
    t0 = time.monotonic()
    startup = ProbeState(container["startupProbe"], t0) if container.get("startupProbe") else None
    readiness = ProbeState(container["readinessProbe"], t0) if container.get("readinessProbe") else None
    liveness = ProbeState(container["livenessProbe"], t0) if container.get("livenessProbe") else None
    if startup is None:
        on_started()
    if readiness is None and startup is None:
        on_ready(True)
    while running():
        now = time.monotonic()
        if startup is not None and startup.result is not True:
            if startup.due(now):
                ok, msg = run_probe(startup.spec, pod_ip, ports, exec_env, cwd)
                startup.record(ok, msg, time.monotonic())
                if startup.result is False:
                    event("Unhealthy", f"Startup probe failed: {msg}")
                    on_kill(f"Container {container['name']} failed startup probe, will be restarted")
                    return
                if startup.result:
                    on_started()
                    if readiness is None:
                        on_ready(True)
        else:
            if readiness is not None and readiness.due(now):
                ok, msg = run_probe(readiness.spec, pod_ip, ports, exec_env, cwd)
                before = readiness.result
                readiness.record(ok, msg, time.monotonic())
                if readiness.result is not None and readiness.result != before:
                    on_ready(bool(readiness.result))
                    if readiness.result is False:
                        event("Unhealthy", f"Readiness probe failed: {msg}")
            if liveness is not None and liveness.due(now):
                ok, msg = run_probe(liveness.spec, pod_ip, ports, exec_env, cwd)
                liveness.record(ok, msg, time.monotonic())
                if liveness.result is False:
                    event("Unhealthy", f"Liveness probe failed: {msg}")
                    on_kill(f"Container {container['name']} failed liveness probe, will be restarted")
                    return
        time.sleep(0.1)
