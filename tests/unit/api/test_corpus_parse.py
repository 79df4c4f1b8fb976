"""The invalid-manifest corpus: well-formed files, each with an expectation, each rejected by the models too."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.unit.api._manifests import INVALID, MODELS, expectation, load

pytestmark = pytest.mark.unit

# Mistakes only the API server can judge; the models accept these files. Empty today: every mistake in the corpus
# is caught by pydantic as well. Transition rules (a ModelVersion's immutable spec) are tested on the server.
SERVER_ONLY: frozenset[str] = frozenset()


def test_corpus_is_large_and_distinct() -> None:
    assert len(INVALID) >= 113
    numbers = [p.name.split("-", 1)[0] for p in INVALID]
    assert len(set(numbers)) == len(numbers), "two corpus files share a number"
    bodies = [p.read_text().split("\n", 2)[2] for p in INVALID]
    assert len(set(bodies)) == len(bodies), "two corpus files hold the same manifest"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_corpus_file_is_yaml_with_expectation(path: Path) -> None:
    document = load(path)
    assert document.get("kind") in MODELS
    assert document.get("apiVersion") == "driftline.dev/v1alpha1"
    assert expectation(path)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_models_reject_what_the_server_rejects(path: Path) -> None:
    document = load(path)
    model = MODELS[document["kind"]]
    if path.name in SERVER_ONLY:
        model.model_validate(document)  # keeps SERVER_ONLY honest: move a file out once the models catch it
        return
    with pytest.raises(ValidationError):
        model.model_validate(document)
