"""Shadow traffic: a share of inference requests mirrored to a challenger's server, and their labels after them.

Nothing here runs on the request path but `offer`, which samples and queues: a bounded queue, put without waiting, so
a slow or dead shadow adds no latency and no error to a primary request; what does not fit is dropped and counted.
A few sender tasks on the server's loop send what is queued. A mirrored request keeps its request id, so labels sent
to the primary for it are forwarded too and the shadow scores itself on the same ground truth; the shadow's answers
are compared with the primary's, row by row (classification), which is the agreement.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
from numpy.typing import NDArray

from driftline_runtime.server.metrics import MirrorMetrics

log = logging.getLogger("driftline.server")

SENDERS = 4
TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class _Infer:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    primary: NDArray[Any] | None
    """The primary's predicted labels, to compare with the shadow's (classification only)."""


@dataclass(frozen=True)
class _Label:
    path: str
    body: dict[str, Any]


class Mirror:
    def __init__(
        self,
        url: str,
        model: str,
        share: float,
        queue_size: int,
        counters: MirrorMetrics,
        draw: Callable[[], float] = random.random,
        classification: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.share = share
        self.classification = classification
        self.queue: asyncio.Queue[_Infer | _Label] = asyncio.Queue(maxsize=queue_size)
        self.metrics = counters
        self._draw = draw
        self._mirrored: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remember = max(queue_size, 10_000)
        self._tasks: list[asyncio.Task[None]] = []

    # --- the request path ------------------------------------------------------------------------------------------

    def offer_v2(self, body: dict[str, Any], rid: str, primary: NDArray[Any]) -> None:
        """A V2 request just answered: mirrored with its id, asking for the labels only."""
        if self._draw() >= self.share:
            return
        mirrored = {k: v for k, v in body.items() if k not in ("id", "outputs")}
        mirrored["id"] = rid
        self._put(_Infer(f"/v2/models/{self.model}/infer", mirrored, {}, primary), rid)

    def offer_v1(self, body: dict[str, Any], rid: str, primary: NDArray[Any]) -> None:
        if self._draw() >= self.share:
            return
        self._put(_Infer(f"/v1/models/{self.model}:predict", body, {"X-Request-Id": rid}, primary), rid)

    def offer_label(self, item: dict[str, Any]) -> None:
        """A label the primary accepted: forwarded when its request was mirrored."""
        rid = item.get("id")
        if isinstance(rid, str) and rid in self._mirrored:
            self._put(_Label(f"/v2/models/{self.model}/feedback", item), None)

    def _put(self, job: _Infer | _Label, rid: str | None) -> None:
        kind = "infer" if isinstance(job, _Infer) else "feedback"
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            self.metrics.request(kind, "dropped")
            return
        if rid is not None:
            self._mirrored[rid] = None
            if len(self._mirrored) > self._remember:
                self._mirrored.popitem(last=False)

    # --- the senders -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        self._session = aiohttp.ClientSession(timeout=timeout, trust_env=False)
        self._tasks = [asyncio.create_task(self._send_forever()) for _ in range(SENDERS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._session.close()

    async def _send_forever(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                await self._send(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # a shadow's failure is counted, never the primary's problem
                log.debug("mirror: sending to %s failed", self.url, exc_info=True)

    async def _send(self, job: _Infer | _Label) -> None:
        kind = "infer" if isinstance(job, _Infer) else "feedback"
        started = time.perf_counter()
        headers = job.headers if isinstance(job, _Infer) else {}
        try:
            async with self._session.post(self.url + job.path, json=job.body, headers=headers) as r:
                payload = await r.json(content_type=None) if r.status == 200 and isinstance(job, _Infer) else None
                ok = r.status == 200
        except (aiohttp.ClientError, TimeoutError, ValueError):
            ok, payload = False, None
        self.metrics.request(kind, "ok" if ok else "error")
        if isinstance(job, _Infer) and ok:
            self.metrics.duration.observe(time.perf_counter() - started)
            self._compare(job, payload)

    def _compare(self, job: _Infer, payload: Any) -> None:
        if not self.classification or job.primary is None or not isinstance(payload, dict):
            return
        shadow = _labels(payload)
        if shadow is None or len(shadow) != len(job.primary):
            return
        agree = int(np.count_nonzero(np.asarray(shadow, dtype=object) == np.asarray(job.primary, dtype=object)))
        self.metrics.compared(agree, len(shadow) - agree)


def _labels(payload: dict[str, Any]) -> list[Any] | None:
    """The predicted labels in a V2 or V1 response."""
    if "predictions" in payload:
        out = payload["predictions"]
        return out if isinstance(out, list) else None
    for output in payload.get("outputs") or []:
        if isinstance(output, dict) and output.get("name") == "predict" and isinstance(output.get("data"), list):
            return list(output["data"])
    return None
