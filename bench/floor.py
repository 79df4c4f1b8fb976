"""The HTTP floor of bench serving: `python -m bench.floor --port N`, a bare endpoint on the same stack as Driftline's
model server and nothing else, so a server's rps can be read against what its HTTP layer alone allows.

The same aiohttp (the project venv's), one process, asyncio's own event loop (no uvloop, as the server), the server's
AppRunner settings (no access log, the same keep-alive and shutdown timeouts, the same body limit) and its listener
(loop.create_server with aiohttp's protocol factory, default backlog; without the server's connection guard, which
is Driftline's own work). `POST /v2/models/{name}/infer` reads the whole body and answers a constant, valid V2
response for one row (no JSON parsed, no model); `GET /v2/health/ready` answers 200 so bench serving can wait on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from aiohttp import web

# What Driftline's server answers for one row of the breast_cancer LogisticRegression, byte for byte in shape.
RESPONSE = json.dumps(
    {
        "model_name": "breast-cancer",
        "model_version": "1",
        "id": "00000000-0000-0000-0000-000000000000",
        "parameters": {},
        "outputs": [
            {
                "name": "predict",
                "shape": [1, 1],
                "datatype": "INT64",
                "parameters": {"content_type": "np"},
                "data": [0],
            }
        ],
    }
).encode()
MAX_BODY_BYTES = 10 * 1024 * 1024  # the server's --max-body-bytes default
IDLE_SECONDS = 75.0  # the server's --idle-timeout default


async def infer(request: web.Request) -> web.Response:
    await request.read()  # the body is received whole, as the server must before it can decode it
    return web.Response(body=RESPONSE, content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"ready": True})


async def serve(host: str, port: int) -> int:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_get("/v2/health/ready", ready)
    app.router.add_post("/v2/models/{name}/infer", infer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=30.0, keepalive_timeout=IDLE_SECONDS)
    await runner.setup()
    assert runner.server is not None
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(runner.server, host, port, reuse_address=True)
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    listener.close()
    await runner.cleanup()
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    return asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
