"""Where the example and invalid manifests live, and which model validates each kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from driftline.api.base import ApiModel
from driftline.api.inferenceservice import InferenceService
from driftline.api.modelversion import ModelVersion
from driftline.api.trainingjob import TrainingJob

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
INVALID = sorted((REPO / "tests" / "data" / "invalid").glob("*.yaml"))
MODELS: dict[str, type[ApiModel]] = {
    "TrainingJob": TrainingJob,
    "ModelVersion": ModelVersion,
    "InferenceService": InferenceService,
}


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path.name}: not one YAML mapping"
    return document


def expectation(path: Path) -> str:
    """The substring the API server's error must contain, from the file's first line `# expect: ...`."""
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: <substring>'"
    return first.removeprefix("# expect: ").strip()
