"""The threads where the operator reads what tenants name (a Prometheus server, serving pods' /metrics): drift
readings and canary analysis rounds. A tenant's slow server (up to 5 s a read) holds one of these, never one of
kopf's handler threads or asyncio's default executor, where every other reconcile runs."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from driftline.k8s import client

P = ParamSpec("P")
T = TypeVar("T")

POOL = ThreadPoolExecutor(max_workers=client.READING_THREADS, thread_name_prefix="reading")


async def run(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` on a reading thread. The context goes along, as asyncio.to_thread would take it: kopf
    posts Events through it."""
    ctx = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(POOL, lambda: ctx.run(fn, *args, **kwargs))
