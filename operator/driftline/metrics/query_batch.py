"""Many instant PromQL queries asked as one: each query's series tagged with its index by `label_replace`, the
tagged vectors joined by `or`, and the answer split back per index. Pure: the text of the query and the reading of
the answer; metrics.prometheus sends it.

Why: 500 services reading drift from one Prometheus every 10 s are 50 HTTP requests a second, and in CPython one
request costs the operator more CPU (≈ 0.9 ms) than the reading's decision. Asked as a batch, the readings due
within a moment of each other cost one request.

Each query keeps the rule it has alone (exactly one number): a query that returns no series or several is an error
of its own, never of the batch. `label_replace` takes an instant vector only, so a query whose answer is a scalar is
wrapped in `vector()`; its kind is learnt from an answer of it alone (a query never answered alone is not batched).
A batch that fails as a whole (a syntax error or a timeout of one of its queries) is asked again query by query by
the caller, so one tenant's bad query never stands for another's.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

LABEL = "driftline_batch_index"
"""The label each query's series carry in a batch's answer. Not a reserved name (those start with __)."""


class Kind(enum.Enum):
    """What a query's answer is, as Prometheus's resultType says."""

    VECTOR = "vector"
    SCALAR = "scalar"


class AnswerError(ValueError):
    """An answer that does not hold what the query must return; the message names the query."""


def union(queries: Sequence[tuple[str, Kind]]) -> str:
    """One query asking all of `queries`, the i-th one's series labelled LABEL="i"."""
    parts = []
    for i, (promql, kind) in enumerate(queries):
        inner = f"vector({promql})" if kind is Kind.SCALAR else f"({promql})"
        parts.append(f'label_replace({inner}, "{LABEL}", "{i}", "", "")')
    return " or ".join(parts)


def single(promql: str, data: Mapping[str, Any]) -> tuple[float, Kind]:
    """The one number of an answer's `data` (a scalar, or a vector of one series) and its kind. NaN stays NaN."""
    result = data.get("result")
    kind = data.get("resultType")
    sample: Any = None
    if kind == Kind.SCALAR.value:
        sample = result
    elif kind == Kind.VECTOR.value and isinstance(result, list) and len(result) == 1 and isinstance(result[0], dict):
        sample = result[0].get("value")
    else:
        raise _not_one(promql, len(result) if isinstance(result, list) else "no", kind)
    return _number(promql, sample), Kind(kind)


def split(queries: Sequence[str], data: Mapping[str, Any]) -> list[float | AnswerError]:
    """Each query's number from a batch's answer `data`, or why it has none (no series, or several)."""
    if data.get("resultType") != Kind.VECTOR.value or not isinstance(data.get("result"), list):
        raise AnswerError(f"a batch of {len(queries)} queries returned a {data.get('resultType')}, not a vector")
    found: list[list[Any]] = [[] for _ in queries]
    for series in data["result"]:
        index = ((series.get("metric") or {}).get(LABEL) if isinstance(series, dict) else None) or ""
        if not index.isdigit() or int(index) >= len(queries):
            raise AnswerError(f"a batch's answer holds a series without its query's index: {series!r:.200}")
        found[int(index)].append(series.get("value"))
    out: list[float | AnswerError] = []
    for promql, samples in zip(queries, found, strict=True):
        if len(samples) != 1:
            out.append(_not_one(promql, len(samples), Kind.VECTOR.value))
            continue
        try:
            out.append(_number(promql, samples[0]))
        except AnswerError as e:
            out.append(e)
    return out


def _not_one(promql: str, n: int | str, kind: object) -> AnswerError:
    return AnswerError(f"{promql!r} returned {n} series of type {kind}; it must return one number")


def _number(promql: str, sample: Any) -> float:
    try:
        return float(sample[1])  # "NaN" reads as NaN: too few samples, never a number
    except (TypeError, ValueError, IndexError, KeyError) as e:
        raise AnswerError(f"{promql!r} returned {sample!r}: {e}") from e
