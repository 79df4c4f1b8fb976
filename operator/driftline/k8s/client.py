"""The handlers' connection to the API server: `request`, a REST call by path that returns the API server's JSON, with
the credentials of kopf's login (`use`, from the login handler: the same ConnectionInfo kopf's own session gets).

Over urllib3, not the kubernetes client: kopf imports that client whenever it is installed, and its generated API
and model classes cost the operator 6.5 MB before it does anything (67.4 -> 60.9 MB, measured); its typed models
would also rewrite what the API server sent."""

from __future__ import annotations

import contextvars
import json
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any, cast

import kopf
import urllib3

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
USER_AGENT = "driftline-operator/0.1.0"
HANDLER_THREADS = 8
"""kopf's handler threads (handlers/startup.py sets its max_workers to this)."""
READING_THREADS = 4
"""Threads for monitor readings (handlers/monitors.py): a tenant's slow Prometheus or pods wait for each other there,
never in the executors where reconciles run."""
POOL_SIZE = HANDLER_THREADS + READING_THREADS + min(32, (os.cpu_count() or 1) + 4)
"""Kept-alive connections: one per thread that calls the API, kopf's handler threads, the drift readings' and
asyncio's default executor (its own size formula), where the watch-event handlers reconcile."""
TIMEOUT = urllib3.Timeout(connect=10, read=60)


class ApiError(Exception):
    """The API server answered with other than 2xx (`status`), or could not be reached (`status` 0).

    `status_reason` is the answer's metav1.Status reason (AlreadyExists, Conflict, NotFound, Invalid, TooManyRequests,
    ...; empty when the body is no Status), the machine-readable cause to branch on; `retry_after` the seconds the
    server asked to wait (the Retry-After header, else the Status's details.retryAfterSeconds), or None."""

    def __init__(
        self, status: int, reason: str, body: str = "", status_reason: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(f"({status}) {reason}" + (f": {body[:500]}" if body else ""))
        self.status, self.reason, self.body = status, reason, body
        self.status_reason, self.retry_after = status_reason, retry_after


def status_details(body: str, retry_after_header: str | None) -> tuple[str, float | None]:
    """(reason, retry after in seconds) of an error answer: its metav1.Status reason, and how long it asked to wait.
    Retry-After in the HTTP-date form is not used by the API server and counts as absent."""
    reason, retry_after = "", None
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        reason = str(doc.get("reason") or "")
        seconds = (doc.get("details") or {}).get("retryAfterSeconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            retry_after = float(seconds)
    if retry_after_header and retry_after_header.strip().isdigit():
        retry_after = float(retry_after_header.strip())
    return reason, retry_after


ACTING_FOR: contextvars.ContextVar[str | None] = contextvars.ContextVar("driftline_acting_for", default=None)
"""The kind whose reconcile makes the current requests (telemetry.reconciler sets it): named in the User-Agent, so
the API server's audit log tells which of the operator's loops asked, as kube-controller-manager names each
controller in its own."""


def _user_agent() -> str:
    kind = ACTING_FOR.get()
    return USER_AGENT if kind is None else f"{USER_AGENT} ({kind})"


class _Connection:
    def __init__(self, info: kopf.ConnectionInfo) -> None:
        self.server = info.server.rstrip("/")
        self.headers = {**info.as_http_headers(), "User-Agent": USER_AGENT, "Accept": JSON}
        options: dict[str, Any] = {
            "maxsize": POOL_SIZE,
            "timeout": TIMEOUT,
            # Connection failures only (reads of idempotent calls). Not an answer's Retry-After: urllib3 would sleep
            # it out in a handler thread; the error carries it to kopf's retry delay instead (objects._retry_delay).
            "retries": urllib3.Retry(total=3, redirect=0, respect_retry_after_header=False),
        }
        if self.server.startswith("https:"):
            options["ssl_context"] = info.as_ssl_context()
        self.pool = (
            urllib3.ProxyManager(info.proxy_url, **options) if info.proxy_url else urllib3.PoolManager(**options)
        )


_connection: _Connection | None = None


def use(info: kopf.ConnectionInfo) -> None:
    """Send every later request with `info`'s server and credentials (kopf logs in again on a 401: so do we)."""
    global _connection
    _connection = _Connection(info)  # one assignment: a request in flight keeps the connection it read


def request(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    content_type: str = JSON,
) -> dict[str, Any]:
    """`method` `path` (e.g. /apis/apps/v1/namespaces/x/deployments/y); raises ApiError for any answer but 2xx."""
    conn = _connection
    if conn is None:
        raise ApiError(0, "not logged in: the operator's login handler has not run yet")
    url = conn.server + path
    params = {k: v for k, v in (query or {}).items() if v}
    if params:
        url += "?" + urllib.parse.urlencode(params)
    headers = {**conn.headers, "User-Agent": _user_agent()}
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        response = conn.pool.request(
            method, url, body=None if body is None else json.dumps(body), headers=headers, preload_content=True
        )
    except urllib3.exceptions.HTTPError as e:  # refused, reset, timed out, TLS
        raise ApiError(0, f"{type(e).__name__}: {e}") from e
    if not 200 <= response.status <= 299:
        text = response.data.decode(errors="replace")
        status_reason, retry_after = status_details(text, response.headers.get("Retry-After"))
        raise ApiError(response.status, response.reason or "", text, status_reason, retry_after)
    return cast(dict[str, Any], json.loads(response.data))
