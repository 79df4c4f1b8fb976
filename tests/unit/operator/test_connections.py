"""kopf's session keeps kopf's credentials and gets a connection cap (kopf's own has none: a burst of patches opened
hundreds of TLS connections, 256 KiB of buffer each)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kopf
import pytest

from driftline.k8s import connections

pytestmark = pytest.mark.unit


def test_the_session_carries_the_credentials_and_the_cap() -> None:
    info = kopf.ConnectionInfo(server="https://10.0.0.1:6443", token="t0k", insecure=True, default_namespace="ml")

    async def build() -> tuple[int, str | None, str, str | None]:
        ctx = connections.capped_session(info, limit=7)
        try:
            session = ctx.aiohttp_session
            return session.connector.limit, session.headers.get("Authorization"), ctx.server, ctx.default_namespace  # type: ignore[union-attr]
        finally:
            await ctx.aiohttp_session.close()

    assert asyncio.run(build()) == (7, "Bearer t0k", "https://10.0.0.1:6443", "ml")


def test_listings_reach_kopf_without_managed_fields() -> None:
    """Through the session, from a real HTTP server on loopback: kopf's first listing decodes the page with
    response.json(), and every item comes out without metadata.managedFields; everything else is kept."""
    from aiohttp import web

    managed = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {"f:model": {}}}}]
    page = {
        "kind": "ModelVersionList",
        "metadata": {"resourceVersion": "42", "continue": "abc"},
        "items": [
            {"metadata": {"name": f"m-v{i}", "managedFields": managed, "labels": {"a": "b"}}, "spec": {"v": i}}
            for i in range(3)
        ],
    }

    async def listing(_: web.Request) -> web.Response:
        return web.json_response(page)

    async def fetch() -> Any:
        app = web.Application()
        app.router.add_get("/list", listing)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        ctx = connections.capped_session(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"))
        try:
            async with ctx.aiohttp_session.get(f"http://127.0.0.1:{port}/list") as response:
                return await response.json()
        finally:
            await ctx.aiohttp_session.close()
            await runner.cleanup()

    got = asyncio.run(fetch())
    assert got["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert got["items"] == [{"metadata": {"name": f"m-v{i}", "labels": {"a": "b"}}, "spec": {"v": i}} for i in range(3)]


def test_a_single_object_loses_only_its_managed_fields() -> None:
    obj = {"metadata": {"name": "x", "managedFields": [{}]}, "status": {"managedFields": "kept: not metadata"}}
    assert connections.strip_managed_fields(obj) == {
        "metadata": {"name": "x"},
        "status": {"managedFields": "kept: not metadata"},
    }
    assert connections.strip_managed_fields([1, 2]) == [1, 2]


def test_watch_events_reach_kopf_without_managed_fields() -> None:
    """A watch stream from a real HTTP server, sent in pieces that split lines, read as kopf reads one (its own
    iter_jsonlines over content.iter_chunked): every event's object arrives without managedFields, in order."""
    from aiohttp import web
    from kopf._cogs.clients.api import iter_jsonlines

    events = [
        {"type": "ADDED", "object": {"metadata": {"name": f"d{i}", "managedFields": [{"manager": "m"}]}, "spec": {}}}
        for i in range(4)
    ] + [{"type": "ERROR", "object": {"kind": "Status", "code": 410}}]
    wire = b"".join(json.dumps(e).encode() + b"\n" for e in events)

    async def watch(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(0, len(wire), 37):  # pieces that end mid-line
            await response.write(wire[i : i + 37])
        await response.write_eof()
        return response

    async def read(query: str) -> list[Any]:
        app = web.Application()
        app.router.add_get("/watch", watch)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        ctx = connections.capped_session(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"))
        try:
            async with ctx.aiohttp_session.get(f"http://127.0.0.1:{port}/watch?{query}") as response:
                return [json.loads(line) async for line in iter_jsonlines(response.content, chunk_size=50)]
        finally:
            await ctx.aiohttp_session.close()
            await runner.cleanup()

    got = asyncio.run(read("watch=true&resourceVersion=7"))
    assert [e["object"]["metadata"]["name"] for e in got[:4]] == ["d0", "d1", "d2", "d3"]
    assert all("managedFields" not in e["object"]["metadata"] for e in got[:4])
    assert got[4] == events[4]
    # Anything but a watch is passed through as sent.
    assert asyncio.run(read("limit=5")) == events


def test_a_line_that_is_not_json_is_left_for_kopf_to_report() -> None:
    assert connections.strip_event_line(b"<html>proxy error") == b"<html>proxy error"
