"""kopf's own HTTP session (watches, its annotation patches, Events), with a cap on open connections.

kopf's default session has none: starting into thousands of objects, it patched them all at once over hundreds of
TLS connections, and every TLS connection holds a 256 KiB read buffer (asyncio's sslproto) that the allocator then
keeps: measured, 100 MB of a 1,100-object operator's peak. Requests beyond the cap wait for a connection instead."""

from __future__ import annotations

import aiohttp
import kopf

MAX_CONNECTIONS = 32
"""Enough for one long-lived watch per watched resource (six) and two dozen requests in flight."""


def capped_session(info: kopf.ConnectionInfo, limit: int = MAX_CONNECTIONS) -> kopf.AiohttpSession:
    """The session kopf would build from `info` (its CA, client certificate, token, proxy), with `limit`."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )
    return kopf.AiohttpSession(
        aiohttp_session=session,
        server=info.server,
        default_namespace=info.default_namespace,
        priority=info.priority,
        expiration=info.expiration,
    )
