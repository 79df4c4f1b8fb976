"""Monitor readings from Prometheus, asked in batches: the queries of one namespace's services due at the same server
within WINDOW_SECONDS of each other go as one request (metrics.query_batch), sent from a reading thread; each reading
waits on the event loop for its own number.

At 500 services reading every 10 s, one request per reading cost the operator ≈ 0.9 ms of CPU each in urllib3 alone
(docs/performance.md); a batch of a window's readings costs about one. Batches never mix namespaces, so a tenant's
slow or failing query delays no other tenant's readings. A batch that fails as a whole is asked again query by query,
and a query is batched only once an answer of it alone said whether it is a scalar or a vector.
"""

from __future__ import annotations

import asyncio
import logging

from driftline import config
from driftline.handlers import readings
from driftline.metrics import prometheus
from driftline.metrics.query_batch import Kind

log = logging.getLogger(__name__)

WINDOW_SECONDS = 0.5
"""How long the first query of a batch waits for others: the most a reading is delayed by batching."""
MOST = 100
"""Queries in one batch at most (the request body grows with each)."""

_Answer = float | prometheus.QueryError | None
"""A query's number, its own error, or None when its batch failed as a whole."""
_Key = tuple[str, str]
_Waiting = list[tuple[str, Kind, "asyncio.Future[_Answer]"]]


class Batches:
    def __init__(self) -> None:
        self._open: dict[_Key, _Waiting] = {}
        self._sending: set[asyncio.Task[None]] = set()  # held until done: the loop keeps tasks only weakly

    async def value(self, url: str, namespace: str, promql: str, kind: Kind | None) -> tuple[float, Kind]:
        """The one number `promql` returns and its kind; raises prometheus.QueryError. `kind` None: not known yet,
        asked alone."""
        allowed = config.current().allowed_prometheus_urls
        if kind is not None:
            answer = await self._in_batch((url, namespace), promql, kind)
            if isinstance(answer, prometheus.QueryError):
                raise answer
            if answer is not None:
                return answer, kind
        return await readings.run(prometheus.query_kind, url, promql, allowed=allowed)

    def _in_batch(self, key: _Key, promql: str, kind: Kind) -> asyncio.Future[_Answer]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[_Answer] = loop.create_future()
        waiting = self._open.get(key)
        if waiting is None:
            waiting = self._open[key] = []
            loop.call_later(WINDOW_SECONDS, self._send, key, waiting)
        waiting.append((promql, kind, answer))
        if len(waiting) >= MOST:
            self._send(key, waiting)
        return answer

    def _send(self, key: _Key, waiting: _Waiting) -> None:
        if self._open.get(key) is not waiting:
            return  # sent already, full before its window ended
        del self._open[key]
        task = asyncio.get_running_loop().create_task(self._ask(key[0], waiting))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _ask(self, url: str, waiting: _Waiting) -> None:
        answers: list[_Answer]
        if len(waiting) == 1:
            answers = [None]  # alone: the caller asks it as it is, not wrapped in a batch
        else:
            queries = [(promql, kind) for promql, kind, _ in waiting]
            allowed = config.current().allowed_prometheus_urls
            try:
                answers = list(await readings.run(prometheus.query_many, url, queries, allowed=allowed))
            except prometheus.QueryError as e:
                log.debug("a batch of %d queries to %s failed, asked one by one: %s", len(waiting), url, e)
                answers = [None] * len(waiting)
            except Exception:  # never leave a reading waiting for good
                log.exception("a batch of %d queries to %s failed", len(waiting), url)
                answers = [None] * len(waiting)
        for (_, _, future), answer in zip(waiting, answers, strict=True):
            if not future.done():  # its reading may have been cancelled meanwhile (the service went)
                future.set_result(answer)


BATCHES = Batches()
