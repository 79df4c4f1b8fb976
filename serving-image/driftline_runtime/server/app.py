"""The aiohttp application: the protocols' routes (v1, v2), ground truth (feedback) and /metrics, behind the
connection guard."""

from __future__ import annotations

from aiohttp import web

from driftline_runtime.server import feedback, guard, v1, v2
from driftline_runtime.server.handling import STATE, ServerState, metrics_handler, render_errors


def create_app(state: ServerState) -> web.Application:
    middlewares = [guard.middleware(state.limits)] if state.limits else []
    app = web.Application(client_max_size=state.max_body_bytes, middlewares=[*middlewares, render_errors])
    app[STATE] = state
    mirror = state.mirror
    if mirror is not None:  # its senders live on the server's loop, from start to shutdown

        async def start_mirror(_: web.Application) -> None:
            await mirror.start()

        async def stop_mirror(_: web.Application) -> None:
            await mirror.stop()

        app.on_startup.append(start_mirror)
        app.on_cleanup.append(stop_mirror)
    app.router.add_get("/metrics", metrics_handler)
    v1.add_routes(app.router)
    v2.add_routes(app.router)
    feedback.add_routes(app.router)
    return app
