"""kopf's session keeps kopf's credentials and gets a connection cap (kopf's own has none: a burst of patches opened
hundreds of TLS connections, 256 KiB of buffer each), and hands kopf objects without metadata.managedFields."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import kopf
import pytest
from aiohttp import web

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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def through_the_session(
    handler: Handler, query: str, read: Callable[[aiohttp.ClientResponse], Awaitable[Any]]
) -> Any:
    """`read` of the answer to GET /?`query` over the session kopf gets, from `handler` in a real HTTP server on
    loopback."""
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server = f"http://127.0.0.1:{runner.addresses[0][1]}"
    ctx = connections.capped_session(kopf.ConnectionInfo(server=server))
    try:
        async with ctx.aiohttp_session.get(f"{server}/?{query}") as response:
            return await read(response)
    finally:
        await ctx.aiohttp_session.close()
        await runner.cleanup()


def test_listings_reach_kopf_without_managed_fields() -> None:
    """Through the session, from a real HTTP server on loopback: kopf's first listing decodes the page with
    response.json(), and every item comes out without metadata.managedFields; everything else is kept."""
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

    got = asyncio.run(through_the_session(listing, "limit=500", lambda r: r.json()))
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

    async def lines(response: aiohttp.ClientResponse) -> list[Any]:
        return [json.loads(line) async for line in iter_jsonlines(response.content, chunk_size=50)]

    got = asyncio.run(through_the_session(watch, "watch=true&resourceVersion=7", lines))
    assert [e["object"]["metadata"]["name"] for e in got[:4]] == ["d0", "d1", "d2", "d3"]
    assert all("managedFields" not in e["object"]["metadata"] for e in got[:4])
    assert got[4] == events[4]
    # Anything but a watch is passed through as sent.
    assert asyncio.run(through_the_session(watch, "limit=5", lines)) == events


def test_a_line_that_is_not_json_is_left_for_kopf_to_report() -> None:
    assert connections.strip_event_line(b"<html>proxy error") == b"<html>proxy error"


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/apis/driftline.dev/v1alpha1/modelversions", "modelversions.driftline.dev"),
        ("/apis/driftline.dev/v1alpha1/namespaces/ml/inferenceservices", "inferenceservices.driftline.dev"),
        ("/apis/apps/v1/namespaces/ml/deployments", "deployments.apps"),
        ("/api/v1/pods", "pods"),
        ("/api/v1/namespaces/ml/pods", "pods"),
    ],
)
def test_a_listings_kind_is_read_from_its_path(path: str, kind: str) -> None:
    assert connections.listing_kind(path) == kind


def test_a_list_from_anything_but_a_resources_path_names_no_kind() -> None:
    assert connections.listing_kind("/") is None
    assert connections.listing_kind("/version") is None


def test_a_listing_page_waits_until_the_handlers_have_met_all_but_the_limit_of_the_pages_before() -> None:
    backlog = connections.Backlog()
    backlog.count("modelversions.driftline.dev")

    async def scenario() -> list[bool]:
        backlog.handed("modelversions.driftline.dev", 3)
        page = asyncio.create_task(backlog.caught_up("modelversions.driftline.dev", limit=2, max_wait=30))
        seen = []
        await asyncio.sleep(0.2)
        seen.append(page.done())  # three unmet: the next page waits
        backlog.met("modelversions.driftline.dev")
        await asyncio.sleep(0.2)
        seen.append(page.done())  # two unmet, the limit: still waiting
        backlog.met("modelversions.driftline.dev")
        await asyncio.wait_for(page, 5)
        seen.append(page.done())
        return seen

    assert asyncio.run(scenario()) == [False, False, True]


def test_a_kind_no_handler_counts_is_never_held_back() -> None:
    backlog = connections.Backlog()
    backlog.handed("namespaces", 10_000)
    assert backlog.waiting("namespaces") == 0
    asyncio.run(asyncio.wait_for(backlog.caught_up("namespaces", limit=1, max_wait=30), 1))


def test_a_listing_page_waits_no_longer_than_max_wait() -> None:
    backlog = connections.Backlog()
    backlog.count("pods")
    backlog.handed("pods", 5)

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(backlog.caught_up("pods", limit=1, max_wait=0.3), 5)
        return loop.time() - t0

    assert 0.25 <= asyncio.run(scenario()) < 2
