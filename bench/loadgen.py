"""A closed-loop HTTP load generator, run as a process of its own so the client never shares an event loop or a GIL
with the server it measures: `python bench/loadgen.py URL BODY_FILE CONCURRENCY SECONDS [WARMUP [SERVER_PID]]`.

CONCURRENCY connections each send the next request as soon as the last is answered, for SECONDS after WARMUP
seconds. Prints one JSON object: requests, errors (non-2xx or transport), rps, latency p50/p99/max in seconds, and
with SERVER_PID the CPU seconds that process spent in those SECONDS (user + system, from /proc)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    start: float,
    stop: float,
    out: list[float],
    errors: list[int],
) -> None:
    headers = {"Content-Type": "application/json"}
    while (now := time.perf_counter()) < stop:
        try:
            async with session.post(url, data=body, headers=headers) as r:
                await r.read()
                ok = 200 <= r.status < 300
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        if now >= start:
            if ok:
                out.append(time.perf_counter() - now)
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
    url: str, body: bytes, concurrency: int, seconds: float, warmup: float, server_pid: int | None = None
) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        start = time.perf_counter() + warmup
        stop = start + seconds
        cpu = asyncio.create_task(_cpu_between(server_pid, start, stop)) if server_pid else None
        await asyncio.gather(*(_worker(session, url, body, start, stop, latencies, errors) for _ in range(concurrency)))
        server_cpu = await cpu if cpu else None
    lat = np.array(latencies) if latencies else np.array([np.nan])
    extra = {} if server_cpu is None else {"server_cpu_seconds": server_cpu}
    return {
        **extra,
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / seconds,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "max": float(np.max(lat)),
    }


def main(argv: list[str]) -> int:
    url, body_file, concurrency, seconds = argv[0], Path(argv[1]), int(argv[2]), float(argv[3])
    warmup = float(argv[4]) if len(argv) > 4 else 1.0
    pid = int(argv[5]) if len(argv) > 5 else None
    print(json.dumps(asyncio.run(run(url, body_file.read_bytes(), concurrency, seconds, warmup, pid))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
