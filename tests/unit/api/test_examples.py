"""The examples validate against the models and survive a parse/dump round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.api._manifests import EXAMPLES, MODELS, load

pytestmark = pytest.mark.unit


def _contains(whole: Any, part: Any) -> bool:
    """Whether `whole` carries every value of `part` (it may add defaults)."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(k in whole and _contains(whole[k], v) for k, v in part.items())
    if isinstance(part, list):
        return isinstance(whole, list) and len(whole) == len(part) and all(map(_contains, whole, part))
    return bool(whole == part)


def test_there_is_an_example_of_each_kind() -> None:
    kinds = {load(p)["kind"] for p in EXAMPLES}
    assert kinds == set(MODELS)
    assert len(EXAMPLES) >= 7


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_round_trips(path: Path) -> None:
    document = load(path)
    model = MODELS[document["kind"]].model_validate(document)
    dumped = model.model_dump(mode="json", exclude_none=True)
    assert _contains(dumped, document)
    # What a handler writes back parses to the same object.
    assert MODELS[document["kind"]].model_validate(dumped) == model
