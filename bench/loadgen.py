"""A closed-loop HTTP load generator, run as a process of its own so the client never shares an event loop or a GIL
with the server it measures: `python bench/loadgen.py URL BODY_FILE CONCURRENCY SECONDS [WARMUP]`.

CONCURRENCY connections each send the next request as soon as the last is answered, for SECONDS after WARMUP
seconds. Prints one JSON object: requests, errors (non-2xx or transport), rps, and latency p50/p99/max in seconds."""

from __future__ import annotations

import asyncio
import json
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


async def run(url: str, body: bytes, concurrency: int, seconds: float, warmup: float) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        start = time.perf_counter() + warmup
        stop = start + seconds
        await asyncio.gather(*(_worker(session, url, body, start, stop, latencies, errors) for _ in range(concurrency)))
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
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
    print(json.dumps(asyncio.run(run(url, body_file.read_bytes(), concurrency, seconds, warmup))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
