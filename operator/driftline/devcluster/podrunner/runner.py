"""The runner's loop: watch the pods bound to our node, keep one sandbox per pod, report status like a kubelet."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from driftline.devcluster.kubeapi import ApiError, KubeApi
from driftline.devcluster.podrunner import images, node, provisioner
from driftline.devcluster.podrunner.node import now_micro
from driftline.devcluster.podrunner.sandbox import PodSandbox
from driftline.devcluster.podrunner.services import ServiceProxy
from driftline.devcluster.podrunner.volumes import VolumeNotAttached, VolumeNotReady

log = logging.getLogger("driftline.podrunner")
_TERMINAL = ("Succeeded", "Failed")


IPS_PER_NODE = 4000
"""Eight nodes end at 127.<prefix>.125.0: the upper half of the /16 is the Service range (controlplane.service_cidr)."""


class IpPool:
    """Pod IPs 127.<prefix>.c.d: the whole 127/8 range routes to loopback on Linux, so each pod owns an address. Each
    node takes its own range of the cluster's prefix (IPS_PER_NODE addresses), as a node's pod CIDR."""

    def __init__(self, prefix: str, node_index: int = 0) -> None:
        self.prefix = prefix
        self.used: set[str] = set()
        self.first = max(2, node_index * IPS_PER_NODE)
        self.last = (node_index + 1) * IPS_PER_NODE - 1
        self.next = self.first

    def take(self) -> str:
        while True:
            n = self.next
            self.next = self.first if self.next >= self.last else self.next + 1
            ip = f"{self.prefix}.{n // 256}.{n % 256}"
            if n % 256 not in (0, 255) and ip not in self.used:
                self.used.add(ip)
                return ip

    def release(self, ip: str) -> None:
        self.used.discard(ip)


class Runner:
    def __init__(
        self,
        kubeconfig: Path,
        root: Path,
        node_name: str,
        ip_prefix: str,
        kube_version: str,
        *,
        node_index: int = 0,
        volumes_root: Path | None = None,
        provision: bool = True,
        containers: bool = False,
    ) -> None:
        self.api = KubeApi(kubeconfig, user_agent="driftline-pod-runner")
        doc = yaml.safe_load(kubeconfig.read_text())
        self.ca_cert = doc["clusters"][0]["cluster"]["certificate-authority"]
        self.root = root
        self.cluster_dir = root.parent
        self.node_name = node_name
        self.kube_version = kube_version
        self.ips = IpPool(ip_prefix, node_index)
        self.volumes_root = volumes_root or root / "volumes"
        self.provision = provision  # one runner of a cluster provisions; every runner attaches for its node
        self.containers = containers
        self.in_use: tuple[str, ...] | None = None
        self.pods: dict[str, dict[str, Any]] = {}  # uid -> latest object seen
        self.sandboxes: dict[str, PodSandbox] = {}
        self.last_status: dict[str, dict[str, Any]] = {}
        self.retry_at: dict[str, float] = {}
        self.reported: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self._wake = threading.Event()
        self.stopping = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    # -- threads ------------------------------------------------------------------------------------------------

    def run(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        provisioner.ensure_storage_class(self.api)
        provisioner.ensure_csi_driver(self.api)
        node.register(self.api, self.node_name, self.kube_version)
        node.heartbeat(self.api, self.node_name)
        for target in (self._heartbeat_loop, self._watch_loop, self._provision_loop):
            threading.Thread(target=target, daemon=True, name=target.__name__).start()
        if self.provision:  # one runner per cluster: the one that provisions
            ServiceProxy(self.api, self.stopping).start()
        log.info("pod runner for node %s ready", self.node_name)
        while not self.stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self.sync()
            except Exception:
                log.exception("sync failed; retrying")
                time.sleep(1)
        self.shutdown()

    def shutdown(self) -> None:
        log.info("stopping %d pods", len(self.sandboxes))
        threads = [threading.Thread(target=s.stop, args=(5.0,)) for s in self.sandboxes.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _heartbeat_loop(self) -> None:
        beats = 0
        while not self.stopping.wait(10):
            beats += 1
            try:
                node.heartbeat(self.api, self.node_name)
                if beats % 6 == 0:
                    node.refresh_status(self.api, self.node_name)
            except Exception:
                log.exception("heartbeat failed")

    def _provision_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.provision:
                    provisioner.sync(self.api, self.volumes_root)
                provisioner.attach(self.api, self.node_name)
            except Exception:
                log.exception("provisioner sync failed")
            self.stopping.wait(0.5)

    def _watch_loop(self) -> None:
        path = "/api/v1/pods"
        selector = f"spec.nodeName={self.node_name}"
        while not self.stopping.is_set():
            try:
                listing = self.api.get(path, fieldSelector=selector)
                with self.lock:
                    self.pods = {p["metadata"]["uid"]: p for p in listing.get("items", [])}
                self.wake()
                rv = listing["metadata"]["resourceVersion"]
                while not self.stopping.is_set():
                    for ev in self.api.watch(path, rv, fieldSelector=selector):
                        obj = ev["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if ev["type"] == "BOOKMARK":
                            continue
                        with self.lock:
                            if ev["type"] == "DELETED":
                                self.pods.pop(obj["metadata"]["uid"], None)
                            else:
                                self.pods[obj["metadata"]["uid"]] = obj
                        self.wake()
            except ApiError as e:
                if e.status != 410:
                    log.warning("pod watch: %s", e)
                    time.sleep(1)
            except Exception as e:
                log.warning("pod watch interrupted: %s", e)
                time.sleep(1)

    # -- reconcile ------------------------------------------------------------------------------------------------

    def sync(self) -> None:
        with self.lock:
            pods = dict(self.pods)
        for uid, pod in pods.items():
            try:
                self.sync_pod(uid, pod)
            except ApiError as e:
                if e.status not in (404, 409):
                    log.warning("pod %s/%s: %s", pod["metadata"]["namespace"], pod["metadata"]["name"], e)
        for uid in [u for u in self.sandboxes if u not in pods]:
            # Gone from the API (force-deleted): stop what still runs.
            sandbox = self.sandboxes.pop(uid)
            threading.Thread(target=self._stop_sandbox, args=(sandbox, 0.0), daemon=True).start()
            self.last_status.pop(uid, None)
        self._report_volumes_in_use()

    def _report_volumes_in_use(self) -> None:
        """node.status.volumesInUse, as a kubelet reports it: the attached volumes its live pods have mounted. The
        attach/detach controller detaches a volume only once no node reports it in use (else it waits 6 minutes)."""
        names = sorted(
            {
                name
                for uid, sandbox in self.sandboxes.items()
                if sandbox.prepared is not None and (self.last_status.get(uid) or {}).get("phase") not in _TERMINAL
                for name in sandbox.prepared.attached
            }
        )
        if tuple(names) == self.in_use:
            return
        self.api.patch(f"/api/v1/nodes/{self.node_name}/status", {"status": {"volumesInUse": names}}, kind="merge")
        self.in_use = tuple(names)

    def _stop_sandbox(self, sandbox: PodSandbox, grace: float | None) -> None:
        sandbox.stop(grace)
        self.ips.release(sandbox.ip)

    def sync_pod(self, uid: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        sandbox = self.sandboxes.get(uid)
        if meta.get("deletionTimestamp"):
            self._delete(uid, pod, sandbox)
            return
        phase = pod.get("status", {}).get("phase")
        if sandbox is None:
            if phase in _TERMINAL:
                return
            if time.monotonic() < self.retry_at.get(uid, 0):
                return
            unknown = [i for i in _images_of(pod) if images.lookup(i) is None]
            if unknown:
                self._refuse_image(uid, pod, unknown)
                return
            sandbox = PodSandbox(
                self.api,
                pod,
                self.root,
                self.ips.take(),
                self.api.server,
                self.ca_cert,
                self.cluster_dir,
                event=functools.partial(self.event, pod),
                wake=self.wake,
                containers=self.containers,
            )
            try:
                sandbox.setup()
            except VolumeNotAttached:
                # Waiting for the attach/detach controller (its FailedAttachVolume Event says why, when it refuses).
                self.ips.release(sandbox.ip)
                self.retry_at[uid] = time.monotonic() + 0.5
                return
            except VolumeNotReady as e:
                self.ips.release(sandbox.ip)
                self.retry_at[uid] = time.monotonic() + 2.0
                self._once(uid, "FailedMount", pod, f"MountVolume.SetUp failed: {e}")
                return
            self.sandboxes[uid] = sandbox
            log.info("pod %s/%s -> %s", ns, name, sandbox.ip)
        sandbox.step()
        self._report(uid, pod, sandbox)
        due = sandbox.next_restart_due()
        if due is not None:
            threading.Timer(max(0.0, due - time.monotonic()) + 0.05, self.wake).start()

    def _report(self, uid: str, pod: dict[str, Any], sandbox: PodSandbox) -> None:
        status = sandbox.status(pod.get("status", {}).get("conditions"))
        comparable = {k: v for k, v in status.items() if k != "conditions"}
        comparable["conditions"] = [(c["type"], c["status"]) for c in status["conditions"]]
        if self.last_status.get(uid) == comparable:
            return
        meta = pod["metadata"]
        self.api.patch(
            f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
            {"metadata": {"uid": uid}, "status": status},
        )
        self.last_status[uid] = comparable
        if status["phase"] in _TERMINAL:
            # Processes are gone; free the address but keep the directory (logs, termination files) until deletion.
            self.ips.release(sandbox.ip)

    def _delete(self, uid: str, pod: dict[str, Any], sandbox: PodSandbox | None) -> None:
        meta = pod["metadata"]
        if sandbox is not None:
            self.sandboxes.pop(uid, None)
            grace = float(meta.get("deletionGracePeriodSeconds", sandbox.grace_period))
            sandbox.event("Normal", "Killing", f"Stopping container(s) of pod {meta['name']}")
            sandbox.stop(grace)
            self.ips.release(sandbox.ip)
            with contextlib.suppress(ApiError):
                self._report(uid, pod, sandbox)
        self.last_status.pop(uid, None)
        # The kubelet's final word: delete with grace 0 once nothing runs (uid precondition: never a successor pod).
        try:
            self.api.delete(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
            )
        except ApiError as e:
            if e.status not in (404, 409):
                raise

    def _refuse_image(self, uid: str, pod: dict[str, Any], unknown: list[str]) -> None:
        known = ", ".join(images.known_repositories())
        message = (
            f"image {unknown[0]!r} is not one the local pod runner can run (it runs the project's own images: "
            f"{known}); nothing was started"
        )
        if self._once(uid, "ErrImageNeverPull", pod, message):
            statuses = []
            for c in pod["spec"].get("containers") or []:
                waiting = (
                    {"reason": "ErrImageNeverPull", "message": message}
                    if c.get("image") in unknown
                    else {"reason": "PodInitializing"}
                )
                statuses.append(
                    {
                        "name": c["name"],
                        "image": c.get("image", ""),
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "started": False,
                        "state": {"waiting": waiting},
                    }
                )
            meta = pod["metadata"]
            self.api.patch(
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status",
                {"status": {"phase": "Pending", "containerStatuses": statuses}},
            )

    def _once(self, uid: str, reason: str, pod: dict[str, Any], message: str) -> bool:
        if (uid, reason) in self.reported:
            return False
        self.reported.add((uid, reason))
        self.event(pod, "Warning", reason, message)
        return True

    def event(self, pod: dict[str, Any], etype: str, reason: str, message: str) -> None:
        meta = pod["metadata"]
        now = now_micro()
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            # Named as a kubelet names them; 1.36 rejects a generateName ending in '.'.
            "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
            "eventTime": now,
            "reportingController": "driftline.dev/pod-runner",
            "reportingInstance": self.node_name,
            "action": reason,
            "reason": reason,
            "type": etype,
            "note": message[:1024],
            "regarding": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
        }
        try:
            self.api.create(f"/apis/events.k8s.io/v1/namespaces/{meta['namespace']}/events", body)
        except ApiError as e:
            log.debug("event not recorded: %s", e)


def _images_of(pod: dict[str, Any]) -> list[str]:
    spec = pod["spec"]
    return [c.get("image", "") for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
