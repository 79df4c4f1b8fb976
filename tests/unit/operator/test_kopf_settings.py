"""kopf's bookkeeping must not swallow the annotations users write to ask for a promotion, rejection or rollback."""

from __future__ import annotations

import kopf
import pytest

from driftline import config
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


@pytest.mark.parametrize(
    ("env", "server"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "https://10.96.0.1:443"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, "https://[fd00::1]:6443"),
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, None),
        ({}, None),
    ],
)
def test_in_cluster_the_api_server_is_where_the_kubelets_variables_say(env: dict[str, str], server: str | None) -> None:
    """Not kopf's https://kubernetes.default.svc, which only cluster DNS resolves (a pod without it, e.g. on the
    host network, would never reach the API server)."""
    assert config.in_cluster_server(env) == server
