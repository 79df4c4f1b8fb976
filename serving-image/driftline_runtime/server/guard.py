"""Connection limits aiohttp's server does not have: a deadline for a request's head, and a cap on connections.

aiohttp waits for a request's status line and headers as long as the client keeps the connection open, so a client
sending a header line a minute (or half a request and nothing more) held a connection for as long as it liked, and
enough of them exhaust the process's descriptors. Each connection's protocol is wrapped: a request's head must be
whole within `head_seconds` of its first byte (its body has its own deadline where the handler reads it), and past
`max_connections` a new connection is answered 503 and closed. An idle keep-alive connection is aiohttp's to close
(keepalive_timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

_REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"


def _answer(template: bytes, message: str) -> bytes:
    body = message.encode()
    return template % (len(body), body)


class Limits:
    """The connections of one server: how many are open, and which one each transport is."""

    def __init__(self, head_seconds: float, max_connections: int) -> None:
        self.head_seconds = head_seconds
        self.max_connections = max_connections
        self.open: dict[asyncio.BaseTransport, Guarded] = {}
        self.refused = 0
        self.timed_out = 0

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: Guarded(make(), self)

    def dispatched(self, request: web.Request) -> None:
        """The request's head is whole (aiohttp hands it over only then): its deadline is met."""
        guard = self.open.get(request.transport) if request.transport is not None else None
        if guard is not None:
            guard.head_done()
            guard.busy = True

    def finished(self, request: web.Request) -> None:
        """The handler is done: bytes that come next begin the connection's next request."""
        guard = self.open.get(request.transport) if request.transport is not None else None
        if guard is not None:
            guard.busy = False


class Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the head deadline and the cap around it."""

    def __init__(self, inner: asyncio.Protocol, limits: Limits) -> None:
        self.inner = inner
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.refused = False
        # Inside a request (head dispatched, handler running): the rest of its body is not the next request's head.
        # Without this, a body that arrived after its head armed a deadline that closed the idle connection.
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if len(self.limits.open) >= self.limits.max_connections:
            self.refused = True
            self.limits.refused += 1
            transport.write(_answer(_REFUSED, "too many connections: try again shortly\n"))
            transport.close()
            return
        self.limits.open[transport] = self
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.deadline is None and not self.busy:  # the first byte of a request: its head must follow in time
            loop = asyncio.get_running_loop()
            self.deadline = loop.call_later(self.limits.head_seconds, self._too_slow)
        self.inner.data_received(data)

    def head_done(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _too_slow(self) -> None:
        self.deadline = None
        if self.transport is None or self.transport.is_closing():
            return
        self.limits.timed_out += 1
        message = f"the request's headers did not arrive within {self.limits.head_seconds:g}s\n"
        self.transport.write(_answer(_TIMED_OUT, message))
        self.transport.close()

    def eof_received(self) -> bool | None:
        return None if self.refused else self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.head_done()
        if self.transport is not None:
            self.limits.open.pop(self.transport, None)
        if not self.refused:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self.refused:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if not self.refused:
            self.inner.resume_writing()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(limits: Limits) -> Any:
    @web.middleware
    async def head_arrived(request: web.Request, handler: Handler) -> web.StreamResponse:
        limits.dispatched(request)
        try:
            return await handler(request)
        finally:
            limits.finished(request)

    return head_arrived
