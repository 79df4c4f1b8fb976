"""kopf's session keeps kopf's credentials and gets a connection cap (kopf's own has none: a burst of patches opened
hundreds of TLS connections, 256 KiB of buffer each)."""

from __future__ import annotations

import asyncio

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
