"""Services for the local cluster, as kube-proxy's userspace mode made them: every ClusterIP Service's ports answer on
its ClusterIP, and each connection is forwarded to one of its ready endpoints (round robin).

The endpoints are the Service's selected pods that are Ready, found here: the real EndpointSlice controller runs but
cannot record them, as the API server refuses loopback addresses in an EndpointSlice, and every pod IP here is one.
The cluster's Service range is a block of its loopback /16 too (devcluster.controlplane), so a ClusterIP can be bound
without an interface of its own. One runner of the cluster runs this (the one that provisions). A Service without a
selector (kubernetes, in default) is bound and refuses connections: pods reach the API server at its own address.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from driftline.devcluster.kubeapi import ApiError, KubeApi

log = logging.getLogger("driftline.devcluster.services")

Route = tuple[str, int]
"""(ClusterIP, port)."""


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp") or not status.get("podIP"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def _target(pod: Mapping[str, Any], target: Any) -> int | None:
    """A Service port's targetPort on one pod: a number, or the name of one of its containers' ports."""
    if isinstance(target, int):
        return target
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def routes(services: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> dict[Route, list[Route]]:
    """Each Service TCP port at its ClusterIP -> the (IP, port) of the ready pods its selector selects."""
    by_namespace: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        if _ready(pod):
            by_namespace.setdefault((pod.get("metadata") or {}).get("namespace", ""), []).append(pod)
    out: dict[Route, list[Route]] = {}
    for svc in services:
        meta, spec = svc.get("metadata") or {}, svc.get("spec") or {}
        ip, selector = spec.get("clusterIP"), spec.get("selector") or {}
        if not ip or ip == "None":
            continue
        chosen = [
            p
            for p in by_namespace.get(meta.get("namespace", ""), [])
            if selector
            and all(((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in selector.items())
        ]
        for port in spec.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue
            ends = [
                (p["status"]["podIP"], n)
                for p in chosen
                if (n := _target(p, port.get("targetPort", port["port"]))) is not None
            ]
            out[(ip, int(port["port"]))] = sorted(ends)
    return out


class ServiceProxy:
    def __init__(self, api: KubeApi, stopping: threading.Event) -> None:
        self.api = api
        self.stopping = stopping
        self._objects: dict[str, dict[str, Any]] = {"services": {}, "pods": {}}
        self._routes: dict[Route, list[Route]] = {}
        self._turn: dict[Route, itertools.count[int]] = {}
        self._servers: dict[Route, asyncio.Server] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()

    def start(self) -> None:
        threading.Thread(target=self._loop.run_forever, daemon=True, name="service-proxy").start()
        paths = {"services": "/api/v1/services", "pods": "/api/v1/pods"}
        for kind, path in paths.items():
            threading.Thread(target=self._follow, args=(kind, path), daemon=True, name=f"watch-{kind}").start()

    def _follow(self, kind: str, path: str) -> None:
        while not self.stopping.is_set():
            try:
                listing = self.api.get(path)
                self._replace(kind, listing.get("items", []))
                rv = listing["metadata"]["resourceVersion"]
                while not self.stopping.is_set():
                    for ev in self.api.watch(path, rv):
                        obj = ev["object"]
                        rv = obj["metadata"].get("resourceVersion", rv)
                        if ev["type"] != "BOOKMARK":
                            self._apply(kind, ev["type"], obj)
            except ApiError as e:
                if e.status != 410:
                    log.warning("%s watch: %s", kind, e)
                    time.sleep(1)
            except Exception as e:
                log.warning("%s watch interrupted: %s", kind, e)
                time.sleep(1)

    def _replace(self, kind: str, items: list[dict[str, Any]]) -> None:
        with self._lock:
            self._objects[kind] = {o["metadata"]["uid"]: o for o in items}
        self._recompute()

    def _apply(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        with self._lock:
            if event == "DELETED":
                self._objects[kind].pop(obj["metadata"]["uid"], None)
            else:
                self._objects[kind][obj["metadata"]["uid"]] = obj
        self._recompute()

    def _recompute(self) -> None:
        with self._lock:
            new = routes(self._objects["services"].values(), self._objects["pods"].values())
            self._routes = new
        asyncio.run_coroutine_threadsafe(self._listen(set(new)), self._loop)

    async def _listen(self, wanted: set[Route]) -> None:
        for route in set(self._servers) - wanted:
            self._servers.pop(route).close()
        for route in wanted - set(self._servers):
            try:
                self._servers[route] = await asyncio.start_server(self._connection(route), *route)
            except OSError as e:  # not in this cluster's loopback block, or taken
                log.warning("service %s:%s cannot be bound: %s", *route, e)

    def _pick(self, route: Route) -> Route | None:
        with self._lock:
            ends = self._routes.get(route) or []
            if not ends:
                return None
            turn = self._turn.setdefault(route, itertools.count())
            return ends[next(turn) % len(ends)]

    def _connection(self, route: Route) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            target = self._pick(route)
            if target is None:  # no ready endpoint: refused, as a Service without endpoints rejects
                writer.close()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        return handle


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
