"""Fixtures shared by the model server's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.runtime.server_kit import write_model_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A LogisticRegression classifier's model directory (three classes, four features) and its sha256."""
    directory = tmp_path_factory.mktemp("classifier")
    return directory, write_model_dir(directory)
