"""The prometheus provider: an instant PromQL query that must return exactly one number; or many such queries
asked in one request (metrics.query_batch)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from driftline.decide import outbound
from driftline.metrics import bounded, query_batch
from driftline.metrics.query_batch import Kind

TIMEOUT_SECONDS = 5.0
"""The whole query, answer included: a tenant's slow Prometheus holds a reading no longer than this."""
MAX_BYTES = 1024 * 1024
"""An answer that must hold one number; a larger one is refused unread."""


class QueryError(RuntimeError):
    pass


def render_query(query: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders {{namespace}}, {{name}}, {{model}} and {{version}}."""
    for key, value in values.items():
        query = query.replace("{{" + key + "}}", value)
    return query


def query(url: str, promql: str, timeout: float = TIMEOUT_SECONDS, allowed: Sequence[str] | None = None) -> float:
    """The single value of an instant query; NaN stays NaN (the analysis judges it an Error, never a success). A URL
    off the `allowed` list (decide.outbound) is refused before any connection."""
    return query_kind(url, promql, timeout, allowed)[0]


def query_kind(
    url: str, promql: str, timeout: float = TIMEOUT_SECONDS, allowed: Sequence[str] | None = None
) -> tuple[float, Kind]:
    """`query`, and whether the answer was a scalar or a vector (what a batch must know of it)."""
    data = _ask(url, {"query": promql}, timeout, allowed)
    try:
        return query_batch.single(promql, data)
    except query_batch.AnswerError as e:
        raise QueryError(str(e)) from e


def query_many(
    url: str,
    queries: Sequence[tuple[str, Kind]],
    timeout: float = TIMEOUT_SECONDS,
    allowed: Sequence[str] | None = None,
) -> list[float | QueryError]:
    """Each query's single value, or its own error, asked in one request (metrics.query_batch). Raises QueryError
    when the batch fails as a whole: the caller asks each query alone then."""
    data = _ask(url, {"query": query_batch.union(queries)}, timeout, allowed, post=True)
    try:
        answers = query_batch.split([promql for promql, _ in queries], data)
    except query_batch.AnswerError as e:
        raise QueryError(f"{url}: {e}") from e
    return [QueryError(str(a)) if isinstance(a, query_batch.AnswerError) else a for a in answers]


def _ask(
    url: str, form: Mapping[str, str], timeout: float, allowed: Sequence[str] | None, post: bool = False
) -> dict[str, Any]:
    """The `data` of a successful answer of /api/v1/query."""
    if (refused := outbound.refusal(url, allowed)) is not None:
        raise QueryError(refused)
    endpoint = f"{url.rstrip('/')}/api/v1/query"
    try:
        if post:  # a batch may be longer than a URL may
            r = bounded.post_form(endpoint, form, deadline=timeout, max_bytes=MAX_BYTES)
        else:
            r = bounded.get(endpoint, params=form, deadline=timeout, max_bytes=MAX_BYTES)
        body = json.loads(r.text)
    except (requests.RequestException, ValueError) as e:
        raise QueryError(f"{url}: {e}") from e
    if not isinstance(body, dict):
        raise QueryError(f"{url}: HTTP {r.status}: the answer is not a Prometheus API object")
    if r.status != 200 or body.get("status") != "success":
        raise QueryError(f"{url}: HTTP {r.status}: {body.get('error') or body.get('status')}")
    data = body.get("data")
    return data if isinstance(data, dict) else {}
