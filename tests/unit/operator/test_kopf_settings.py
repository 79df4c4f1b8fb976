"""kopf's bookkeeping must not swallow the annotations users write to ask for a promotion, rejection or rollback."""

from __future__ import annotations

import kopf
import pytest

from driftline.api import constants as c
from driftline.handlers import diffbase

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("annotation", [c.ANNOTATION_PROMOTE, c.ANNOTATION_REJECT, c.ANNOTATION_ROLLBACK])
def test_user_request_annotations_are_part_of_what_kopf_compares(annotation: str) -> None:
    body = kopf.Body(
        {
            "metadata": {"name": "m-v1", "annotations": {f"{c.KOPF_PREFIX}/kopf-managed": "yes", annotation: "x"}},
            "spec": {"model": "m"},
        }
    )
    essence = diffbase.STORE.build(body=body)
    assert essence["metadata"]["annotations"] == {annotation: "x"}
