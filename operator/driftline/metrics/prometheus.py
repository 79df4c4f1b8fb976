"""The prometheus provider: an instant PromQL query that must return exactly one number."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from driftline.decide import outbound
from driftline.metrics import bounded

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
    if (refused := outbound.refusal(url, allowed)) is not None:
        raise QueryError(refused)
    try:
        r = bounded.get(
            f"{url.rstrip('/')}/api/v1/query", params={"query": promql}, deadline=timeout, max_bytes=MAX_BYTES
        )
        body = json.loads(r.text)
    except (requests.RequestException, ValueError) as e:
        raise QueryError(f"{url}: {e}") from e
    if not isinstance(body, dict):
        raise QueryError(f"{url}: HTTP {r.status}: the answer is not a Prometheus API object")
    if r.status != 200 or body.get("status") != "success":
        raise QueryError(f"{url}: HTTP {r.status}: {body.get('error') or body.get('status')}")
    data = body.get("data") or {}
    result = data.get("result")
    sample: Any = None
    if data.get("resultType") == "scalar":
        sample = result
    elif data.get("resultType") == "vector" and isinstance(result, list) and len(result) == 1:
        sample = result[0].get("value")
    else:
        n = len(result) if isinstance(result, list) else "no"
        raise QueryError(f"{promql!r} returned {n} series of type {data.get('resultType')}; it must return one number")
    try:
        return float(sample[1])
    except (TypeError, ValueError, IndexError) as e:
        raise QueryError(f"{promql!r} returned {sample!r}: {e}") from e
