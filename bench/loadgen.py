"""A closed-loop HTTP load generator, run as a process of its own so the client never shares an event loop or a GIL
with the server it measures: `python bench/loadgen.py URL BODY_FILE CONCURRENCY SECONDS [WARMUP [SERVER_PID]]`.

CONCURRENCY connections each send the next request as soon as the last is answered, for SECONDS after WARMUP
seconds. Prints one JSON object: requests, errors (non-2xx or transport), rps, latency p50/p99/max in seconds, the
measured span in seconds, and with SERVER_PID the CPU seconds that process spent in those SECONDS (user + system, from
/proc).

BODY_FILE is one body sent again and again; a BODY_FILE named *.jsonl holds one body a line, each sent once, in order
(requests that must differ: labels, each for its own request id). The run then ends when they are all sent, if that
is before SECONDS: "exhausted" is true, and the measured span (rps's divisor) ends with the last answer instead."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    bodies: Iterator[bytes],
    start: float,
    stop: float,
    out: list[float],
    errors: list[int],
    last: list[float],
) -> None:
    headers = {"Content-Type": "application/json"}
    for body in bodies:  # shared by the workers: each body is taken by one of them
        if (now := time.perf_counter()) >= stop:
            return
        try:
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                ok = 200 <= r.status < 300
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        if now >= start:
            end = time.perf_counter()
            last[0] = max(last[0], end)
            if ok:
                out.append(end - now)
            else:
                errors.append(1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (stat fields 14, 15)


async def _cpu_between(pid: int, start: float, stop: float) -> float:
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    before = cpu_seconds(pid)
    await asyncio.sleep(max(0.0, stop - time.perf_counter()))
    return cpu_seconds(pid) - before


async def run(
    url: str, bodies: Iterator[bytes], concurrency: int, seconds: float, warmup: float, server_pid: int | None = None
) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        start = time.perf_counter() + warmup
        stop = start + seconds
        last = [start]
        cpu = asyncio.create_task(_cpu_between(server_pid, start, stop)) if server_pid else None
        workers = (_worker(session, url, bodies, start, stop, latencies, errors, last) for _ in range(concurrency))
        await asyncio.gather(*workers)
        exhausted = time.perf_counter() < stop  # the bodies ran out: the workers stopped before the time was up
        if exhausted and cpu:
            cpu.cancel()  # its window is not the measured span
            cpu = None
        server_cpu = await cpu if cpu else None
    span = last[0] - start if exhausted else seconds
    lat = np.array(latencies) if latencies else np.array([np.nan])
    extra = {} if server_cpu is None else {"server_cpu_seconds": server_cpu}
    return {
        **extra,
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / span if span > 0 else 0.0,
        "seconds": span,
        "exhausted": exhausted,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "max": float(np.max(lat)),
    }


def main(argv: list[str]) -> int:
    url, body_file, concurrency, seconds = argv[0], Path(argv[1]), int(argv[2]), float(argv[3])
    warmup = float(argv[4]) if len(argv) > 4 else 1.0
    pid = int(argv[5]) if len(argv) > 5 else None
    data = body_file.read_bytes()
    bodies = iter(data.splitlines()) if body_file.suffix == ".jsonl" else itertools.repeat(data)
    print(json.dumps(asyncio.run(run(url, bodies, concurrency, seconds, warmup, pid))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
