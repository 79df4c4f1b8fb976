"""Many PromQL queries asked as one (metrics.query_batch): the text of the batch, and each query's own number or error
read back from an answer shaped as Prometheus gives it. The integration test asks a real Prometheus."""

from __future__ import annotations

import math
from typing import Any

import pytest

from driftline.metrics.query_batch import LABEL, AnswerError, Kind, single, split, union

pytestmark = pytest.mark.unit


def series(index: int | None, value: str, **labels: str) -> dict[str, Any]:
    metric = dict(labels)
    if index is not None:
        metric[LABEL] = str(index)
    return {"metric": metric, "value": [1765000000.0, value]}


def test_the_batch_tags_each_query_with_its_index_and_wraps_scalars() -> None:
    text = union([("max(up)", Kind.VECTOR), ("0.5 * 2", Kind.SCALAR)])
    assert text == (
        f'label_replace((max(up)), "{LABEL}", "0", "", "") or label_replace(vector(0.5 * 2), "{LABEL}", "1", "", "")'
    )


def test_each_query_gets_its_own_number_whatever_the_order_of_the_series() -> None:
    data = {"resultType": "vector", "result": [series(2, "0.3"), series(0, "0.1", job="x"), series(1, "NaN")]}
    out = split(["a", "b", "c"], data)
    assert out[0] == 0.1 and out[2] == 0.3
    assert isinstance(out[1], float) and math.isnan(out[1])


def test_a_query_with_no_series_or_several_fails_alone_with_the_words_it_has_alone() -> None:
    data = {"resultType": "vector", "result": [series(1, "1"), series(1, "2", job="y"), series(2, "0.5")]}
    out = split(["empty", "twice", "fine"], data)
    assert isinstance(out[0], AnswerError) and str(out[0]) == (
        "'empty' returned 0 series of type vector; it must return one number"
    )
    assert isinstance(out[1], AnswerError) and "'twice' returned 2 series" in str(out[1])
    assert out[2] == 0.5
    with pytest.raises(AnswerError) as alone:
        single("empty", {"resultType": "vector", "result": []})
    assert str(alone.value) == str(out[0])


def test_a_value_that_is_no_number_fails_only_its_query() -> None:
    out = split(["a", "b"], {"resultType": "vector", "result": [series(0, "lots"), series(1, "2")]})
    assert isinstance(out[0], AnswerError) and "'a' returned" in str(out[0]) and out[1] == 2.0


@pytest.mark.parametrize(
    "data",
    [
        {"resultType": "scalar", "result": [0, "1"]},
        {"resultType": "vector", "result": None},
        {"resultType": "vector", "result": [series(None, "1")]},
        {"resultType": "vector", "result": [series(5, "1")]},
        {"resultType": "vector", "result": ["junk"]},
    ],
    ids=["scalar", "no-list", "untagged", "index-out-of-range", "not-a-series"],
)
def test_an_answer_that_is_not_the_batch_s_fails_the_batch(data: dict[str, Any]) -> None:
    with pytest.raises(AnswerError):
        split(["a", "b"], data)


def test_a_query_alone_says_its_kind() -> None:
    assert single("1", {"resultType": "scalar", "result": [0, "1"]}) == (1.0, Kind.SCALAR)
    assert single("up", {"resultType": "vector", "result": [series(None, "0.2")]}) == (0.2, Kind.VECTOR)
    with pytest.raises(AnswerError, match="returned no series of type matrix"):
        single("up[5m]", {"resultType": "matrix", "result": "x"})
