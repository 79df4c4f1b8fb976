"""kopf's own HTTP session (watches, its annotation patches, Events), with a cap on open connections.

kopf's default session has none: starting into thousands of objects, it patched them all at once over hundreds of
TLS connections, and every TLS connection holds a 256 KiB read buffer (asyncio's sslproto) that the allocator then
keeps: measured, 100 MB of a 1,100-object operator's peak. Requests beyond the cap wait for a connection instead.

Its listings and watch events also drop every object's metadata.managedFields, as Kubernetes' own controllers do
with their informer caches (controller-runtime's TransformStripManagedFields): nothing here reads them, and they are
more than half of a small object's decoded size. kopf holds every event in a per-object queue until a worker takes
it: starting into 11,000 objects, the watch events alone were 78 MB of decoded JSON at the peak (memray).

And its first listing waits for kopf, page by page (`Backlog`): kopf has no back-pressure between its watch and its
per-object workers, so 10,000 listed versions were 10,000 objects decoded and queued within seconds; now a page
(500, settings.watching.chunk_size) is handed over only once the operator's own handlers (handlers/watches.py, the
first each object of the kind meets) have met all but WORKER_LIMIT of the objects handed over before. Counted in the
operator's terms, not by kopf's worker tasks: only kinds whose every listed object reaches an unfiltered handler are
counted (InferenceServices and ModelVersions, the numerous ones); other listings pass as they come."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kopf

MAX_CONNECTIONS = 32
"""Enough for one long-lived watch per watched resource (six) and two dozen requests in flight."""


WORKER_LIMIT = 100
"""kopf's per-object workers of one kind at once (settings.queueing.worker_limit); as many listed objects may wait."""
MAX_WAIT = 60.0
"""Seconds a page of the first listing waits at most for kopf to catch up: back-pressure, never a stall."""


def listing_kind(path: str) -> str | None:
    """The kind a listing's path names, as "<plural>.<group>" (/apis/<group>/<version>[/namespaces/<ns>]/<plural>,
    /api/v1/...), or None for any other path."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        return parts[-1]
    if parts[0] == "apis" and len(parts) >= 4:
        return f"{parts[-1]}.{parts[1]}"
    return None


class Backlog:
    """Objects of a kind that kopf's listings handed over and the operator's handlers have not met yet."""

    def __init__(self) -> None:
        self._counted: set[str] = set()
        self._handed: dict[str, int] = {}
        self._met: dict[str, int] = {}
        self._progress = asyncio.Event()

    def count(self, kind: str) -> None:
        """Hold back `kind`'s listing pages: a handler that meets every one of its listed objects calls `met`."""
        self._counted.add(kind)

    def handed(self, kind: str, n: int) -> None:
        if kind in self._counted:
            self._handed[kind] = self._handed.get(kind, 0) + n

    def met(self, kind: str) -> None:
        """One more listed object of `kind` met (called in kopf's event loop)."""
        self._met[kind] = self._met.get(kind, 0) + 1
        self._progress.set()

    def waiting(self, kind: str) -> int:
        return self._handed.get(kind, 0) - self._met.get(kind, 0)

    async def caught_up(self, kind: str, limit: int = WORKER_LIMIT, max_wait: float = MAX_WAIT) -> None:
        """Until fewer than `limit` objects of `kind` handed over are unmet (at most `max_wait` seconds: back-pressure,
        never a stall)."""
        if kind not in self._counted:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        while self.waiting(kind) >= limit and loop.time() < deadline:
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), deadline - loop.time())


BACKLOG = Backlog()


def strip_managed_fields(data: Any) -> Any:
    """`data`, a list's JSON (or one object's), without its objects' metadata.managedFields."""
    if isinstance(data, dict):
        for obj in data.get("items") or [data]:
            meta = obj.get("metadata") if isinstance(obj, dict) else None
            if isinstance(meta, dict):
                meta.pop("managedFields", None)
    return data


def strip_event_line(line: bytes) -> bytes:
    """One line of a watch stream (a JSON event), re-encoded without its object's managedFields; a line that is not
    JSON is left for kopf to report."""
    try:
        event = json.loads(line)
    except ValueError:
        return line
    if isinstance(event, dict):
        strip_managed_fields(event.get("object"))
    return json.dumps(event, separators=(",", ":")).encode()


class _StrippedWatch:
    """A watch response's body, as kopf reads it (iter_chunked), line by line without managedFields. Anything else
    kopf might call goes to the body itself, unstripped."""

    def __init__(self, content: aiohttp.StreamReader) -> None:
        self._content = content

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        buffer = b""
        async for data in self._content.iter_chunked(n):
            *lines, buffer = (buffer + data).split(b"\n")
            if lines:
                yield b"".join(strip_event_line(line) + b"\n" for line in lines if line.strip())
        if buffer.strip():
            yield strip_event_line(buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._content, name)


class _Response(aiohttp.ClientResponse):
    async def start(self, connection: Any) -> aiohttp.ClientResponse:
        response = await super().start(connection)
        if self.url.query.get("watch") in ("true", "1"):
            self.content = _StrippedWatch(self.content)  # type: ignore[assignment]
        return response

    async def json(self, *args: Any, **kwargs: Any) -> Any:
        data = strip_managed_fields(await super().json(*args, **kwargs))
        kind = listing_kind(self.url.path)
        if kind and isinstance(data, dict) and isinstance(data.get("items"), list):  # a page of kopf's listing
            await BACKLOG.caught_up(kind)  # handed over once the handlers have met the pages before it
            BACKLOG.handed(kind, len(data["items"]))
        return data


def capped_session(info: kopf.ConnectionInfo, limit: int = MAX_CONNECTIONS) -> kopf.AiohttpSession:
    """The session kopf would build from `info` (its CA, client certificate, token, proxy), with `limit`."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
        response_class=_Response,
    )
    return kopf.AiohttpSession(
        aiohttp_session=session,
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
    )
