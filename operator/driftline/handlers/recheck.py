"""Look at an object again later, when no watch event will come to say that something changed (a pod waiting for a
Secret, an image or a volume changes nothing the operator watches).

A hint, like handlers.hints: at most one pending look per key, kept in memory. A restart loses none of the truth, since
every object is reconciled once again at start-up (kopf's resume handlers), which schedules the looks it still needs.
Unlike a kopf timer, it puts no finalizer on the object and writes nothing to arm or disarm.

One thread keeps the schedule and hands due looks to a few threads of their own: a thousand rollouts under way at
once are a thousand entries in a heap, not a thousand sleeping threads.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

LOOK_THREADS = 4
"""Looks running at once (each a reconcile)."""


class Schedule:
    def __init__(self, threads: int = LOOK_THREADS) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Hashable]] = []
        self._pending: dict[Hashable, tuple[float, Callable[[], None], contextvars.Context]] = {}
        self._seq = itertools.count()
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._keeper: threading.Thread | None = None

    def after(self, key: Hashable, seconds: float, look: Callable[[], None]) -> None:
        """Call `look` in `seconds`, unless a look for `key` is pending already. It runs in the caller's context:
        kopf posts Events through context variables that a bare thread does not have."""
        with self._cond:
            if key in self._pending:
                return
            due = time.monotonic() + seconds
            self._pending[key] = (seconds, look, contextvars.copy_context())
            heapq.heappush(self._heap, (due, next(self._seq), key))
            if self._keeper is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="recheck")
                self._keeper = threading.Thread(target=self._keep, name="recheck-schedule", daemon=True)
                self._keeper.start()
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def _keep(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, key = heapq.heappop(self._heap)
                seconds, look, ctx = self._pending.pop(key)
            assert self._pool is not None
            self._pool.submit(ctx.run, self._run, key, seconds, look)

    def _run(self, key: Hashable, seconds: float, look: Callable[[], None]) -> None:
        try:
            look()
        except Exception:  # the API server away for a moment: look again later; the operator stays up
            log.exception("looking again at %s failed; trying again in %.0fs", key, seconds)
            self.after(key, seconds, look)


_schedule = Schedule()


def after(key: Hashable, seconds: float, look: Callable[[], None]) -> None:
    """Call `look` in `seconds`, unless a look for `key` is pending already (see Schedule.after)."""
    _schedule.after(key, seconds, look)
