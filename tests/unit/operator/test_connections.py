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
        ("/apis/driftline.dev/v1alpha1/modelversions", "modelversions.v1alpha1.driftline.dev"),
        ("/apis/apps/v1/namespaces/ml/deployments", "deployments.v1.apps"),
        ("/api/v1/pods", "pods.v1"),
        ("/api/v1/namespaces/ml/pods", "pods.v1"),
    ],
)
def test_a_listings_workers_are_found_by_kopfs_name_of_its_kind(path: str, kind: str) -> None:
    assert connections.worker_prefix(path) == f"worker for ({kind}, "


def test_a_list_from_anything_but_a_resources_path_waits_for_nothing() -> None:
    assert connections.worker_prefix("/") is None
    assert connections.worker_prefix("/version") is None


def test_a_listing_page_waits_until_kopf_has_started_every_object_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's own watcher, given three listed versions with room for two workers, queues the third; the next page
    waits until a worker ends and the third has one. This is also what breaks if kopf renames its workers."""
    from kopf._core.reactor import queueing

    listed = [{"type": None, "object": {"metadata": {"uid": f"u{i}", "name": f"v{i}"}}} for i in range(3)]

    async def listing(**_: Any) -> Any:
        for event in listed:
            yield event
        await asyncio.Event().wait()  # the watch that follows, quiet

    monkeypatch.setattr(queueing.watching, "infinite_watch", listing)
    settings = kopf.OperatorSettings()
    settings.queueing.worker_limit, settings.queueing.idle_timeout = 2, 0.01
    handled: list[str] = []
    done = {f"u{i}": asyncio.Event() for i in range(3)}

    async def processor(*, raw_event: dict[str, Any], **_: Any) -> None:
        uid = raw_event["object"]["metadata"]["uid"]
        handled.append(uid)
        await done[uid].wait()

    async def scenario() -> list[tuple[list[str], bool]]:
        resource = kopf.Resource("driftline.dev", "v1alpha1", "modelversions")
        watcher = asyncio.create_task(
            queueing.watcher(namespace=None, settings=settings, resource=resource, processor=processor)
        )
        await asyncio.sleep(0.2)  # kopf took the first page
        prefix = connections.worker_prefix("/apis/driftline.dev/v1alpha1/modelversions")
        page = asyncio.create_task(connections.caught_up(prefix, limit=2, max_wait=30))  # the next one
        await asyncio.sleep(0.2)
        seen = []
        seen.append((sorted(handled), page.done()))  # two workers busy, the third queued: the page waits
        done["u0"].set()
        await asyncio.sleep(0.2)
        seen.append((sorted(handled), page.done()))  # the third started, two busy still: the page waits
        done["u1"].set()
        await asyncio.wait_for(page, 5)
        seen.append((sorted(handled), page.done()))
        done["u2"].set()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        return seen

    assert asyncio.run(scenario()) == [
        (["u0", "u1"], False),
        (["u0", "u1", "u2"], False),
        (["u0", "u1", "u2"], True),
    ]


def test_a_listing_page_waits_no_longer_than_max_wait() -> None:
    async def stuck() -> None:
        await asyncio.Event().wait()

    async def scenario() -> bool:
        worker = asyncio.create_task(stuck(), name="worker for (pods.v1, 'u0')")
        await asyncio.wait_for(connections.caught_up("worker for (pods.v1, ", limit=1, max_wait=0.3), 5)
        still = not worker.done()
        worker.cancel()
        return still

    assert asyncio.run(scenario())
